"""Graceful termination, side by side: the same rolling update under traffic, at the same time, of
two Deployments of the same app that differ only in how a pod stops.

- graceful (`incver`, manifests/incver): the preStop hook drains (readiness fails at once, the app
  keeps serving for DRAIN_S), then SIGTERM lets requests in flight finish;
- abrupt (`incver-abrupt`, manifests/incver-abrupt): no preStop, and SIGTERM kills the server at
  once (KUBE_ALIVE_ON_SIGTERM=exit), as many apps do.

The claims: the graceful half loses no request (every failure is placed against the pods'
moments from the recorder, so a failure names the part the evidence points at, as the rolling
update's do), and the kubelet held every graceful pod for its drain (told to stop -> gone took at
least DRAIN_S, from the recorder). The abrupt half's failed requests are counted and shown, not
asserted: whether a connection reaches a pod in the moment between its exit and every node's
service proxy dropping it depends on the timing of that cluster (the report says how many were
lost and when). Both halves must have had traffic through their whole rollout, and the recorder
must have seen both rollouts.

Before traffic the scenario reads back what the cluster admitted: the graceful pods' readiness
probe, preStop drain and grace period, the abrupt pods' same probe and grace period with no preStop
and their SIGTERM setting, both Deployments' strategies and both Services.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import pytest

from suite import admitted, claims, floors, timing, traffic_proofs
from suite.admitted import ABSENT
from suite.behaviours.graceful_termination import proofs
from suite.behaviours.rolling_update import proofs as rollout
from suite.cluster import Cluster
from suite.context import CONTEXT_KEY
from suite.fixtures import PROBER_REACHABLE_S, READY_S, Workloads
from suite.floors import Floor
from suite.kube import DEPLOYMENTS, SERVICES, get_object, matches
from suite.recorder import Recorder
from suite.traffic import Answer, BackgroundProbe, Prober, ProbeRequest, ProbeResult
from suite.waiting import Done, Pending, Verdict, WaitFailed
from suite.waits import wait_deployment_ready

GRACEFUL, ABRUPT = "incver", "incver-abrupt"
HALVES = (GRACEFUL, ABRUPT)
REPLICAS = 3
MAX_SURGE = 1
MAX_UNAVAILABLE = 0
STRATEGY = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": MAX_UNAVAILABLE},
}
#: Both halves roll the same way (set here, so these numbers define the test).
OVERRIDES = {
    app: {f"Deployment/{app}": {"spec": {"replicas": REPLICAS, "strategy": STRATEGY}}}
    for app in HALVES
}
FROM_TAG, TO_TAG = "v1", "v2"

#: Both: readiness every second (manifests/incver, manifests/incver-abrupt).
READINESS = {"periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
#: The graceful half's preStop drain (manifests/incver: it covers the routing lag, ROUTING_LAG_S,
#: and a second for the slice) and both halves' grace period.
DRAIN_S = timing.INCVER_DRAIN_S
GRACE_S = 20
_PROBE = {
    **READINESS,
    "initialDelaySeconds": ABSENT,
    "httpGet": {"path": "/readyz", "port": "http"},
}
POD_EXPECTED: dict[str, dict[str, Any]] = {
    GRACEFUL: {
        "spec": {
            "terminationGracePeriodSeconds": GRACE_S,
            "readinessGates": ABSENT,
            "containers": [
                {
                    "name": "incver",
                    "readinessProbe": _PROBE,
                    "lifecycle": {
                        "preStop": {
                            "httpGet": {"path": f"/drain?seconds={DRAIN_S}", "port": "http"}
                        }
                    },
                }
            ],
        }
    },
    ABRUPT: {
        "spec": {
            "terminationGracePeriodSeconds": GRACE_S,
            "readinessGates": ABSENT,
            "containers": [
                {
                    "name": "incver",
                    "readinessProbe": _PROBE,
                    "lifecycle": ABSENT,
                    "env": [{"name": "KUBE_ALIVE_ON_SIGTERM", "value": "exit"}],
                }
            ],
        }
    },
}
DEPLOYMENT_EXPECTED: dict[str, Any] = {
    "spec": {"replicas": REPLICAS, "minReadySeconds": ABSENT, "strategy": STRATEGY}
}
SERVICE_EXPECTED: dict[str, Any] = {
    "spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}
}

#: The rolling update's bounds (suite/behaviours/rolling_update and suite.timing: where they come
#: from): the routing lag a stopping pod must serve through (its drain covers it), the join lag,
#: the slice lag.
ROUTING_LAG_S = timing.PROXY_LAG_S
JOIN_LAG_S = timing.PROXY_LAG_S
SLICE_LAG_S = 2.0
EARLY_ALLOWANCE_S = 0.25

#: Continuous traffic through each Service's ClusterIP (from the prober's environment: no DNS),
#: 2 requests at a time every 20 ms each, in 0.5 s chunks, as the rolling update's.
TRAFFIC = {
    app: ProbeRequest(
        url=f"http://{app}/version",
        concurrency=2,
        interval_ms=20,
        timeout_s=2.0,
        via="service-env",
    )
    for app in HALVES
}
TRAFFIC_CHUNK_S = 0.5
TRAFFIC_BOUND_S = 300.0
MAX_TRAFFIC_GAP_S = 1.0
#: The abrupt half's lanes can each wait out a request's timeout: a connection sent to a pod that
#: has just exited (its address gone) is dropped, not refused (seen: 4 timeouts in one run). Its
#: traffic is still continuous once the timeout is allowed for.
ABRUPT_GAP_S = TRAFFIC[ABRUPT].timeout_s + MAX_TRAFFIC_GAP_S
MIN_RATE_PER_S = 20.0
BASELINE_ANSWERS = 10
#: A fresh Service answers within kube-proxy's first sync of it (1 s here; up to its
#: minSyncPeriod on a cluster that sets one longer): a baseline of v1 answers through each Service
#: within this, or the verdict says which part did not route (the slice listed no pod, or it did
#: and kube-proxy sent nothing through).
CONVERGE_S = 30.0
#: One step = schedule + start + the first readiness probe; 10 s per step on a busy machine, + 30 s.
ROLLOUT_DEADLINE_S = REPLICAS * 10 + 30
#: After both rollouts: every old pod gone (the graceful ones after their drain) and the routing
#: lag watched out on both, TAIL_ANSWERS answers after it on each; the rest is room.
SETTLE_S = DRAIN_S + SLICE_LAG_S + ROUTING_LAG_S + 30.0
TAIL_ANSWERS = 10
MAX_CLOCK_SKEW_S = 0.5
BACKSTOP_S = 120.0 + TRAFFIC_BOUND_S + 60.0
#: Physical floor: the two rollouts run at once, each REPLICAS steps of a new pod's readiness
#: period; the last graceful pod's drain is watched out, then its routing lag.
FLOOR = Floor.of(
    ("v1 Ready (one readiness period)", READINESS["periodSeconds"]),
    (f"{REPLICAS} steps, each a new pod's readiness period", REPLICAS * READINESS["periodSeconds"]),
    ("the last graceful pod's drain", DRAIN_S),
    ("its routing lag, watched out", ROUTING_LAG_S),
)


def _selector(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app}


def _read_back(cluster: Cluster, namespace: str, app: str, pods: list[Any]) -> None:
    problems = admitted.all_problems(pods, POD_EXPECTED[app], kind="pod")
    deployment = get_object(cluster.kube, DEPLOYMENTS, namespace, app)
    problems += admitted.problems(deployment, DEPLOYMENT_EXPECTED, kind="deployment")
    service = get_object(cluster.kube, SERVICES, namespace, app)
    problems += admitted.problems(service, SERVICE_EXPECTED, kind="service")
    assert not problems, admitted.rewritten(problems, f"{app}'s Deployment, pods or Service")


def _ready_prober(recorder: Recorder) -> Any:
    def verdict() -> Verdict:
        ready = sorted(
            name
            for name, view in recorder.pods(_selector("prober")).items()
            if view.ready and not view.terminating
        )
        return Done(ready[0]) if ready else Pending("no prober pod Ready")

    return verdict


def _baseline(answers: list[Answer]) -> Verdict:
    """BASELINE_ANSWERS v1 answers started before now, whatever the prober's clock offset."""
    least = max((a.end - a.received for a in answers if a.received), default=0.0)
    cutoff = time.time() - 0.05
    old = sum(1 for a in answers if a.ok and a.start - least < cutoff)
    return Done(True) if old >= BASELINE_ANSWERS else Pending(f"{old} answers")


def _offset_bound(traffic: BackgroundProbe) -> float:
    with traffic.changed:
        offset = traffic_proofs.clock_offset(
            traffic.result.answers, dict(traffic.result.chunk_sent)
        )
    return offset.hi if offset is not None else MAX_CLOCK_SKEW_S


def _settled(recorder: Recorder, app: str, old: set[str], traffic: BackgroundProbe) -> Verdict:
    """Every old pod of `app` is gone from the API and out of the slice, and TAIL_ANSWERS answers
    started after the last one left plus the routing lag (on the prober's clock at its most
    ahead)."""
    present = recorder.pods(_selector(app))
    staying = sorted(name for name in old if name in present)
    if staying:
        return Pending(f"{app}: old pods not gone yet: {staying}")
    spans = rollout.slice_spans(recorder.samples("EndpointSlice"), app)
    listed = sorted(name for name in old if name in spans and spans[name].left is None)
    if listed:
        return Pending(f"{app}: still listed ready: {listed}")
    last_left = max((spans[n].left or 0.0 for n in old if n in spans), default=0.0)
    watched_to = last_left + ROUTING_LAG_S + _offset_bound(traffic)
    with traffic.changed:
        tail = sum(1 for a in traffic.result.answers if a.start > watched_to)
    if tail < TAIL_ANSWERS:
        return Pending(f"{app}: {tail} answers after the routing lag")
    return Done()


def test_graceful_pods_lose_no_request_in_a_rollout_and_abrupt_ones_are_shown(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    """Roll both halves v1 -> v2 at once under traffic: the graceful half loses no request and
    the kubelet held each of its pods for the drain; the abrupt half's losses are shown."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    figures.update(replicas=REPLICAS, drain_s=DRAIN_S, routing_lag_bound_s=ROUTING_LAG_S)
    # Both Services before the prober, so the kubelet puts both ClusterIPs in its environment.
    applied = {app: workloads.apply(app, overrides=OVERRIDES[app]) for app in HALVES}
    workloads.apply("prober")
    deployments = {app: workloads.wait_ready(app) for app in HALVES}
    prober_pod = recorder.wait_for(
        _ready_prober(recorder), timeout_s=READY_S, what="the prober's pod", expected="Ready"
    )
    prober = Prober(
        cluster.kube,
        namespace,
        on_result=request.node.stash[CONTEXT_KEY].probes.append,
        pod=prober_pod,
    )
    prober.wait_ready(PROBER_REACHABLE_S)
    old_image, new_image = cluster.image(FROM_TAG), cluster.image(TO_TAG)
    old_names: dict[str, set[str]] = {}
    for app in HALVES:
        container = deployments[app]["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == old_image, f"{app} runs {container['image']}, not {old_image}"
        pods = workloads.pods(app)
        with claims.behaviour():
            _read_back(cluster, namespace, app, pods)
        old_names[app] = {str(pod["metadata"]["name"]) for pod in pods}
    del applied

    traffic_start = time.time()
    traffic = {
        app: prober.background(
            TRAFFIC[app], chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=app
        )
        for app in HALVES
    }
    patch_wall = complete_wall = None
    t_patch = None
    results: dict[str, ProbeResult] = {}
    try:
        started = True
        for app in HALVES:
            with contextlib.suppress(WaitFailed):
                traffic[app].wait_for(
                    _baseline,
                    timeout_s=CONVERGE_S,
                    what=f"traffic to service/{app}",
                    expected=f"{BASELINE_ANSWERS} answers before the update",
                )
                continue
            started = False
        if started:
            patch_wall = time.time()
            t_patch = recorder.mark("set image", image=new_image)
            for app in HALVES:
                cluster.kube.request(
                    "PATCH",
                    DEPLOYMENTS.path(namespace, app),
                    body={
                        "spec": {
                            "template": {
                                "spec": {"containers": [{"name": "incver", "image": new_image}]}
                            }
                        }
                    },
                    content_type="application/strategic-merge-patch+json",
                )
            with claims.behaviour():
                for app in HALVES:
                    try:
                        wait_deployment_ready(
                            cluster.kube,
                            namespace,
                            app,
                            timeout_s=ROLLOUT_DEADLINE_S,
                            image_hint=cluster.image_hint,
                        )
                    except WaitFailed as error:
                        samples = recorder.samples("Deployment", app)
                        stall = rollout.rollout_stall(
                            samples[-1] if samples else None,
                            recorder.samples("ReplicaSet"),
                            new_image,
                            REPLICAS,
                        )
                        raise AssertionError(
                            f"{app}'s rollout did not complete within {ROLLOUT_DEADLINE_S}s: "
                            f"{stall} ({error})"
                        ) from error
            complete_wall = time.time()
            recorder.mark("rollouts complete")
            with contextlib.suppress(WaitFailed):
                recorder.wait_for(
                    lambda: _all_settled(recorder, old_names, traffic),
                    timeout_s=SETTLE_S,
                    what="both halves",
                    expected="every old pod gone and out of the slice, its routing lag watched out",
                )
    finally:
        for app in HALVES:
            results[app] = traffic[app].stop()

    for app in HALVES:
        assert not results[app].errors, (
            f"{app}'s traffic was interrupted: {results[app].errors[-1]}"
        )
    with claims.behaviour():
        unrouted = [
            proofs.unrouted(
                app,
                listed=bool(rollout.slice_spans(recorder.samples("EndpointSlice"), app)),
                answered=any(a.ok for a in results[app].answers),
                seen=results[app].describe(),
                within_s=CONVERGE_S,
            )
            for app in HALVES
        ]
        assert patch_wall is not None, "; ".join(u for u in unrouted if u)
        assert complete_wall is not None, "the rollouts never completed"
    assert patch_wall is not None
    assert complete_wall is not None
    assert t_patch is not None
    blind = recorder.gap_problems(["Pod", "EndpointSlice"])
    assert not blind, (
        "the recorder lost a watch during the rollouts, so its verdicts are not proven: "
        + "; ".join(blind)
    )
    names = {str(entry["name"]) for entry in recorder.to_dict()["pods"]}
    histories = {name: recorder.pod_history(name) for name in names}
    halves = {
        app: _judge(
            app,
            results[app],
            histories,
            recorder,
            traffic_start=traffic_start,
            patch_wall=patch_wall,
            old=old_names[app],
        )
        for app in HALVES
    }
    graceful, abrupt = halves[GRACEFUL], halves[ABRUPT]
    figures.update(
        rollout_s=round(complete_wall - patch_wall, 1),
        graceful_requests=graceful["requests"],
        graceful_failed=graceful["failed"],
        graceful_answers_while_terminating=graceful["draining"],
        graceful_stop_to_gone_s=graceful["stop_to_gone"],
        abrupt_requests=abrupt["requests"],
        abrupt_failed=abrupt["failed"],
        abrupt_failed_as=abrupt["kinds"],
        abrupt_answers_while_terminating=abrupt["draining"],
        abrupt_stop_to_gone_s=abrupt["stop_to_gone"],
        abrupt_failures_placed=abrupt["placed"],
        failed_before_routed=graceful["starting"] + abrupt["starting"],
        clock_skew_s=max(graceful["skew"], abrupt["skew"]),
    )
    with claims.behaviour():
        assert not graceful["placed"], (
            f"the graceful half lost {graceful['failed']} of {graceful['requests']} requests in "
            "its rollout (times from the image change): " + "; ".join(graceful["placed"][:6])
        )
        drained = proofs.drain_problems(graceful["stops"], DRAIN_S)
        assert not drained, "; ".join(drained)
    for app in HALVES:
        assert not halves[app]["coverage"], (
            f"{app}'s traffic did not run through its whole rollout: "
            + "; ".join(halves[app]["coverage"])
        )
        views = {
            name: [view for _, _, view in history]
            for name, history in histories.items()
            if any(
                view is not None and matches(view.label_map(), _selector(app))
                for _, _, view in history
            )
        }
        seen = rollout.rollout_seen_problems(views, old_image, new_image, REPLICAS)
        assert not seen, (
            f"the recorder did not see {app}'s rollout, so its figures prove nothing: "
            + "; ".join(seen)
        )


def _all_settled(
    recorder: Recorder, old: dict[str, set[str]], traffic: dict[str, BackgroundProbe]
) -> Verdict:
    for app in HALVES:
        verdict = _settled(recorder, app, old[app], traffic[app])
        if not isinstance(verdict, Done):
            return verdict
    return Done()


def _judge(
    app: str,
    result: ProbeResult,
    histories: dict[str, Any],
    recorder: Recorder,
    *,
    traffic_start: float,
    patch_wall: float,
    old: set[str],
) -> dict[str, Any]:
    """One half's figures and problems: its answers placed against its pods' moments."""
    offset = traffic_proofs.clock_offset(result.answers, result.chunk_sent)
    problem = traffic_proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, f"{app}: {problem}"
    assert offset is not None
    shift = (offset.lo + offset.hi) / 2
    uncertainty = max(0.0, (offset.hi - offset.lo) / 2)
    mine = {
        name: history
        for name, history in histories.items()
        if any(
            view is not None and matches(view.label_map(), _selector(app)) for _, _, view in history
        )
    }
    pods = {name: rollout.pod_span(history) for name, history in mine.items()}
    spans = rollout.slice_spans(recorder.samples("EndpointSlice"), app)
    rows = rollout.routing_table(
        result.answers,
        pods,
        spans,
        offset=shift,
        uncertainty=uncertainty,
        lag_s=ROUTING_LAG_S,
        since=traffic_start,
        early_allowance_s=EARLY_ALLOWANCE_S,
    )
    routed = min((r.first for r in rows if r.first is not None), default=None)
    started = rollout.started_up_at(routed, rollout.converged_at(rows, old), patch_wall)
    starting = rollout.failed_before(result.failed, offset=shift, routed=started)
    ok = [a for a in result.answers if a.ok]
    placed = rollout.failed_request_problems(
        result.failed,
        ok,
        rows,
        offset=shift,
        uncertainty=uncertainty,
        lag_s=ROUTING_LAG_S,
        workload=(
            f"{app}'s graceful shutdown (its preStop drain, then gunicorn)"
            if app == GRACEFUL
            else f"{app}'s immediate exit on SIGTERM (no preStop)"
        ),
        origin=patch_wall,
        routed=started,
    )
    if app == GRACEFUL:
        placed += rollout.routing_lag_problems(
            rows,
            lag_s=ROUTING_LAG_S,
            join_lag_s=JOIN_LAG_S,
            slice_lag_s=SLICE_LAG_S,
            uncertainty=uncertainty,
            traffic_end=max((a.start - shift for a in result.answers), default=traffic_start),
        )
    stops = {name: proofs.stop_to_gone(mine[name]) for name in old if name in mine}
    settle_end = max((r.left for r in rows if r.pod in old and r.left is not None), default=None)
    flow = traffic_proofs.coverage(
        [a.start - shift for a in result.answers],
        patch_wall - uncertainty,
        (settle_end or patch_wall) + ROUTING_LAG_S + uncertainty,
        max_gap_s=MAX_TRAFFIC_GAP_S if app == GRACEFUL else ABRUPT_GAP_S,
        min_rate=MIN_RATE_PER_S,
    )
    failed = proofs.judged(result.failed, offset=shift, since=started)
    present = [s for s in stops.values() if s is not None]
    return {
        "requests": result.sent,
        "failed": len(failed),
        "starting": starting,
        "kinds": proofs.failure_kinds(failed),
        "placed": placed,
        "draining": sum(r.draining for r in rows),
        "stops": stops,
        "stop_to_gone": _range(present),
        "coverage": flow.problems,
        "skew": round(offset.bound, 3),
    }


def _range(values: Sequence[float]) -> list[float] | None:
    """[least, most] of `values`, rounded; None when there are none."""
    if not values:
        return None
    return [round(min(values), 2), round(max(values), 2)]

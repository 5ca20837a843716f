"""Rolling update: v1 -> v2 under continuous traffic, answer by answer.

`incver` answers its version and its pod's name; v1 and v2 differ only in the image tag. Every
answer is matched to the pod that served it and to that pod's moments from the recorder: Ready
(the kubelet), listed as ready in the Service's EndpointSlice (the EndpointSlice controller),
first answer through the Service (kube-proxy routes to it); told to stop (deletionTimestamp),
out of the slice, last answer. The claims: no request fails; no answer comes from a pod before it
was Ready, nor later than the routing-lag bound after it left the slice (answers while it drains,
inside that bound, are counted and shown); every routing lag is within its bound; the pod counts
stay within replicas + maxSurge and replicas - maxUnavailable at every observed moment; clients
see v1 before and v2 after. A failure names the part the evidence points at.

Zero failures is made a fact by the workload: its readiness fails until it has loaded and from
its preStop drain on, and the drain keeps it serving for the routing-lag bound, so a request that
a node's service proxy still routes to a stopping pod is answered.

Before traffic the scenario reads back what the cluster admitted (`suite.admitted`): the
Deployment's strategy as stored, the live pods' readiness probe, preStop hook, grace period and
readiness gates, and the Service's type and affinity; the new pods are read back after the rollout.

The traffic goes to the Service's ClusterIP as the kubelet put it into the prober's environment
(no DNS look-up: cluster DNS is not part of a rolling update), and the suite reaches the prober
through its pod, so neither its own path nor DNS can be mistaken for the routing under test.

Nothing is proven by what was not watched: traffic must cover the whole rollout (its largest gap
between request starts and its rate are asserted), the recorder must have listed the namespace
and seen every old pod go and every new pod become Ready, and the clock skew between the prober
and this machine (which places answers against the recorder's times) is measured each run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import pytest

from suite import admitted, claims, deployments, floors, timing, traffic_proofs
from suite.admitted import ABSENT
from suite.behaviours.rolling_update import proofs
from suite.cluster import Cluster
from suite.context import CONTEXT_KEY
from suite.fixtures import PROBER_REACHABLE_S, READY_S, Workloads
from suite.floors import Floor
from suite.kube import DEPLOYMENTS, SERVICES, get_object, matches
from suite.recorder import Recorder
from suite.traffic import Answer, BackgroundProbe, Prober, ProbeRequest
from suite.waiting import Done, Pending, Verdict, WaitFailed
from suite.waits import wait_deployment_ready

APP = "incver"
REPLICAS = 4
MAX_SURGE = 1
MAX_UNAVAILABLE = 0
STRATEGY = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": MAX_UNAVAILABLE},
}
#: The strategy is set explicitly (not taken from the manifest) so these numbers define the test.
OVERRIDES = {f"Deployment/{APP}": {"spec": {"replicas": REPLICAS, "strategy": STRATEGY}}}
FROM_TAG, TO_TAG = "v1", "v2"
SELECTOR = {"app.kubernetes.io/name": APP}

#: manifests/incver: readiness every second (a new pod is Ready within a period of answering),
#: and the preStop drain: readiness fails at once, serving goes on for DRAIN_S, then SIGTERM. The
#: drain covers the routing lag (ROUTING_LAG_S) and a second for the slice to mark the pod
#: terminating, so no request routed late is refused.
READINESS = {"periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
DRAIN_S = timing.INCVER_DRAIN_S
GRACE_S = 20
#: What every live pod must carry: the probe and hook the bounds below come from (no readiness
#: delay, no readiness gate holding Ready back), the grace period the drain fits in.
POD_EXPECTED: dict[str, Any] = {
    "spec": {
        "terminationGracePeriodSeconds": GRACE_S,
        "readinessGates": ABSENT,
        "containers": [
            {
                "name": APP,
                "readinessProbe": {
                    **READINESS,
                    "initialDelaySeconds": ABSENT,
                    "httpGet": {"path": "/readyz", "port": "http"},
                },
                "lifecycle": {
                    "preStop": {"httpGet": {"path": f"/drain?seconds={DRAIN_S}", "port": "http"}}
                },
            }
        ],
    }
}
#: The strategy as stored; minReadySeconds 0 (the API leaves a 0 out): Ready is available.
DEPLOYMENT_EXPECTED: dict[str, Any] = {
    "spec": {"replicas": REPLICAS, "minReadySeconds": ABSENT, "strategy": STRATEGY}
}
#: A virtual IP whose connections kube-proxy spreads over the ready endpoints: no affinity (it
#: would pin the prober to an old pod), endpoints on every node.
SERVICE_EXPECTED: dict[str, Any] = {
    "spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}
}

#: Routing lag: an EndpointSlice change reaches the prober node's rules within kube-proxy's sync
#: period plus one rules restore and the watch deliveries (suite.timing.PROXY_LAG_S: where the
#: figure comes from). It bounds left the slice -> last answer, and it is the tolerance for
#: answers from a pod that was already told to stop. The drain (DRAIN_S) covers it, so no request
#: routed late fails.
ROUTING_LAG_S = timing.PROXY_LAG_S
#: Listed ready -> first answer: the same sync and restore. Joining late costs no request (the
#: other pods answer meanwhile), so this one need not fit in the drain; it is the same bound.
JOIN_LAG_S = timing.PROXY_LAG_S
#: Ready -> listed ready, told to stop -> no longer listed ready: the EndpointSlice controller
#: acts on a pod's update at once, but once it has written a Service's slices it syncs that
#: Service again no sooner than 1 s later (endpointSliceChangeMinSyncDelay in
#: pkg/controller/endpointslice), so a second pod turning Ready right after a first waits up to
#: 1 s (seen: 1.03 s on a healthy cluster); its write and both watches take well under a second.
SLICE_LAG_S = 2.0
#: An answer may start before the recorder heard that its pod was Ready by this much (plus the
#: clock uncertainty): the recorder's pod watch delivers the change a moment after it happened,
#: while the answer needed the slice update and a kube-proxy sync after it.
EARLY_ALLOWANCE_S = 0.25

#: Continuous traffic through the Service: 2 requests at a time, every 20 ms each, in 0.5 s chunks
#: (one streamed `POST /probe` each): the traffic stops at the end of its chunk, and the step
#: between chunks is one API round trip, far below the gap bound.
#: To the ClusterIP from the prober's environment (no DNS look-up): the path under test is the
#: Service's virtual IP and its routing, and cluster DNS is not part of a rolling update.
TRAFFIC = ProbeRequest(
    url="http://incver/version", concurrency=2, interval_ms=20, timeout_s=2.0, via="service-env"
)
TRAFFIC_CHUNK_S = 0.5
TRAFFIC_BOUND_S = 300.0
#: "Continuous": never longer than this between two request starts from the image change to the
#: end of settling, and at least this many requests per second (about 50-80/s are sent).
MAX_TRAFFIC_GAP_S = 1.0
MIN_RATE_PER_S = 20.0
#: Answers before the image change (started at least BASELINE_MARGIN_S before it, on this
#: machine's clock, whatever the prober's offset).
BASELINE_ANSWERS = 10
BASELINE_MARGIN_S = 0.05
#: The baseline comes within the routing lag of the Service's first ready endpoint (listed before
#: the traffic began); the rest is room for the first chunk to start.
CONVERGE_S = ROUTING_LAG_S + 3.0
#: pytest-timeout backstop behind the deadlines below (suite/plugin.py): Ready (120 s, READY_S of
#: suite/fixtures.py), then the traffic's bound, plus a margin.
BACKSTOP_S = 120.0 + TRAFFIC_BOUND_S + 60.0
#: Physical floor (suite.floors): maxSurge 1 and maxUnavailable 0 make the rollout REPLICAS steps,
#: each waiting for a new pod's readiness; after the last, the last old pod's routing lag is
#: watched out. Pod start (one per step: sandbox, container start) comes on top.
FLOOR = Floor.of(
    ("v1 Ready (one readiness period)", READINESS["periodSeconds"]),
    (f"{REPLICAS} steps, each a new pod's readiness period", REPLICAS * READINESS["periodSeconds"]),
    ("the last old pod's routing lag, watched out", ROUTING_LAG_S),
)
#: One step (maxSurge 1: one new pod at a time) = schedule + start a present image (~1-2 s) + the
#: first readiness probe (period 1 s); allow 10 s per step on a busy machine, plus 30 s.
ROLLOUT_DEADLINE_S = REPLICAS * 10 + 30
#: After the rollout: every old pod out of the slice (SLICE_LAG_S), its routing lag watched out,
#: and TAIL_ANSWERS answers after that; the rest is room for a slow machine.
SETTLE_S = SLICE_LAG_S + ROUTING_LAG_S + 30.0
TAIL_ANSWERS = 10
#: The Deployment controller scales the old ReplicaSet down, then the new one up; the two
#: ReplicaSet controllers then delete and create pods independently, so for a moment a new pod can
#: exist before the old one is marked terminating (seen: 1 ms). Pod counts that lasted less than
#: this are not judged; the ReplicaSets' own counts are, at every change.
POD_COUNT_CROSSING_S = 0.5
#: Prober timestamps come from its node's clock, the recorder's from this machine's: the offset
#: is measured each run (suite.traffic_proofs.clock_offset) and must stay within this.
MAX_CLOCK_SKEW_S = 0.5


def _versions(answers: Sequence[Answer]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        if answer.ok:
            counts[answer.version or "?"] = counts.get(answer.version or "?", 0) + 1
    return counts


def _offset(traffic: BackgroundProbe) -> traffic_proofs.ClockOffset | None:
    with traffic.changed:
        return traffic_proofs.clock_offset(traffic.result.answers, dict(traffic.result.chunk_sent))


def _latest_offset_bound(traffic: BackgroundProbe) -> float:
    """The most the prober's clock may be ahead of this machine's, as far as measured yet."""
    offset = _offset(traffic)
    return offset.hi if offset is not None else MAX_CLOCK_SKEW_S


def _read_back(cluster: Cluster, namespace: str, pods: list[Any]) -> None:
    problems = admitted.all_problems(pods, POD_EXPECTED, kind="pod")
    deployment = get_object(cluster.kube, DEPLOYMENTS, namespace, APP)
    problems += admitted.problems(deployment, DEPLOYMENT_EXPECTED, kind="deployment")
    service = get_object(cluster.kube, SERVICES, namespace, APP)
    problems += admitted.problems(service, SERVICE_EXPECTED, kind="service")
    assert not problems, admitted.rewritten(problems, f"{APP}'s Deployment, pods or Service")


def _ready_prober(recorder: Recorder) -> Any:
    def verdict() -> Verdict:
        ready = sorted(
            name
            for name, view in recorder.pods({"app.kubernetes.io/name": "prober"}).items()
            if view.ready and not view.terminating
        )
        return Done(ready[0]) if ready else Pending("no prober pod Ready")

    return verdict


def test_rolling_update_replaces_every_pod_without_a_failed_request(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    """Set the image to v2 under continuous traffic: no request fails, every answer comes from a
    pod that was Ready and not past its routing lag, the routing lags and pod counts stay within
    their bounds, clients see v1 before and v2 after, and the rollout completes in time."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    figures.update(
        replicas=REPLICAS,
        max_surge=MAX_SURGE,
        max_unavailable=MAX_UNAVAILABLE,
        routing_lag_bound_s=ROUTING_LAG_S,
        join_lag_bound_s=JOIN_LAG_S,
        slice_lag_bound_s=SLICE_LAG_S,
        drain_s=DRAIN_S,
    )
    # incver and the prober come up side by side (the prober fixture would deploy it first);
    # incver's Service first, so the kubelet puts its ClusterIP into the prober's environment.
    applied = workloads.apply(APP, overrides=OVERRIDES)
    workloads.apply("prober")
    with claims.behaviour():
        deployments.wait_observed(
            recorder,
            APP,
            max(
                (deployments.generation(o) for o in applied if o.get("kind") == "Deployment"),
                default=1,
            ),
        )
    deployment = workloads.wait_ready(APP)
    # The prober is reached through its pod (the suite's own path must not go through the
    # Service routing under test), once the recorder saw it Ready.
    prober_pod = recorder.wait_for(
        _ready_prober(recorder),
        timeout_s=READY_S,
        what="the prober's pod",
        expected="Ready",
    )
    prober = Prober(
        cluster.kube,
        namespace,
        on_result=request.node.stash[CONTEXT_KEY].probes.append,
        pod=prober_pod,
    )
    prober.wait_ready(PROBER_REACHABLE_S)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    old_image, new_image = cluster.image(FROM_TAG), cluster.image(TO_TAG)
    assert container["image"] == old_image, f"{APP} runs {container['image']}, not {old_image}"
    v1_pods = workloads.pods(APP)
    with claims.behaviour():
        _read_back(cluster, namespace, v1_pods)
    v1_names = {str(pod["metadata"]["name"]) for pod in v1_pods}

    traffic_start = time.time()
    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    patch_wall = complete_wall = None
    t_patch = None
    try:
        # A baseline of v1 answers, started before now whatever the clock offset (an answer was
        # received after it ended, so the offset is at least `end - received`). The image changes
        # then, without waiting for kube-proxy to route to every v1 pod (its first sync may take
        # a second): that overlaps the rollout's first pod start, and a v1 pod that never answers
        # is judged below, from the recording, as is a Service that answers nothing.
        def baseline(answers: list[Answer]) -> Verdict:
            least = max((a.end - a.received for a in answers if a.received), default=0.0)
            cutoff = time.time() - BASELINE_MARGIN_S
            old = sum(1 for a in answers if a.ok and a.start - least < cutoff)
            return Done(True) if old >= BASELINE_ANSWERS else Pending(f"{old} answers")

        started = False
        with contextlib.suppress(WaitFailed):
            started = traffic.wait_for(
                baseline,
                timeout_s=CONVERGE_S,
                what=f"traffic to service/{APP}",
                expected=f"{BASELINE_ANSWERS} answers before the update",
            )
        if started:
            patch_wall = time.time()
            t_patch = recorder.mark("set image", image=new_image)
            patched = cluster.kube.request(
                "PATCH",
                DEPLOYMENTS.path(namespace, APP),
                body={
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [{"name": container["name"], "image": new_image}]
                            }
                        }
                    }
                },
                content_type="application/strategic-merge-patch+json",
            )
            with claims.behaviour():
                deployments.wait_observed(recorder, APP, deployments.generation(patched))
                try:
                    wait_deployment_ready(
                        cluster.kube,
                        namespace,
                        APP,
                        timeout_s=ROLLOUT_DEADLINE_S,
                        image_hint=cluster.image_hint,
                    )
                except WaitFailed as error:
                    samples = recorder.samples("Deployment", APP)
                    stall = proofs.rollout_stall(
                        samples[-1] if samples else None,
                        recorder.samples("ReplicaSet"),
                        new_image,
                        REPLICAS,
                    )
                    raise AssertionError(
                        f"the rollout did not complete within {ROLLOUT_DEADLINE_S}s: {stall} "
                        f"({error})"
                    ) from error
            complete_wall = time.time()
            recorder.mark("rollout complete")
            with contextlib.suppress(WaitFailed):
                traffic.wait_for(
                    lambda answers: _settled(recorder, traffic, answers, new_image),
                    timeout_s=SETTLE_S,
                    what=f"traffic to service/{APP}",
                    expected="every old pod out of the slice, its routing lag watched out, "
                    "every new pod answering",
                )
    finally:
        result = traffic.stop()

    # The suite's own path (the prober, the recorder, the clocks) first: a failure there is not
    # the behaviour's.
    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    offset = traffic_proofs.clock_offset(result.answers, result.chunk_sent)
    problem = traffic_proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    assert offset is not None
    shift = (offset.lo + offset.hi) / 2
    uncertainty = max(0.0, (offset.hi - offset.lo) / 2)
    blind = recorder.gap_problems(["Pod", "EndpointSlice"])
    assert not blind, (
        "the recorder lost a watch during the rollout, so its verdicts are not proven: "
        + "; ".join(blind)
    )
    names = {str(entry["name"]) for entry in recorder.to_dict()["pods"]}
    histories = {name: recorder.pod_history(name) for name in names}
    pods = {
        name: proofs.pod_span(history)
        for name, history in histories.items()
        if any(view is not None and matches(view.label_map(), SELECTOR) for _, _, view in history)
    }
    spans = proofs.slice_spans(recorder.samples("EndpointSlice"), APP)
    ok = [a for a in result.answers if a.ok]
    rows = proofs.routing_table(
        result.answers,
        pods,
        spans,
        offset=shift,
        uncertainty=uncertainty,
        lag_s=ROUTING_LAG_S,
        since=traffic_start,
        early_allowance_s=EARLY_ALLOWANCE_S,
    )
    traffic_end = max((a.start - shift for a in result.answers), default=traffic_start)
    origin = patch_wall or traffic_start
    # Until every v1 pod has answered through it (at the latest until the image change), the
    # fresh Service may not have all its rules on the prober's node yet (kube-proxy syncs at
    # most once a second; seen on kind: connections refused in the first 0.1 s, between
    # answers): failures then are counted, not judged.
    routed = min((r.first for r in rows if r.first is not None), default=None)
    converged = proofs.converged_at(rows, v1_names)
    started = proofs.started_up_at(routed, converged, patch_wall)
    _figures(figures, rows, result, origin, offset, patch_wall, complete_wall)
    starting = proofs.failed_before(result.failed, offset=shift, routed=started)
    figures.update(
        service_routed_s=_round(None if routed is None else routed - traffic_start),
        service_converged_s=_round(None if converged is None else converged - traffic_start),
        failed=len(result.failed) - starting,
        failed_before_routed=starting,
    )
    lags = proofs.routing_lag_problems(
        rows,
        lag_s=ROUTING_LAG_S,
        join_lag_s=JOIN_LAG_S,
        slice_lag_s=SLICE_LAG_S,
        uncertainty=uncertainty,
        traffic_end=traffic_end,
    )
    failures = proofs.failed_request_problems(
        result.failed,
        ok,
        rows,
        offset=shift,
        uncertainty=uncertainty,
        lag_s=ROUTING_LAG_S,
        workload=f"{APP}'s graceful shutdown (its preStop drain, then gunicorn)",
        origin=origin,
        routed=started,
    )
    with claims.behaviour():
        assert not [*lags, *failures], (
            f"the Service's answers did not follow its pods ({len(result.failed) - starting} of "
            f"{result.sent} requests failed, not counting {starting} while the fresh Service "
            f"started up; times from {'the image change' if patch_wall else 'the traffic start'}"
            "): " + "; ".join([*lags, *failures][:6])
        )
        assert None not in (patch_wall, complete_wall), (
            "the Service gave no baseline of v1 answers or the rollout never began, and no "
            "routing lag explains it: "
            f"{result.describe()}"
        )
    assert patch_wall is not None
    assert complete_wall is not None
    assert t_patch is not None
    settle_end = max(
        (r.left for r in rows if r.left is not None and r.image == old_image),
        default=complete_wall,
    )
    flow = traffic_proofs.coverage(
        [a.start - shift for a in result.answers],
        patch_wall - uncertainty,
        settle_end + ROUTING_LAG_S + uncertainty,
        max_gap_s=MAX_TRAFFIC_GAP_S,
        min_rate=MIN_RATE_PER_S,
    )
    figures.update(largest_traffic_gap_s=round(flow.gap, 3), traffic_rate_per_s=round(flow.rate, 1))
    assert not flow.problems, "traffic did not run through the whole rollout: " + "; ".join(
        flow.problems
    )
    views = {name: [view for _, _, view in history] for name, history in histories.items()}
    seen = proofs.rollout_seen_problems(views, old_image, new_image, REPLICAS)
    assert not seen, (
        "the recorder did not see the rollout, so its bounds prove nothing: " + "; ".join(seen)
    )
    moments = recorder.pod_moments(SELECTOR, since=t_patch, until=recorder.wall_to_t(settle_end))
    figures.update(
        max_pods=max((m.pods for m in moments), default=None),
        max_pods_with_terminating=max((m.total for m in moments), default=None),
        min_ready=min((m.ready for m in moments), default=None),
        moments=len(moments),
    )
    before = [a for a in result.answers if a.start - shift < patch_wall - uncertainty]
    after = [
        a for a in result.answers if a.start - shift > settle_end + ROUTING_LAG_S + uncertainty
    ]
    new_pods = [pod for pod in workloads.pods(APP) if pod["metadata"]["name"] not in v1_names]
    with claims.behaviour():
        asked = proofs.replicaset_bound_problems(
            recorder.samples("ReplicaSet"),
            APP,
            REPLICAS,
            MAX_SURGE,
            since_t=t_patch,
            until_t=recorder.wall_to_t(settle_end),
        )
        assert not asked, f"{proofs.DEPLOYMENT_CONTROLLER} broke maxSurge: " + "; ".join(asked[:5])
        violations = proofs.bound_problems(
            moments, REPLICAS, MAX_SURGE, MAX_UNAVAILABLE, lasting_s=POD_COUNT_CROSSING_S
        )
        # The ReplicaSets asked for no more than the strategy allows (above): more pods than that
        # are the ReplicaSet controller's; fewer Ready ones, old pods taken away before new ones
        # were Ready (the Deployment controller) or pods that lost readiness (see the events).
        surplus = [v for v in violations if "maxSurge" in v]
        assert not surplus, (
            f"{proofs.REPLICASET_CONTROLLER} kept more pods than its ReplicaSets ask for, at "
            f"{len(surplus)} of {len(moments)} observed moments: " + "; ".join(surplus[:5])
        )
        assert not violations, (
            f"fewer pods were Ready than the strategy allows at {len(violations)} of "
            f"{len(moments)} observed moments ({proofs.DEPLOYMENT_CONTROLLER} takes an old pod "
            "away only once a new one is Ready): " + "; ".join(violations[:5])
        )
        seen_versions = set(_versions(result.answers))
        assert seen_versions <= {FROM_TAG, TO_TAG}, (
            f"clients saw versions {sorted(seen_versions)}, expected only v1, v2"
        )
        assert set(_versions(before)) == {FROM_TAG}, (
            f"answers before the image change: {_versions(before)}, expected only {FROM_TAG}"
        )
        assert set(_versions(after)) == {TO_TAG}, (
            f"answers once the last old pod's routing lag was over: {_versions(after)}, "
            f"expected only {TO_TAG}"
        )
        images = {view.image for view in recorder.pods(SELECTOR).values() if not view.terminating}
        assert images == {new_image}, (
            f"pods after the rollout run {sorted(images)}, not {new_image}"
        )
        _read_back(cluster, namespace, new_pods)


def _settled(
    recorder: Recorder, traffic: BackgroundProbe, answers: list[Answer], new_image: str
) -> Verdict:
    """Every old pod is out of the slice and its routing lag watched out (TAIL_ANSWERS answers
    started after it, on the prober's clock at its most ahead), and every new pod listed ready
    has answered, or was listed longer ago than the routing lag (the verdict will say so)."""
    spans = proofs.slice_spans(recorder.samples("EndpointSlice"), APP)
    pods = recorder.pods(SELECTOR)
    old = {
        name for name, span in spans.items() if name not in pods or pods[name].image != new_image
    }
    staying = [name for name in old if spans[name].left is None]
    if staying:
        return Pending(f"still listed ready: {sorted(staying)}")
    ahead = _latest_offset_bound(traffic)
    last_left = max((spans[name].left or 0.0 for name in old), default=0.0)
    # An answer's start on this machine's clock is its start minus the offset, at least minus
    # `ahead`: answers started after this were started after the routing lag, whatever the offset.
    watched_to = last_left + ROUTING_LAG_S + ahead
    tail = sum(1 for a in answers if a.start > watched_to)
    served = {a.pod for a in answers if a.ok}
    newest = max((a.start for a in answers), default=0.0)
    silent = [
        name
        for name, span in spans.items()
        if name not in old
        and name not in served
        and span.joined is not None
        and newest < span.joined + ROUTING_LAG_S + ahead
    ]
    if tail < TAIL_ANSWERS or silent:
        return Pending(f"{tail} answers after the routing lag; not answered yet: {sorted(silent)}")
    return Done()


def _figures(
    figures: dict[str, Any],
    rows: Sequence[proofs.Routing],
    result: Any,
    origin: float,
    offset: traffic_proofs.ClockOffset,
    patch_wall: float | None,
    complete_wall: float | None,
) -> None:
    """The report's numbers: per pod its routing lags (a table the report can chart), the worst
    of each, and the answers from pods not Ready or already told to stop."""

    def worst(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(max(present), 3) if present else None

    figures.update(
        rollout_s=(round(complete_wall - patch_wall, 1) if complete_wall and patch_wall else None),
        rollout_deadline_s=ROLLOUT_DEADLINE_S,
        requests=result.sent,
        failed=len(result.failed),
        by_version=_versions(result.answers),
        clock_skew_s=round(offset.bound, 3),
        answers_while_terminating=sum(r.draining for r in rows),
        answers_before_ready=sum(r.early for r in rows),
        answers_after_leaving=sum(r.late for r in rows),
        max_ready_to_slice_s=worst([r.slice_in_s for r in rows]),
        max_slice_to_first_answer_s=worst([r.first_answer_s for r in rows]),
        max_terminating_to_out_s=worst([r.slice_out_s for r in rows]),
        max_out_to_last_answer_s=worst([r.last_answer_s for r in rows]),
        routing_lags_s={
            r.pod: {
                "ready>slice": _round(r.slice_in_s),
                "slice>first": _round(r.first_answer_s),
                "stop>out": _round(r.slice_out_s),
                "out>last": _round(r.last_answer_s),
                "draining answers": r.draining,
            }
            for r in rows
        },
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

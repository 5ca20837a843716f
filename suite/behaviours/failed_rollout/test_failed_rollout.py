"""A failed rollout and the way back: a version that never becomes Ready stops the rollout, the
Deployment says so, and an undo restores full capacity, without a failed request.

`incver` v1 runs 3 replicas (maxSurge 1, maxUnavailable 0, progressDeadlineSeconds 15, set here
and read back from the admitted Deployment). Under traffic through its Service the pod template
is set to v2 with `NEVER_READY=1`: that version starts and serves but its `/readyz` answers 503
for good (workloads/incver.py), so none of its pods ever becomes Ready. The claims, each from what
the cluster did (the recorder's samples, the live objects, the answers):

- the rollout stops within the strategy: the broken ReplicaSet makes at most maxSurge +
  maxUnavailable pods (here 1 = maxSurge) and the Deployment's availableReplicas never drops
  below replicas - maxUnavailable (here 3); old pods keep serving, no request fails;
- the Deployment reports Progressing=False with reason ProgressDeadlineExceeded no sooner than
  the admitted progressDeadlineSeconds after the rollout began and no later than that plus a
  stated margin (the deployment controller's requeue and status write);
- the undo (what `kubectl rollout undo` does: the previous revision's ReplicaSet, found by its
  revision annotation, has its pod template, minus the pod-template-hash label, copied back into
  the Deployment) restores full capacity within a stated bound: every replica updated, Ready and
  available, the broken ReplicaSet at 0; no request fails through it either, and no answer ever
  came from a broken pod.

A failure names the part the evidence points at (the deployment controller, the ReplicaSet
controller, or an admission change seen in the read-back).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import pytest

from suite import admitted, claims, deployments, floors, traffic_proofs
from suite.admitted import ABSENT
from suite.behaviours.failed_rollout import proofs
from suite.cluster import Cluster
from suite.context import CONTEXT_KEY
from suite.fixtures import PROBER_REACHABLE_S, READY_S, Workloads
from suite.floors import Floor
from suite.kube import DEPLOYMENTS, JSON, REPLICASETS, SERVICES, get_object, list_objects
from suite.recorder import Recorder
from suite.traffic import Prober, ProbeRequest
from suite.waiting import Done, Pending, Verdict, WaitFailed

APP = "incver"
REPLICAS = 3
MAX_SURGE = 1
MAX_UNAVAILABLE = 0
STRATEGY = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": MAX_UNAVAILABLE},
}
#: Short, so the failed rollout is told within the scenario (the API's default is 600 s). It
#: counts from the last progress (a pod created or turned Ready), so v1's own rollout meets it
#: only if no pod moves for 15 s: far beyond a present image's start (1-2 s here).
PROGRESS_DEADLINE_S = 15
#: manifests/incver with these numbers set explicitly, so they define the test (the demo keeps
#: the API's default deadline).
OVERRIDES = {
    f"Deployment/{APP}": {
        "spec": {
            "replicas": REPLICAS,
            "strategy": STRATEGY,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
        }
    }
}
FROM_TAG, BROKEN_TAG = "v1", "v2"
#: The broken version: v2 with its readiness failing for good (workloads/incver.py).
NEVER_READY = {"name": "NEVER_READY", "value": "1"}
SELECTOR = {"app.kubernetes.io/name": APP}

#: manifests/incver's readiness probe: a pod is Ready a period after it can answer, and the
#: broken version's pods are held NotReady by it (stripped, they would turn Ready: the read-back
#: below fails first).
READINESS = {"periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
POD_EXPECTED: dict[str, Any] = {
    "spec": {
        "readinessGates": ABSENT,
        "containers": [
            {
                "name": APP,
                "readinessProbe": {
                    **READINESS,
                    "httpGet": {"path": "/readyz", "port": "http"},
                },
            }
        ],
    }
}
#: The strategy and deadline as stored; minReadySeconds 0 (the API leaves a 0 out): Ready is
#: available, so "available" in the bounds below is "Ready".
DEPLOYMENT_EXPECTED: dict[str, Any] = {
    "spec": {
        "replicas": REPLICAS,
        "minReadySeconds": ABSENT,
        "strategy": STRATEGY,
        "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
    }
}
SERVICE_EXPECTED: dict[str, Any] = {
    "spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}
}

#: Rollout began -> Progressing=False/ProgressDeadlineExceeded, beyond the admitted deadline.
#: The deadline counts from the condition's lastUpdateTime, the last progress: the broken pod
#: counted as updated a moment after the change (seen well under 1 s; 2 s on a busy machine);
#: that time is stored in whole seconds (up to 1 s); the controller requeues the Deployment one
#: second after the deadline on purpose (requeueStuckDeployment), then writes the status and the
#: watch delivers it (well under a second): 5 s.
PROGRESS_MARGIN_S = 5.0
#: How long the scenario waits for the condition past its bound, so a late one is measured, not
#: only missed.
EXCEEDED_EXTRA_S = 10.0
#: Undo -> full capacity: the old ReplicaSet still holds every Ready pod (maxUnavailable 0), so
#: the deployment controller only takes it up as the new revision and scales the broken one to
#: 0; the ReplicaSet controller marks its pod deleted; then the statuses are written: a few
#: controller syncs, each well under a second (seen: about 1 s); 10 s for a busy machine.
RESTORE_DEADLINE_S = 10.0

#: Traffic through the Service the whole run, a new connection per request; to the ClusterIP from
#: the prober's environment (cluster DNS is not part of a rollout).
TRAFFIC = ProbeRequest(
    url="http://incver/version", concurrency=2, interval_ms=40, timeout_s=2.0, via="service-env"
)
TRAFFIC_CHUNK_S = 2.0
TRAFFIC_BOUND_S = 150.0
#: "Throughout": never longer than this between two request starts, at least this rate (about
#: 40/s are sent).
MAX_TRAFFIC_GAP_S = 1.5
MIN_RATE_PER_S = 10.0
WARMUP_ANSWERS = 10
AFTER_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
#: Every v1 pod answering through the Service before the measured traffic (kube-proxy syncs at
#: most once a second after the EndpointSlice update; 30 s covers a busy machine).
CONVERGE_S = 30.0
#: Prober timestamps come from its node's clock: the skew is measured each run.
MAX_CLOCK_SKEW_S = 0.5
#: pytest-timeout backstop behind the deadlines (suite/plugin.py): Ready (READY_S), converged,
#: then everything happens while the traffic runs.
BACKSTOP_S = 120.0 + CONVERGE_S + TRAFFIC_BOUND_S + 60.0


def floor_of(deadline_s: float) -> Floor:
    """Physical floor (suite.floors): v1 Ready, the progress deadline the controller must wait
    out, and the broken pod's scale-down after the undo. Pod start comes on top."""
    return Floor.of(
        ("v1 Ready (one readiness period)", READINESS["periodSeconds"]),
        ("progressDeadlineSeconds, waited out", deadline_s),
        ("ProgressDeadlineExceeded: the controller's requeue 1 s after", 1.0),
    )


FLOOR = floor_of(PROGRESS_DEADLINE_S)


# -- reading back ---------------------------------------------------------------------------------


def admitted_problems(
    deployment: Mapping[str, Any], pods: list[JSON], service: Mapping[str, Any]
) -> list[str]:
    """The live Deployment, pods and Service against what this scenario's bounds assume."""
    found = admitted.problems(deployment, DEPLOYMENT_EXPECTED, kind="deployment")
    found += admitted.all_problems(pods, POD_EXPECTED, kind="pod")
    found += admitted.problems(service, SERVICE_EXPECTED, kind="service")
    return found


def _read_back(cluster: Cluster, namespace: str, pods: list[JSON]) -> float:
    """Inside `claims.behaviour()`: one line when the cluster changed what this scenario
    depends on; else the admitted progressDeadlineSeconds."""
    deployment = get_object(cluster.kube, DEPLOYMENTS, namespace, APP)
    service = get_object(cluster.kube, SERVICES, namespace, APP)
    found = admitted_problems(deployment, pods, service)
    assert not found, admitted.rewritten(found, f"{APP}'s Deployment, pods or Service")
    return float((deployment.get("spec") or {})["progressDeadlineSeconds"])


# -- small helpers --------------------------------------------------------------------------------


def _wait_progressing(recorder: Recorder, wanted: str, since: float, generation: int) -> float:
    def seen() -> Verdict:
        at = proofs.first_with_progressing(
            recorder.samples("Deployment", APP), wanted, since=since, generation=generation
        )
        if at is not None:
            return Done(at)
        last = deployments.last_sample(recorder, APP)
        return Pending(f"Progressing {proofs.progressing(last) if last else '<none>'}")

    return float(
        recorder.wait_for(
            seen,
            timeout_s=READY_S,
            what=f"deployment/{APP}",
            expected=f"Progressing {wanted}",
        )
    )


def _ready_prober(recorder: Recorder) -> Any:
    def verdict() -> Verdict:
        ready = sorted(
            name
            for name, view in recorder.pods({"app.kubernetes.io/name": "prober"}).items()
            if view.ready and not view.terminating
        )
        return Done(ready[0]) if ready else Pending("no prober pod Ready")

    return verdict


def _replicasets(cluster: Cluster, namespace: str) -> list[JSON]:
    items, _ = list_objects(
        cluster.kube, REPLICASETS, namespace, label_selector="app.kubernetes.io/name=" + APP
    )
    return [
        rs
        for rs in items
        if any(
            o.get("kind") == "Deployment" and o.get("name") == APP
            for o in (rs.get("metadata") or {}).get("ownerReferences") or []
        )
    ]


def _latest_rs(recorder: Recorder, name: str) -> JSON | None:
    samples = recorder.samples("ReplicaSet", name)
    return samples[-1] if samples else None


def _lag(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) + 0.0 if start is not None and end is not None else None


# -- the scenario ---------------------------------------------------------------------------------


def test_failed_rollout_stops_within_its_bounds_and_undo_restores_capacity(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    """Roll to a version that never becomes Ready under traffic: it stops within maxSurge and
    maxUnavailable, the old pods keep serving, the Deployment reports ProgressDeadlineExceeded
    within its admitted deadline plus a margin, and an undo to the previous revision restores
    full capacity; no request fails the whole time."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    figures.update(
        replicas=REPLICAS,
        max_surge=MAX_SURGE,
        max_unavailable=MAX_UNAVAILABLE,
        progress_margin_s=PROGRESS_MARGIN_S,
        restore_deadline_s=RESTORE_DEADLINE_S,
    )
    # incver first, so the kubelet puts its ClusterIP into the prober's environment; the prober
    # is applied, not deployed, so a stopped deployment controller is named below, not in setup.
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
    v1_pods = workloads.pods(APP)
    with claims.behaviour():
        deadline_s = _read_back(cluster, namespace, v1_pods)
    figures[floors.FIGURE_KEY] = floor_of(deadline_s).to_dict()
    figures["progress_deadline_s"] = deadline_s
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    old_image, broken_image = cluster.image(FROM_TAG), cluster.image(BROKEN_TAG)
    assert container["image"] == old_image, f"{APP} runs {container['image']}, not {old_image}"
    # The deadline of the broken rollout must be its own: the first one completed (and said so).
    recorder.mark("v1 complete")
    with claims.behaviour():
        _wait_progressing(
            recorder, proofs.COMPLETE, recorder.started_wall, deployments.generation(deployment)
        )
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
    v1_names = [str(pod["metadata"]["name"]) for pod in v1_pods]
    prober.converge(TRAFFIC.url, v1_names, timeout_s=CONVERGE_S)
    recorder.mark("Service converged")

    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    broken_wall = exceeded_wall = undo_wall = restored_wall = None
    broken_rs: str | None = None
    previous_revision = None
    try:
        traffic.wait_answered(
            WARMUP_ANSWERS,
            after=0.0,
            skew_s=MAX_CLOCK_SKEW_S,
            timeout_s=ANSWERS_DEADLINE_S,
            what="before the broken rollout",
        )
        broken_wall = time.time()
        recorder.mark("broken rollout", image=broken_image)
        patched = cluster.kube.request(
            "PATCH",
            DEPLOYMENTS.path(namespace, APP),
            body={
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": APP, "image": broken_image, "env": [NEVER_READY]}
                            ]
                        }
                    }
                }
            },
            content_type="application/strategic-merge-patch+json",
        )
        broken_generation = deployments.generation(patched)
        with claims.behaviour():
            deployments.wait_observed(recorder, APP, broken_generation)

            def exceeded() -> Verdict:
                at = proofs.first_with_progressing(
                    recorder.samples("Deployment", APP),
                    proofs.EXCEEDED,
                    since=broken_wall or 0.0,
                    generation=broken_generation,
                )
                last = deployments.last_sample(recorder, APP)
                return (
                    Done(at)
                    if at is not None
                    else Pending(
                        f"Progressing {proofs.progressing(last) if last else '<none>'}, "
                        f"available {last['available'] if last else '?'}/{REPLICAS}"
                    )
                )

            with contextlib.suppress(WaitFailed):
                exceeded_wall = recorder.wait_for(
                    exceeded,
                    timeout_s=deadline_s + PROGRESS_MARGIN_S + EXCEEDED_EXTRA_S,
                    what=f"deployment/{APP}",
                    expected="Progressing=False, reason ProgressDeadlineExceeded",
                )
            last = deployments.last_sample(recorder, APP)
            problem = proofs.deadline_problem(
                broken_wall,
                exceeded_wall,
                deadline_s=deadline_s,
                margin_s=PROGRESS_MARGIN_S,
                last_seen=proofs.progressing(last) if last else "",
            )
            assert problem is None, f"deployment/{APP}'s broken rollout: {problem}"
        recorder.mark("ProgressDeadlineExceeded")

        # The way back, as `kubectl rollout undo` takes it: the live ReplicaSets and their
        # revisions, the previous one's template without its pod-template-hash label.
        live = get_object(cluster.kube, DEPLOYMENTS, namespace, APP)
        current = proofs.revision_of(live)
        replicasets = _replicasets(cluster, namespace)
        broken_rs = next(
            (
                str(rs["metadata"]["name"])
                for rs in replicasets
                if proofs.revision_of(rs) == current
            ),
            None,
        )
        previous = proofs.previous_replicaset(replicasets, current)
        assert previous is not None, (
            f"deployment/{APP} is at revision {current}, and its ReplicaSets are "
            f"{[(rs['metadata']['name'], proofs.revision_of(rs)) for rs in replicasets]}: "
            "no revision to go back to"
        )
        assert broken_rs is not None, f"no ReplicaSet of deployment/{APP} at revision {current}"
        previous_revision = proofs.revision_of(previous)
        undo_wall = time.time()
        recorder.mark("undo", revision=previous_revision)
        undone = cluster.kube.request(
            "PATCH",
            DEPLOYMENTS.path(namespace, APP),
            body=[
                {"op": "replace", "path": "/spec/template", "value": proofs.undo_template(previous)}
            ],
            content_type="application/json-patch+json",
        )
        undo_generation = deployments.generation(undone)
        with claims.behaviour():
            deployments.wait_observed(recorder, APP, undo_generation)

            def restored() -> Verdict:
                last, rs = (
                    deployments.last_sample(recorder, APP),
                    _latest_rs(recorder, broken_rs or ""),
                )
                problem = proofs.restored_problem(
                    last, rs, replicas=REPLICAS, generation=undo_generation
                )
                if problem is not None:
                    return Pending(problem)
                # When the recorder saw the last of the two statuses come right.
                return Done(max(float(s["wall"]) for s in (last, rs) if s is not None))

            try:
                restored_wall = recorder.wait_for(
                    restored,
                    timeout_s=RESTORE_DEADLINE_S,
                    what=f"deployment/{APP}",
                    expected=f"revision {previous_revision}'s template back, {REPLICAS} replicas "
                    f"updated, Ready and available, replicaset/{broken_rs} at 0",
                )
            except WaitFailed as error:
                raise AssertionError(
                    f"the undo did not restore full capacity within {RESTORE_DEADLINE_S:.0f}s "
                    f"({proofs.DEPLOYMENT_CONTROLLER} scales the broken ReplicaSet to 0 and the "
                    f"old one back up, {proofs.REPLICASET_CONTROLLER} removes the pod): "
                    f"{claims.message_of(error)}"
                ) from error
        recorder.mark("restored")
        traffic.wait_answered(
            AFTER_ANSWERS,
            after=restored_wall or time.time(),
            skew_s=MAX_CLOCK_SKEW_S,
            timeout_s=ANSWERS_DEADLINE_S,
            what="after the undo",
        )
    finally:
        result = traffic.stop()

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    offset = traffic_proofs.clock_offset(result.answers, result.chunk_sent)
    problem = traffic_proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    skew = offset.bound if offset else MAX_CLOCK_SKEW_S
    blind = recorder.gap_problems(["Pod", "Deployment", "ReplicaSet"])
    assert not blind, (
        "the recorder lost a watch during the rollout, so its verdicts are not proven: "
        + "; ".join(blind)
    )
    assert broken_wall is not None
    assert restored_wall is not None
    assert broken_rs is not None
    entries = recorder.to_dict()["pods"]
    broken_pods = proofs.pods_of(entries, broken_rs)
    deployment_samples = recorder.samples("Deployment", APP)
    window = [s for s in deployment_samples if broken_wall <= float(s["wall"]) <= restored_wall]
    flow = traffic_proofs.coverage(
        [a.start for a in result.answers],
        broken_wall + skew,
        restored_wall - skew,
        max_gap_s=MAX_TRAFFIC_GAP_S,
        min_rate=MIN_RATE_PER_S,
    )
    versions: dict[str, int] = {}
    for answer in result.answers:
        if answer.ok:
            versions[answer.version or "?"] = versions.get(answer.version or "?", 0) + 1
    figures.update(
        requests=result.sent,
        failed=len(result.failed),
        by_version=versions,
        exceeded_after_s=_lag(broken_wall, exceeded_wall),
        undo_to_restored_s=_lag(undo_wall, restored_wall),
        broken_pods=len(broken_pods),
        broken_replicaset=broken_rs,
        undo_to_revision=previous_revision,
        min_available=min((int(s["available"]) for s in window), default=None),
        deployment_samples=len(window),
        largest_traffic_gap_s=round(flow.gap, 3),
        traffic_rate_per_s=round(flow.rate, 1),
        clock_skew_s=round(skew, 3),
    )
    assert not flow.problems, "traffic did not run through the whole rollout: " + "; ".join(
        flow.problems
    )
    with claims.behaviour():
        surge = proofs.broken_pod_problems(
            broken_pods,
            recorder.samples("ReplicaSet"),
            broken_rs,
            max_surge=MAX_SURGE,
            max_unavailable=MAX_UNAVAILABLE,
        )
        assert not surge, "the broken rollout did not stop within its strategy: " + "; ".join(surge)
        available = proofs.availability_problems(
            deployment_samples,
            replicas=REPLICAS,
            max_unavailable=MAX_UNAVAILABLE,
            since=broken_wall,
            until=restored_wall,
        )
        assert not available, (
            f"deployment/{APP} lost capacity during the broken rollout: " + "; ".join(available[:5])
        )
        from_broken = proofs.answered_by(result.answers, broken_pods)
        assert not from_broken, (
            f"{len(from_broken)} answers came from the broken version's pods "
            f"({sorted({a.pod or '?' for a in from_broken})}), which never passed readiness: "
            "the EndpointSlice controller listed a pod that was not Ready"
        )
        failed = proofs.failed_problem(result.answers)
        assert failed is None, (
            f"service/{APP} through the failed rollout and the undo: {failed}; the old pods "
            "stayed available throughout (above), so the Service's routing to them (the "
            "EndpointSlice controller, kube-proxy) or the workload failed them"
        )
        live = get_object(cluster.kube, DEPLOYMENTS, namespace, APP)
        back = live["spec"]["template"]["spec"]["containers"][0]
        reverted = back.get("image") == old_image and NEVER_READY not in (back.get("env") or [])
        assert reverted, (
            f"after the undo deployment/{APP} runs {back.get('image')} with env "
            f"{back.get('env')}, not revision {previous_revision}'s {old_image}"
        )

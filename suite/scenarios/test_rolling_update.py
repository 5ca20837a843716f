"""Rolling update: v1 -> v2 under continuous traffic, with zero failed requests, never more pods
than replicas + maxSurge, never fewer ready than replicas - maxUnavailable.

`incver` answers its version; v1 and v2 differ only in the image tag. Zero failures is made a
fact by the manifests (readiness probe, preStop sleep, graceful shutdown) and proven here.

Nothing is proven by what was not watched: traffic must cover the whole rollout (its largest gap
between request starts and its rate are asserted), the recorder must have listed the namespace
and seen every old pod go and every new pod become Ready, and the clock skew between the prober
and this machine (which places requests against the rollout's marks) is measured each run.
"""

from __future__ import annotations

import time
from typing import Any

from suite import floors, proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import DEPLOYMENTS, name_of
from suite.recorder import Recorder
from suite.traffic import Answer, Prober, ProbeRequest
from suite.waiting import Done, Pending, wait_deployment_ready

APP = "incver"
REPLICAS = 4
MAX_SURGE = 1
MAX_UNAVAILABLE = 0
#: The strategy is set explicitly (not taken from the manifest) so these numbers define the test.
OVERRIDES = {
    f"Deployment/{APP}": {
        "spec": {
            "replicas": REPLICAS,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": MAX_UNAVAILABLE},
            },
        }
    }
}
FROM_TAG, TO_TAG = "v1", "v2"
SELECTOR = {"app.kubernetes.io/name": APP}

#: Continuous traffic through the Service: 2 requests at a time, every 20 ms each. It runs in
#: 3 s chunks (one streamed `POST /probe` each); the step between chunks is one API round trip,
#: and the traffic stops at the end of its current chunk, so shorter chunks end the test sooner.
TRAFFIC = ProbeRequest(url="http://incver/version", concurrency=2, interval_ms=20, timeout_s=2.0)
TRAFFIC_CHUNK_S = 3.0
TRAFFIC_BOUND_S = 300.0
#: "Continuous": never longer than this between two request starts anywhere from the image change
#: to the end of settling (a chunk boundary takes well under a second), and at least this many
#: requests per second (2 workers x one request per 20 ms + latency gives about 50-80/s).
MAX_TRAFFIC_GAP_S = 1.0
MIN_RATE_PER_S = 20.0
BASELINE_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
#: Every v1 replica answers through the Service before traffic is measured: the EndpointSlice
#: update and a kube-proxy sync (at most once a second); 30 s covers a busy machine.
CONVERGE_S = 30.0
#: pytest-timeout backstop behind the deadlines above (suite/plugin.py): Ready (120 s, READY_S of
#: suite/fixtures.py), converged, then the rollout happens while the traffic runs; plus a margin.
BACKSTOP_S = 120.0 + CONVERGE_S + TRAFFIC_BOUND_S + 60.0
#: manifests/incver: readinessProbe periodSeconds and the preStop sleep.
READINESS_PERIOD_S = 1
PRESTOP_S = 3
#: Physical floor (suite.floors): maxSurge 1 and maxUnavailable 0 make the rollout REPLICAS steps,
#: each waiting for a new pod's readiness; the last old pod leaves after its preStop sleep. Pod
#: start (one per step: sandbox, container start) comes on top.
FLOOR = Floor.of(
    ("v1 Ready (one readiness period)", READINESS_PERIOD_S),
    ("endpoints reach kube-proxy (one sync)", 1),
    (f"{REPLICAS} steps, each a new pod's readiness period", REPLICAS * READINESS_PERIOD_S),
    ("the last old pod's preStop sleep", PRESTOP_S),
)
#: One step (maxSurge 1: one new pod at a time) = schedule + start a present image (~2-3 s) +
#: the first readiness probe (period 1 s); allow 10 s per step on a busy machine, plus 30 s.
ROLLOUT_DEADLINE_S = REPLICAS * 10 + 30
#: After the rollout completes, old pods are still terminating: for their 3 s preStop sleep they
#: keep answering, and kube-proxy may route a new connection to them until it resyncs (1-2 s).
#: Answers that started later than this after completion must all come from the new version.
SETTLE_S = 5.0
TAIL_ANSWERS = 30
#: Prober timestamps come from its node's clock, marks from this machine's: the skew is measured
#: each run (suite.proofs.clock_offset) and must stay within this.
MAX_CLOCK_SKEW_S = 0.5
#: The baseline counts answers older than this (so the window before the change is never empty).
BASELINE_AGE_S = MAX_CLOCK_SKEW_S


def _versions(answers: list[Answer]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        if answer.ok:
            counts[answer.version or "?"] = counts.get(answer.version or "?", 0) + 1
    return counts


def _older_than(answers: list[Answer], seconds: float) -> int:
    cutoff = time.time() - seconds
    return sum(1 for answer in answers if answer.start < cutoff)


def test_rolling_update_replaces_every_pod_without_a_failed_request(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Set the image to v2 under continuous traffic: no request fails, the pod counts stay within
    the surge/unavailable bounds at every observed moment, clients see v1 before and v2 after
    (only those two), and the rollout completes within the stated time."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    deployment = workloads.deploy(APP, overrides=OVERRIDES)
    # The bounds go into the report first, so its pod-count chart has them even on a timeout.
    figures.update(replicas=REPLICAS, max_surge=MAX_SURGE, max_unavailable=MAX_UNAVAILABLE)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    old_image, new_image = cluster.image(FROM_TAG), cluster.image(TO_TAG)
    assert container["image"] == old_image, f"{APP} runs {container['image']}, not {old_image}"
    pods = [name_of(pod) for pod in workloads.pods(APP)]
    converged_s = prober.converge(TRAFFIC.url, pods, timeout_s=CONVERGE_S)
    recorder.mark("Service converged")
    figures.update(service_converged_s=round(converged_s, 1))

    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    try:
        # Baseline answers count only once they are older than the clock-skew allowance, so the
        # "before the image change" window below cannot come out empty.
        traffic.wait_for(
            lambda answers: (
                Done()
                if _older_than(answers, BASELINE_AGE_S) >= BASELINE_ANSWERS
                else Pending(f"{_older_than(answers, BASELINE_AGE_S)} settled answers")
            ),
            timeout_s=ANSWERS_DEADLINE_S,
            what=f"traffic to service/{APP}",
            expected=f"{BASELINE_ANSWERS} answers before the update",
        )
        patch_wall = time.time()
        t_patch = recorder.mark("set image", image=new_image)
        cluster.kube.request(
            "PATCH",
            DEPLOYMENTS.path(namespace, APP),
            body={
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": container["name"], "image": new_image}]}
                    }
                }
            },
            content_type="application/strategic-merge-patch+json",
        )
        wait_deployment_ready(
            cluster.kube,
            namespace,
            APP,
            timeout_s=ROLLOUT_DEADLINE_S,
            image_hint=cluster.image_hint,
            hint=(
                "a rollout is driven by kube-controller-manager's deployment controller; "
                f"kubectl -n {namespace} rollout status deployment/{APP}"
            ),
        )
        complete_wall = time.time()
        t_complete = recorder.mark("rollout complete")
        settled = complete_wall + SETTLE_S + MAX_CLOCK_SKEW_S
        traffic.wait_for(
            lambda answers: (
                Done()
                if sum(a.start > settled for a in answers) >= TAIL_ANSWERS
                else Pending(f"{sum(a.start > settled for a in answers)} answers after settling")
            ),
            timeout_s=SETTLE_S + ANSWERS_DEADLINE_S,
            what=f"traffic to service/{APP}",
            expected=f"{TAIL_ANSWERS} answers after the rollout settled",
        )
    finally:
        result = traffic.stop()

    offset = proofs.clock_offset(result.answers, result.chunk_sent)
    skew = offset.bound if offset else MAX_CLOCK_SKEW_S
    before = [a for a in result.answers if a.start < patch_wall - skew]
    after = [a for a in result.answers if a.start > complete_wall + SETTLE_S + skew]
    flow = proofs.coverage(
        [a.start for a in result.answers],
        patch_wall - skew,
        complete_wall + SETTLE_S + skew,
        max_gap_s=MAX_TRAFFIC_GAP_S,
        min_rate=MIN_RATE_PER_S,
    )
    moments = recorder.pod_moments(SELECTOR, since=t_patch, until=t_complete + SETTLE_S)
    names = {str(entry["name"]) for entry in recorder.to_dict()["pods"]}
    histories = {name: [view for _, _, view in recorder.pod_history(name)] for name in names}
    figures.update(
        rollout_s=round(complete_wall - patch_wall, 1),
        rollout_deadline_s=ROLLOUT_DEADLINE_S,
        requests=result.sent,
        failed=len(result.failed),
        by_version=_versions(result.answers),
        max_pods=max((m.pods for m in moments), default=None),
        max_pods_with_terminating=max((m.total for m in moments), default=None),
        min_ready=min((m.ready for m in moments), default=None),
        moments=len(moments),
        largest_traffic_gap_s=round(flow.gap, 3),
        traffic_rate_per_s=round(flow.rate, 1),
        clock_skew_s=round(skew, 3),
    )

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    problem = proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    assert not flow.problems, "traffic did not run through the whole rollout: " + "; ".join(
        flow.problems
    )
    assert not result.failed, (
        f"{len(result.failed)} of {result.sent} requests failed during the rollout, first at "
        f"{result.failed[0].start - patch_wall:+.1f}s from the image change: "
        f"{result.describe()} (readiness probe, preStop sleep and graceful shutdown make zero "
        "failures possible; a node's service proxy that follows endpoint changes late breaks it)"
    )
    blind = recorder.gap_problems(["Pod"], since=t_patch, until=t_complete + SETTLE_S)
    assert not blind, (
        "the recorder lost its pod watch during the rollout, so its bounds are not proven: "
        + "; ".join(blind)
    )
    seen = proofs.rollout_seen_problems(histories, old_image, new_image, REPLICAS)
    assert not seen, (
        "the recorder did not see the rollout, so its bounds prove nothing: " + "; ".join(seen)
    )
    violations = proofs.bound_problems(moments, REPLICAS, MAX_SURGE, MAX_UNAVAILABLE)
    assert not violations, (
        f"pod counts left the rolling-update bounds at {len(violations)} of {len(moments)} "
        "observed moments: " + "; ".join(violations[:5])
    )
    seen_versions = set(_versions(result.answers))
    assert seen_versions <= {FROM_TAG, TO_TAG}, (
        f"clients saw versions {sorted(seen_versions)}, expected only v1, v2"
    )
    assert set(_versions(before)) == {FROM_TAG}, (
        f"answers before the image change: {_versions(before)}, expected only {FROM_TAG}"
    )
    assert set(_versions(after)) == {TO_TAG}, (
        f"answers from {SETTLE_S:.0f}s after the rollout completed: {_versions(after)}, "
        f"expected only {TO_TAG}"
    )
    images = {view.image for view in recorder.pods(SELECTOR).values() if not view.terminating}
    assert images == {new_image}, f"pods after the rollout run {sorted(images)}, not {new_image}"

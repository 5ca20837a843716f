"""Disruption budget and drain: a PodDisruptionBudget holds a Deployment's Ready pods at its
minAvailable while a node is drained through the Eviction API, under traffic.

`incver` runs 4 replicas spread evenly over the schedulable nodes (a topology spread constraint,
so a 2-worker kind cluster holds 2 on each) with a PodDisruptionBudget of minAvailable 3 (set
here, read back from the admitted object). Under traffic through its Service from the prober, the
scenario cordons a node holding incver pods (not the prober's) and drains it as `kubectl drain`
does: one policy/v1 Eviction per pod of the test namespace on it, a refused one (429
TooManyRequests: the budget said no) retried until it goes through, then waits until those pods
are gone. The node is uncordoned at the end, whatever happened. The claims, each from what the
cluster did:

- the budget's status is computed by the disruption controller before the drain (without it,
  every eviction is refused and no drain ever completes);
- evictions that would break the budget are refused: 429s are counted, and at least one is
  required when the cluster makes it certain (the node held more pods than the budget let go at
  once, and the first pass of evictions ended before any replacement was Ready);
- Ready pods (the recorder's pod states; what the disruption controller counts as healthy) and
  the Deployment's availableReplicas never fall below the admitted minAvailable;
- the drain completes within a stated bound, every replica Ready again, none on the drained node;
- no request through the Service fails (incver drains before it stops, as in the rolling update).

It needs two schedulable nodes: on `--cluster=local` (one node) it is deselected, and on an
existing cluster with fewer it says why it cannot run.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from suite import admitted, claims, floors, manifests, timing, traffic_proofs
from suite.admitted import ABSENT
from suite.behaviours.disruption_budget import proofs
from suite.behaviours.failed_rollout.proofs import failed_problem
from suite.cluster import Cluster
from suite.fixtures import READY_S, Workloads
from suite.floors import Floor
from suite.kube import JSON, NODES, PODS, KubeError, Resource, get_object, list_objects
from suite.recorder import Recorder
from suite.session import STATE_KEY
from suite.traffic import Prober, ProbeRequest
from suite.waiting import Done, Pending, Source, State, Verdict, WaitFailed, wait_until

pytestmark = [
    pytest.mark.only_on(
        "kind", "existing", reason="needs two schedulable worker nodes: it drains one"
    ),
    pytest.mark.alone(reason="it cordons and drains a node that tests beside it may be using"),
]

APP = "incver"
REPLICAS = 4
#: Of 4 replicas, 3 must stay available: the budget lets one pod go at a time.
MIN_AVAILABLE = 3
SELECTOR = {"app.kubernetes.io/name": APP}
#: Evenly over the nodes a pod may go to (tainted and cordoned ones left out: `Honor`), so the
#: drained node holds 2 of the 4 on two workers: more than the budget lets go at once.
SPREAD = {
    "maxSkew": 1,
    "topologyKey": "kubernetes.io/hostname",
    "whenUnsatisfiable": "DoNotSchedule",
    "nodeTaintsPolicy": "Honor",
    "labelSelector": {"matchLabels": SELECTOR},
}
OVERRIDES = {
    f"Deployment/{APP}": {
        "spec": {
            "replicas": REPLICAS,
            "template": {"spec": {"topologySpreadConstraints": [SPREAD]}},
        }
    }
}
#: The scenario's own object (the demo has no budget): applied as the manifests are.
BUDGET: JSON = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {
        "name": APP,
        "labels": {"app.kubernetes.io/name": APP, "app.kubernetes.io/part-of": "kube-alive"},
    },
    "spec": {"minAvailable": MIN_AVAILABLE, "selector": {"matchLabels": SELECTOR}},
}
PDBS = Resource("PodDisruptionBudget", "/apis/policy/v1", "poddisruptionbudgets")

#: What the bounds below assume, read back: the budget as submitted (no unhealthy-pod policy that
#: would let a not-Ready pod go regardless), the replicas, the spread, and incver's readiness and
#: drain (a pod leaves the Service before it stops).
DRAIN_S = timing.INCVER_DRAIN_S
BUDGET_EXPECTED: dict[str, Any] = {
    "spec": {
        "minAvailable": MIN_AVAILABLE,
        "maxUnavailable": ABSENT,
        "selector": {"matchLabels": SELECTOR},
    }
}
DEPLOYMENT_EXPECTED: dict[str, Any] = {
    "spec": {"replicas": REPLICAS, "template": {"spec": {"topologySpreadConstraints": [SPREAD]}}}
}
POD_EXPECTED: dict[str, Any] = {
    "spec": {
        "readinessGates": ABSENT,
        "containers": [
            {
                "name": APP,
                "readinessProbe": {
                    "periodSeconds": 1,
                    "httpGet": {"path": "/readyz", "port": "http"},
                },
                "lifecycle": {
                    "preStop": {"httpGet": {"path": f"/drain?seconds={DRAIN_S}", "port": "http"}}
                },
            }
        ],
    }
}

#: The disruption controller computes the budget's status on every pod change (well under a
#: second); 30 s for a busy machine.
BUDGET_COMPUTED_S = 30.0
#: A refused eviction is tried again when the recorder sees a pod change, at the latest this long
#: after (`kubectl drain` waits 5 s; the budget grows only when a replacement turns Ready).
RETRY_S = 2.0
#: Cordon -> every pod of the node evicted and gone. Each pod past the first waits for a
#: replacement: scheduled, started (1-2 s with the image present), Ready after one readiness
#: period, counted by the disruption controller; the last evicted pod then drains (DRAIN_S) and
#: stops (gunicorn's graceful timeout, within the 20 s grace period). Seen: about 10 s; 60 s for
#: a busy machine.
DRAIN_DEADLINE_S = 60.0
#: Drained -> every replica Ready and available again elsewhere (the last replacement's start).
RESTORE_DEADLINE_S = 30.0

#: Traffic through the Service the whole drain, a new connection per request.
TRAFFIC = ProbeRequest(url=f"http://{APP}/version", concurrency=2, interval_ms=40, timeout_s=2.0)
TRAFFIC_CHUNK_S = 2.0
TRAFFIC_BOUND_S = DRAIN_DEADLINE_S + RESTORE_DEADLINE_S + 30.0
MAX_TRAFFIC_GAP_S = 1.5
MIN_RATE_PER_S = 10.0
WARMUP_ANSWERS = 10
AFTER_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
CONVERGE_S = 30.0
MAX_CLOCK_SKEW_S = 0.5
#: pytest-timeout backstop behind the deadlines (suite/plugin.py).
BACKSTOP_S = READY_S + BUDGET_COMPUTED_S + CONVERGE_S + TRAFFIC_BOUND_S + 60.0

FLOOR = Floor.of(
    ("replacement Ready (one readiness period)", 1.0),
    ("last evicted pod's preStop drain", float(DRAIN_S)),
)


# -- small helpers --------------------------------------------------------------------------------


def _require_two_nodes(cluster: Cluster, config: pytest.Config) -> list[str]:
    """The schedulable nodes; with fewer than two, the scenario says why it cannot run."""
    items, _ = list_objects(cluster.kube, NODES)
    nodes = proofs.schedulable_nodes(items)
    if len(nodes) >= 2:
        return nodes
    message = (
        f"the cluster has {len(nodes)} schedulable node(s) ({', '.join(nodes) or 'none'}): a drain "
        "needs another node to move the pods to; use a cluster with two schedulable workers "
        "(--cluster=kind makes one)"
    )
    if config.stash[STATE_KEY].settings.fail_on_skip:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _budget(cluster: Cluster, namespace: str) -> JSON:
    return get_object(cluster.kube, PDBS, namespace, APP)


def _cordon(cluster: Cluster, node: str, unschedulable: bool) -> None:
    cluster.kube.request(
        "PATCH",
        NODES.path(None, node),
        body={"spec": {"unschedulable": unschedulable or None}},
        content_type="application/strategic-merge-patch+json",
    )


def _pods_on(cluster: Cluster, namespace: str, node: str) -> list[str]:
    """Every pod of the test namespace on `node` (terminating ones included): what the drain
    evicts and waits for."""
    items, _ = list_objects(cluster.kube, PODS, namespace, field_selector=f"spec.nodeName={node}")
    return sorted(str(pod["metadata"]["name"]) for pod in items)


def _evict(cluster: Cluster, namespace: str, pod: str) -> int:
    """One policy/v1 Eviction: 201 (accepted), 429 (the budget refused it) or 404 (gone)."""
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": namespace},
    }
    try:
        cluster.kube.request("POST", PODS.path(namespace, pod) + "/eviction", body=body)
    except KubeError as error:
        if error.status in (404, 429):
            return error.status
        raise
    return 201


def _ready(recorder: Recorder) -> int:
    return sum(v.ready and not v.terminating for v in recorder.pods(SELECTOR).values())


def _wait_pod_change(recorder: Recorder, ready_before: int) -> None:
    """Until the count of Ready pods changes (a replacement turning Ready lets the budget grow),
    at most RETRY_S: when a refused eviction is tried again."""
    with contextlib.suppress(WaitFailed):
        recorder.wait_for(
            lambda: Done() if _ready(recorder) != ready_before else Pending("no change"),
            timeout_s=RETRY_S,
            what=f"{APP}'s pods",
            expected="a change in Ready pods",
        )


def _wait_budget_computed(cluster: Cluster, namespace: str) -> JSON:
    """Get, check, watch the budget until the disruption controller computed its status for
    every replica; the failure names that controller and shows the status last seen."""

    def verdict(state: State) -> Verdict:
        budget = state["pdb"].get(APP)
        if budget is None:
            return Pending("not found")
        problem = proofs.budget_computed_problem(budget, pods=REPLICAS)
        return Pending(problem) if problem else Done(budget)

    try:
        found: JSON = wait_until(
            cluster.kube,
            [Source("pdb", PDBS, namespace, field_selector=f"metadata.name={APP}")],
            verdict,
            timeout_s=BUDGET_COMPUTED_S,
            what=f"poddisruptionbudget/{APP}",
            where=namespace,
            expected=f"status for its generation, {REPLICAS} pods healthy",
        )
    except WaitFailed as error:
        raise AssertionError(
            f"{proofs.DISRUPTION_CONTROLLER} never computed pdb/{APP}'s status within "
            f"{BUDGET_COMPUTED_S:.0f}s, so the Eviction API refuses every eviction and no drain "
            f"can complete: {claims.message_of(error)}"
        ) from error
    return found


def _budget_message(cluster: Cluster, namespace: str, what: str) -> str:
    try:
        status = proofs.budget_status(_budget(cluster, namespace))
    except KubeError as error:
        status = f"unreadable ({error})"
    return f"{what}; {proofs.DISRUPTION_CONTROLLER} computes the budget; pdb/{APP}: {status}"


# -- the scenario ---------------------------------------------------------------------------------


def test_a_drain_through_the_eviction_api_keeps_the_disruption_budget(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
    pytestconfig: pytest.Config,
) -> None:
    """Cordon a node and evict its pods under traffic: the budget refuses what would break it
    (429s counted), Ready pods never fall below minAvailable, the drain completes once
    replacements are Ready elsewhere, and no request fails."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    schedulable = _require_two_nodes(cluster, pytestconfig)
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    figures.update(replicas=REPLICAS, drain_deadline_s=DRAIN_DEADLINE_S)
    workloads.apply(APP, overrides=OVERRIDES)
    manifests.apply_objects(
        cluster.kube,
        manifests.prepare([BUDGET], namespace),
        mapper=manifests.RestMapper(cluster.kube),
    )
    workloads.wait_ready(APP)
    pods = workloads.pods(APP)
    with claims.behaviour():
        budget = _budget(cluster, namespace)
        found = admitted.problems(budget, BUDGET_EXPECTED, kind="poddisruptionbudget")
        found += admitted.problems(
            workloads.deployment(APP), DEPLOYMENT_EXPECTED, kind="deployment"
        )
        found += admitted.all_problems(pods, POD_EXPECTED, kind="pod")
        assert not found, admitted.rewritten(found, f"{APP}'s budget, Deployment or pods")
    min_available = int(budget["spec"]["minAvailable"])
    figures["min_available"] = min_available

    # The node to drain: one with incver pods, not the prober's (its traffic must go on).
    prober_node = recorder.pods({"app.kubernetes.io/name": "prober"})[str(prober.pod)].node
    by_node: dict[str, list[str]] = {}
    for pod in pods:
        by_node.setdefault(str(pod["spec"].get("nodeName")), []).append(pod["metadata"]["name"])
    candidates = [n for n in schedulable if n != prober_node and by_node.get(n)]
    assert candidates, (
        f"no schedulable node other than the prober's ({prober_node}) holds a pod of {APP}: "
        f"{by_node}; the spread constraint should have put some on every schedulable node"
    )
    node = max(candidates, key=lambda n: len(by_node[n]))
    figures.update(drained_node=node, pods_on_node=len(by_node[node]))

    with claims.behaviour():
        budget = _wait_budget_computed(cluster, namespace)
    allowed = int((budget.get("status") or {}).get("disruptionsAllowed") or 0)
    figures["disruptions_allowed"] = allowed

    prober.converge(TRAFFIC.url, [p["metadata"]["name"] for p in pods], timeout_s=CONVERGE_S)
    recorder.mark("Service converged")
    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    tried = refused = 0
    cordon_wall = first_pass_end = drained_wall = restored_wall = None
    evicted: dict[str, float] = {}
    try:
        traffic.wait_answered(
            WARMUP_ANSWERS,
            after=0.0,
            skew_s=MAX_CLOCK_SKEW_S,
            timeout_s=ANSWERS_DEADLINE_S,
            what="before the drain",
        )
        cordon_wall = time.time()
        recorder.mark("cordon", node=node)
        _cordon(cluster, node, True)
        with claims.behaviour():
            deadline = time.monotonic() + DRAIN_DEADLINE_S
            while True:
                waiting = [p for p in _pods_on(cluster, namespace, node) if p not in evicted]
                for pod in waiting:
                    tried += 1
                    answer = _evict(cluster, namespace, pod)
                    if answer == 429:
                        refused += 1
                    else:
                        evicted[pod] = time.time()
                        recorder.mark("evicted", pod=pod)
                if first_pass_end is None:
                    first_pass_end = time.time()
                if not [p for p in _pods_on(cluster, namespace, node) if p not in evicted]:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(
                        _budget_message(
                            cluster,
                            namespace,
                            f"the drain of node {node} did not complete within "
                            f"{DRAIN_DEADLINE_S:.0f}s: {tried} evictions tried, {refused} refused "
                            f"(429), {len(evicted)} accepted, {_ready(recorder)} of {APP}'s pods "
                            "Ready",
                        )
                    )
                # Retry when a pod changes (a replacement turning Ready lets the budget grow),
                # at the latest RETRY_S later.
                _wait_pod_change(recorder, _ready(recorder))

            def gone() -> Verdict:
                left = sorted(n for n, v in recorder.pods().items() if v.node == node)
                return Done() if not left else Pending(f"still on {node}: {', '.join(left)}")

            recorder.wait_for(
                gone,
                timeout_s=max(1.0, deadline - time.monotonic()),
                what=f"node {node}",
                expected="every evicted pod gone",
            )
        drained_wall = time.time()
        recorder.mark("drained", node=node)

        with claims.behaviour():

            def restored() -> Verdict:
                views = recorder.pods(SELECTOR)
                ready = [n for n, v in views.items() if v.ready and not v.terminating]
                samples = recorder.samples("Deployment", APP)
                available = int(samples[-1]["available"]) if samples else 0
                if len(ready) == REPLICAS and available == REPLICAS:
                    return Done(time.time())
                return Pending(f"{len(ready)} Ready, availableReplicas {available}")

            restored_wall = recorder.wait_for(
                restored,
                timeout_s=RESTORE_DEADLINE_S,
                what=f"deployment/{APP}",
                expected=f"{REPLICAS} replicas Ready and available off node {node}",
            )
        recorder.mark("restored")
        traffic.wait_answered(
            AFTER_ANSWERS,
            after=restored_wall or time.time(),
            skew_s=MAX_CLOCK_SKEW_S,
            timeout_s=ANSWERS_DEADLINE_S,
            what="after the drain",
        )
    finally:
        try:
            result = traffic.stop()
        finally:
            _cordon(cluster, node, False)
            recorder.mark("uncordon", node=node)

    blind = recorder.gap_problems(["Pod", "Deployment"])
    assert not blind, "the recorder lost a watch during the drain: " + "; ".join(blind)
    assert cordon_wall is not None
    assert drained_wall is not None
    assert restored_wall is not None
    assert first_pass_end is not None
    history = {name: recorder.pod_history(name) for name in recorder.pods(SELECTOR)}
    first_ready = proofs.first_ready_after(
        history, cordon_wall, [p["metadata"]["name"] for p in pods]
    )
    since_t, until_t = recorder.wall_to_t(cordon_wall), recorder.wall_to_t(restored_wall)
    moments = recorder.pod_moments(SELECTOR, since=since_t, until=until_t)
    skew, flow, flowing = traffic_proofs.throughout(
        result,
        cordon_wall,
        restored_wall,
        max_skew_s=MAX_CLOCK_SKEW_S,
        max_gap_s=MAX_TRAFFIC_GAP_S,
        min_rate=MIN_RATE_PER_S,
    )
    certain = proofs.refusal_certain(len(by_node[node]), allowed, first_pass_end, first_ready)
    figures.update(
        evictions_tried=tried,
        evictions_refused=refused,
        evictions_accepted=len(evicted),
        refusal_certain=certain,
        min_ready_seen=min((m.ready for m in moments), default=None),
        drain_s=round(drained_wall - cordon_wall, 2),
        restored_s=round(restored_wall - cordon_wall, 2),
        requests=result.sent,
        failed=len(result.failed),
        largest_traffic_gap_s=round(flow.gap, 3),
        traffic_rate_per_s=round(flow.rate, 1),
        clock_skew_s=round(skew, 3),
    )
    assert not flowing, "; ".join(flowing)
    with claims.behaviour():
        if certain:
            assert refused >= 1, _budget_message(
                cluster,
                namespace,
                f"node {node} held {len(by_node[node])} pods and the budget allowed "
                f"{allowed} disruption(s), yet none of {tried} evictions was refused (429) "
                "before a replacement was Ready: the budget was not enforced",
            )
        below = proofs.ready_floor_problems(moments, min_available)
        below += proofs.available_floor_problems(
            recorder.samples("Deployment", APP),
            min_available,
            since=cordon_wall,
            until=restored_wall,
        )
        assert not below, _budget_message(
            cluster, namespace, "the drain broke the budget: " + "; ".join(below[:5])
        )
        failed = failed_problem(result.answers)
        assert failed is None, (
            f"service/{APP} through the drain: {failed}; Ready pods stayed at or above "
            "minAvailable (above) and evicted pods drain before they stop, so the Service's "
            "routing (the EndpointSlice controller, kube-proxy) or the workload failed them"
        )
        still = {n: v.node for n, v in recorder.pods(SELECTOR).items() if v.node == node}
        assert not still, f"after the drain pods of {APP} are on the drained node {node}: {still}"

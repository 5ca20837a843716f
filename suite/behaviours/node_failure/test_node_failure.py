"""Node failure: a worker stops answering, the cluster notices, evicts its pods after their
tolerations and runs replacements on a healthy node, while the Service is measured throughout.

`getip` runs 4 replicas spread over the schedulable nodes (topologySpreadConstraints, maxSkew 1,
DoNotSchedule, tainted nodes not counted: the control plane stays out), tolerating the
`node.kubernetes.io/unreachable` and `not-ready` NoExecute taints for 10 s (set here and read back
from the admitted pods). The prober runs on one worker; another worker that holds replicas is
stopped by pausing its kind container (`docker pause`: the cgroup freezer stops the kubelet,
containerd, kube-proxy and every pod on it at once, as a power cut or a partition would; stopping
only the kubelet would leave its pods serving, which is not a failed node). The claims, each from
what the cluster did (the recorder's Node and pod samples, the answers):

- the node goes NotReady (Ready Unknown) within the node lifecycle controller's grace period
  (kube-controller-manager's --node-monitor-grace-period, read from its pod, default 50 s) plus
  its monitor period and a margin, and gets the unreachable (or not-ready) NoExecute taint;
- its pods are evicted (marked for deletion) no sooner than their admitted tolerationSeconds after
  the taint was seen, and within a margin after that;
- as many replacements as were evicted become Ready on healthy nodes within a stated bound;
- through the Service, requests fail only between the stop and the stopped pods' leaving the
  EndpointSlices plus kube-proxy's lag and one request timeout; none is answered by a stopped pod
  while it is frozen; the failed requests and their window are the figures;
- brought back (`docker unpause`, always, in a `finally`), the node is Ready again and untainted
  within a stated bound.

A failure names the part the evidence points at (the node lifecycle controller, the scheduler,
the ReplicaSet controller, kube-proxy, or an admission change seen in the read-back).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from suite import admitted, claims, floors, timing, traffic_proofs
from suite.behaviours.node_failure import freeze, proofs
from suite.cluster import Cluster
from suite.context import CONTEXT_KEY
from suite.fixtures import PROBER_REACHABLE_S, Workloads
from suite.floors import Floor
from suite.kube import NODES, PODS, KubeError, list_objects
from suite.providers.base import ProviderError, run_command
from suite.recorder import Recorder
from suite.traffic import BackgroundProbe, Prober, ProbeRequest
from suite.waiting import Done, Pending, Verdict, WaitFailed

APP = "getip"
REPLICAS = 4
#: How long the pods tolerate the unreachable / not-ready NoExecute taints (the API's default,
#: added by the DefaultTolerationSeconds admission plugin, is 300 s).
TOLERATION_S = 10
SELECTOR = {"app.kubernetes.io/name": APP}
OVERRIDES = {
    f"Deployment/{APP}": {
        "spec": {
            "replicas": REPLICAS,
            "template": {
                "spec": {
                    "tolerations": [
                        {
                            "key": key,
                            "operator": "Exists",
                            "effect": "NoExecute",
                            "tolerationSeconds": TOLERATION_S,
                        }
                        for key in (proofs.UNREACHABLE, proofs.NOT_READY)
                    ],
                    # Replicas on every schedulable node (the one to stop among them); nodes with
                    # a taint the pods do not tolerate (kind's control plane; the stopped node
                    # once tainted) are no domain, so the replacements fit on the others.
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "DoNotSchedule",
                            "nodeTaintsPolicy": "Honor",
                            "labelSelector": {"matchLabels": SELECTOR},
                        }
                    ],
                }
            },
        }
    }
}

#: The node lifecycle controller looks at every node each --node-monitor-period (5 s default);
#: the kubelet renews its Lease every 10 s (a quarter of its 40 s duration), so the last renewal
#: came up to 10 s before the stop: NotReady lands in [grace - 10 s, grace + 5 s] after it. The
#: bound adds 15 s for a busy machine and the watch.
MONITOR_PERIOD_S = 5.0
NOT_READY_MARGIN_S = 15.0
#: The taint follows in the controller's next tainting pass (every 100 ms); 10 s for a busy one.
TAINT_S = 10.0
#: Eviction is queued at the taint's timeAdded + tolerationSeconds: timeAdded is stored in whole
#: seconds and the recorder saw the taint a moment after it was added (1.5 s early at most); the
#: eviction's write and the watch take well under a second: 5 s late at most.
EVICT_EARLY_S = 1.5
EVICT_LATE_S = 5.0
#: Evicted -> every replacement Ready: the ReplicaSet controller creates them at once, the
#: scheduler places them, a present image starts and passes readiness (period 2 s): seen ~3 s.
REPLACED_S = 30.0
#: Unpaused -> Ready and untainted: the kubelet posts its status and renews its Lease at once;
#: the controller takes it up within a monitor period and removes the taints.
REJOIN_S = 60.0
#: Left the EndpointSlice -> no new request routed to it: kube-proxy's sync, the rules restore and
#: the watch (suite.timing.PROXY_LAG_S, where the figure comes from).
ROUTING_LAG_S = timing.PROXY_LAG_S

#: Traffic through the Service the whole time, a new connection per request, to the ClusterIP
#: from the prober's environment (cluster DNS is not part of this); a request to a frozen pod
#: times out after TIMEOUT_S.
TIMEOUT_S = 2.0
TRAFFIC = ProbeRequest(
    url=f"http://{APP}/", concurrency=4, interval_ms=40, timeout_s=TIMEOUT_S, via="service-env"
)
TRAFFIC_CHUNK_S = 2.0
TRAFFIC_BOUND_S = 170.0
#: "Throughout": never longer than this between two request starts (a frozen pod holds a
#: request for TIMEOUT_S; four run at once), at least this rate.
MAX_TRAFFIC_GAP_S = TIMEOUT_S + 0.5
MIN_RATE_PER_S = 5.0
WARMUP_ANSWERS = 20
AFTER_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
CONVERGE_S = 30.0
MAX_CLOCK_SKEW_S = 0.5
DOCKER_S = 60.0
#: pytest-timeout backstop (suite/plugin.py): Ready, converged, then the stop and the rejoin.
BACKSTOP_S = 120.0 + CONVERGE_S + TRAFFIC_BOUND_S + REJOIN_S + 60.0


def floor_of(grace_s: float, toleration_s: float) -> Floor:
    """Physical floor (suite.floors): the grace period the node lifecycle controller waits out
    (less the Lease renewal interval the stop may fall into), the tolerations, a replacement's
    first readiness period. Pod start and the rejoin come on top."""
    return Floor.of(
        ("node-monitor-grace-period, less one Lease renewal", max(0.0, grace_s - 10.0)),
        ("tolerationSeconds, waited out", toleration_s),
        ("a replacement's readiness period", 2.0),
    )


FLOOR = floor_of(proofs.DEFAULT_GRACE_S, TOLERATION_S)

pytestmark = [
    pytest.mark.only_on(
        "kind", "existing", reason="needs two schedulable worker nodes: it stops one"
    ),
    pytest.mark.alone(reason="it stops a node: tests beside it would lose their pods"),
]


# -- the cluster's settings, read back ---------------------------------------------------------


def _grace_period(cluster: Cluster) -> tuple[float, str]:
    """kube-controller-manager's --node-monitor-grace-period as its pod runs it, or the default
    (and where it came from)."""
    try:
        items, _ = list_objects(
            cluster.kube, PODS, "kube-system", label_selector="component=kube-controller-manager"
        )
    except KubeError as error:
        return proofs.DEFAULT_GRACE_S, f"the default (kube-controller-manager unreadable: {error})"
    for pod in items:
        for container in (pod.get("spec") or {}).get("containers") or []:
            command = [*(container.get("command") or []), *(container.get("args") or [])]
            seconds = proofs.grace_period_s(command)
            if seconds is not None:
                return seconds, "kube-controller-manager's flag"
    return proofs.DEFAULT_GRACE_S, "the default"


def _node_container(node: Mapping[str, Any]) -> str | None:
    """The docker container of a kind node (providerID kind://docker/<cluster>/<node>)."""
    provider_id = str((node.get("spec") or {}).get("providerID") or "")
    if not provider_id.startswith("kind://docker/"):
        return None
    return provider_id.rsplit("/", 1)[-1]


def _docker(*args: str) -> None:
    run_command(["docker", *args], timeout_s=DOCKER_S)


# -- waiting on the recorder ---------------------------------------------------------------------


def _node_wait(
    recorder: Recorder, node: str, since: float, timeout_s: float, expected: str, **state: bool
) -> float | None:
    """When the recorder first saw `node` in `state` after `since`; None after `timeout_s`."""

    def seen() -> Verdict:
        samples = recorder.samples("Node", node)
        at = proofs.first_seen(samples, node, since, **state)
        if at is not None:
            return Done(at)
        return Pending(proofs.state_text(samples[-1] if samples else None))

    with contextlib.suppress(WaitFailed):
        return float(
            recorder.wait_for(seen, timeout_s=timeout_s, what=f"node/{node}", expected=expected)
        )
    return None


def _last_node(recorder: Recorder, node: str) -> Mapping[str, Any] | None:
    samples = recorder.samples("Node", node)
    return samples[-1] if samples else None


def _replacements(recorder: Recorder, old: set[str], stopped: str) -> list[str]:
    return sorted(
        name
        for name, view in recorder.pods(SELECTOR).items()
        if name not in old and view.ready and not view.terminating and view.node != stopped
    )


def _answers_after(traffic: BackgroundProbe, count: int, after: float, what: str) -> None:
    traffic.wait_answered(
        count, after=after, what=what, timeout_s=ANSWERS_DEADLINE_S, skew_s=MAX_CLOCK_SKEW_S
    )


@contextlib.contextmanager
def _stopped(
    recorder: Recorder, node: str, container: str, times: dict[str, float]
) -> Iterator[None]:
    """The node's container paused for the block; ALWAYS unpaused after it, and the node waited
    for until Ready and untainted (a rejoin failure fails the test unless it already failed)."""

    def retried(attempt: int, error: BaseException) -> None:
        recorder.mark(
            f"docker pause attempt {attempt} failed (the freezer gave up, the node runs on); "
            f"trying again: {str(error).splitlines()[-1]}",
            node=node,
        )

    times["pausing"], attempts = freeze.pause(lambda: _docker("pause", container), retried)
    # Frozen once `docker pause` returns: the measured lags count from here.
    times["stopped"] = time.time()
    times["pause_attempts"] = attempts
    recorder.mark("node stopped", node=node)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        times["unpaused"] = time.time()
        try:
            _docker("unpause", container)
        except ProviderError as error:
            if not failed:
                raise
            recorder.mark(f"unpause failed: {error}")
        recorder.mark("node restarted", node=node)

        def rejoined() -> Verdict:
            last = _last_node(recorder, node)
            if last is not None and proofs.is_ready(last) and not proofs.no_execute_taint(last):
                return Done(float(last["wall"]))
            return Pending(proofs.state_text(last))

        try:
            times["rejoined"] = float(
                recorder.wait_for(
                    rejoined,
                    timeout_s=REJOIN_S,
                    what=f"node/{node}",
                    expected="Ready again, without the unreachable/not-ready taints",
                )
            )
            recorder.mark("node rejoined", node=node)
        except WaitFailed as error:
            if not failed:
                raise AssertionError(
                    f"node/{node} did not rejoin within {REJOIN_S:.0f}s of its restart "
                    f"(its kubelet reports, {proofs.NODE_LIFECYCLE_CONTROLLER} clears the "
                    f"taints): {claims.message_of(error)}"
                ) from error


# -- the scenario --------------------------------------------------------------------------------


def test_node_failure_evicts_its_pods_and_the_service_recovers(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    """Stop a worker under traffic: it goes NotReady within the grace period, is tainted, its pods
    are evicted after their admitted tolerationSeconds and replaced on a healthy node, requests
    fail only until its pods leave the Service; brought back, it rejoins."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    recorder.watch_nodes()
    assert recorder.wait_synced(), "the recorder could not list the cluster's nodes"
    nodes = proofs.latest(recorder.samples("Node"))
    candidates = sorted(name for name, sample in nodes.items() if proofs.schedulable(sample))
    if len(candidates) < 2:
        pytest.skip(
            f"node failure needs two or more schedulable nodes (it stops one, the others take "
            f"its pods); this cluster has {len(candidates)}: {candidates or 'none'}"
        )
    live_nodes = {str(n["metadata"]["name"]): n for n in list_objects(cluster.kube, NODES, None)[0]}
    containers = {name: _node_container(live_nodes.get(name) or {}) for name in candidates}
    foreign = sorted(name for name, container in containers.items() if not container)
    if foreign:
        pytest.skip(
            "node failure stops a node by pausing its kind container (providerID "
            f"kind://docker/...), and cannot stop these nodes: {foreign}"
        )
    grace_s, grace_from = _grace_period(cluster)
    figures[floors.FIGURE_KEY] = floor_of(grace_s, TOLERATION_S).to_dict()
    figures.update(
        replicas=REPLICAS,
        grace_period_s=grace_s,
        grace_period_from=grace_from,
        not_ready_bound_s=grace_s + MONITOR_PERIOD_S + NOT_READY_MARGIN_S,
    )

    # getip first, so the kubelet puts its ClusterIP into the prober's environment.
    workloads.apply(APP, overrides=OVERRIDES)
    workloads.deploy("prober")
    workloads.wait_ready(APP)
    pods = workloads.pods(APP)
    with claims.behaviour():
        found = proofs.toleration_problems(pods, TOLERATION_S)
        assert not found, admitted.rewritten(found, f"{APP}'s pods")
    tolerations = proofs.tolerations_s(pods[0])
    toleration_s = float(min(s for s in tolerations.values() if s is not None))
    figures[floors.FIGURE_KEY] = floor_of(grace_s, toleration_s).to_dict()
    figures["toleration_s"] = toleration_s

    prober_pod = workloads.pods("prober")[0]
    prober_node = str(prober_pod["spec"]["nodeName"])
    placed = proofs.by_node({str(p["metadata"]["name"]): str(p["spec"]["nodeName"]) for p in pods})
    figures["placement"] = placed
    with claims.behaviour():
        assert len(placed) >= 2, (
            f"{APP}'s {REPLICAS} replicas run on {placed} and the prober on {prober_node}: the "
            "scheduler did not spread them over the schedulable nodes "
            f"{candidates} (topologySpreadConstraints maxSkew 1, DoNotSchedule)"
        )
        assert prober_node in placed, (
            f"{APP}'s replicas run on {sorted(placed)}, none on the prober's node {prober_node}: "
            "the scheduler did not spread them over every schedulable node"
        )
    stopped = next(node for node in sorted(placed) if node != prober_node)
    stopped_pods = set(placed[stopped])
    before = {str(p["metadata"]["name"]) for p in pods}
    figures.update(stopped_node=stopped, prober_node=prober_node, stopped_pods=len(stopped_pods))

    prober = Prober(
        cluster.kube,
        namespace,
        on_result=request.node.stash[CONTEXT_KEY].probes.append,
        pod=str(prober_pod["metadata"]["name"]),
    )
    prober.wait_ready(PROBER_REACHABLE_S)
    prober.converge(TRAFFIC.url, [str(p["metadata"]["name"]) for p in pods], timeout_s=CONVERGE_S)
    recorder.mark("Service converged")

    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    times: dict[str, float] = {}
    not_ready = tainted = None
    evicted: dict[str, float | None] = {}
    replaced: float | None = None
    try:
        _answers_after(traffic, WARMUP_ANSWERS, 0.0, "before the stop")
        with _stopped(recorder, stopped, str(containers[stopped]), times):
            stop = times["stopped"]
            not_ready_bound = grace_s + MONITOR_PERIOD_S + NOT_READY_MARGIN_S
            with claims.behaviour():
                not_ready = _node_wait(
                    recorder, stopped, stop, not_ready_bound, "Ready Unknown or False", ready=False
                )
                last = proofs.state_text(_last_node(recorder, stopped))
                assert not_ready is not None, (
                    f"node/{stopped}, stopped at +0s, was still {last} after "
                    f"{not_ready_bound:.0f}s: {proofs.NODE_LIFECYCLE_CONTROLLER} did not mark it "
                    f"NotReady within its grace period ({grace_s:.0f}s, {grace_from}) + "
                    f"{MONITOR_PERIOD_S + NOT_READY_MARGIN_S:.0f}s"
                )
                recorder.mark("NotReady", node=stopped)
                tainted = _node_wait(
                    recorder,
                    stopped,
                    not_ready,
                    TAINT_S,
                    "the unreachable/not-ready NoExecute taint",
                    tainted=True,
                )
                assert tainted is not None, (
                    f"node/{stopped} went NotReady but {proofs.NODE_LIFECYCLE_CONTROLLER} did not "
                    f"taint it NoExecute within {TAINT_S:.0f}s: "
                    f"{proofs.state_text(_last_node(recorder, stopped))}"
                )
                recorder.mark(
                    "tainted", taint=proofs.no_execute_taint(_last_node(recorder, stopped) or {})
                )

                def all_evicted() -> Verdict:
                    for pod in stopped_pods:
                        evicted[pod] = proofs.first_terminating(recorder.pod_history(pod))
                    waiting = sorted(p for p, at in evicted.items() if at is None)
                    return Pending(f"not evicted: {waiting}") if waiting else Done()

                with contextlib.suppress(WaitFailed):
                    recorder.wait_for(
                        all_evicted,
                        timeout_s=toleration_s + EVICT_LATE_S + 5.0,
                        what=f"{APP}'s pods on node/{stopped}",
                        expected="marked for deletion (evicted)",
                    )
                all_evicted()
                late = [
                    problem
                    for pod, at in sorted(evicted.items())
                    if (
                        problem := proofs.lag_problem(
                            f"pod/{pod} evicted after the taint was seen",
                            tainted,
                            at,
                            low_s=toleration_s - EVICT_EARLY_S,
                            high_s=toleration_s + EVICT_LATE_S,
                        )
                    )
                ]
                assert not late, (
                    f"{proofs.NODE_LIFECYCLE_CONTROLLER} (its taint eviction) did not evict the "
                    f"pods of node/{stopped} after their tolerationSeconds ({toleration_s:.0f}s): "
                    + "; ".join(late)
                )
                recorder.mark("evicted", pods=len(stopped_pods))

                def all_replaced() -> Verdict:
                    ready = _replacements(recorder, before, stopped)
                    if len(ready) >= len(stopped_pods):
                        return Done(time.time())
                    return Pending(f"Ready replacements {ready}")

                try:
                    replaced = float(
                        recorder.wait_for(
                            all_replaced,
                            timeout_s=REPLACED_S,
                            what=f"{APP}'s replacements",
                            expected=f"{len(stopped_pods)} Ready on nodes other than {stopped}",
                        )
                    )
                except WaitFailed as error:
                    raise AssertionError(
                        f"the ReplicaSet controller and the scheduler did not run "
                        f"{len(stopped_pods)} replacements Ready on a healthy node within "
                        f"{REPLACED_S:.0f}s of the eviction: {claims.message_of(error)}"
                    ) from error
                recorder.mark("replacements Ready")
            _answers_after(traffic, AFTER_ANSWERS, replaced, "after the replacements were Ready")
        _answers_after(
            traffic, AFTER_ANSWERS, times.get("rejoined", time.time()), "after the rejoin"
        )
    finally:
        result = traffic.stop()

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    offset = traffic_proofs.clock_offset(result.answers, result.chunk_sent)
    problem = traffic_proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    skew = offset.bound if offset else MAX_CLOCK_SKEW_S
    pausing, stop = times["pausing"], times["stopped"]
    unpaused, rejoined = times["unpaused"], times["rejoined"]
    assert not_ready is not None
    assert tainted is not None
    assert replaced is not None
    blind = recorder.gap_problems(["Pod", "EndpointSlice", "Node"])
    assert not blind, "the recorder lost a watch, so its verdicts are not proven: " + "; ".join(
        blind
    )
    timeline = traffic_proofs.endpoint_timeline(recorder.samples("EndpointSlice"), APP)
    left = [traffic_proofs.listed_interval(timeline, pod, stop)[0] for pod in sorted(stopped_pods)]
    out_of_service = max(at for at in left if at is not None) if all(left) else None
    failed, first_failed, last_failed = proofs.failed_window(result.answers)
    flow = traffic_proofs.coverage(
        [a.start for a in result.answers],
        stop + skew,
        replaced - skew,
        max_gap_s=MAX_TRAFFIC_GAP_S,
        min_rate=MIN_RATE_PER_S,
    )
    figures.update(
        requests=result.sent,
        failed=failed,
        failed_window_s=round(last_failed - first_failed, 2)
        if first_failed and last_failed
        else 0.0,
        first_failed_after_s=round(first_failed - stop, 2) if first_failed else None,
        last_failed_after_s=round(last_failed - stop, 2) if last_failed else None,
        not_ready_after_s=round(not_ready - stop, 2),
        tainted_after_s=round(tainted - stop, 2),
        evicted_after_s=round(max(at for at in evicted.values() if at is not None) - stop, 2),
        evicted_after_taint_s=round(
            max(at for at in evicted.values() if at is not None) - tainted, 2
        ),
        out_of_service_after_s=round(out_of_service - stop, 2) if out_of_service else None,
        replaced_after_s=round(replaced - stop, 2),
        stopped_for_s=round(unpaused - stop, 2),
        pause_attempts=int(times["pause_attempts"]),
        rejoined_after_s=round(rejoined - unpaused, 2),
        largest_traffic_gap_s=round(flow.gap, 3),
        traffic_rate_per_s=round(flow.rate, 1),
        clock_skew_s=round(skew, 3),
    )
    assert not flow.problems, "traffic did not run through the node failure: " + "; ".join(
        flow.problems
    )
    with claims.behaviour():
        assert out_of_service is not None, (
            f"the stopped node's pods {sorted(stopped_pods)} never left service/{APP}'s "
            f"EndpointSlices after the stop ({left}): the EndpointSlice controller kept routing "
            f"to them, or {proofs.NODE_LIFECYCLE_CONTROLLER} never marked them not Ready"
        )
        frozen = proofs.answered_by(result.answers, stopped_pods, stop + skew, unpaused - TIMEOUT_S)
        assert not frozen, (
            f"{len(frozen)} answers came from the stopped node's pods while it was paused: the "
            "node was not stopped"
        )
        allowed_until = out_of_service + ROUTING_LAG_S + skew
        # A request in flight to a pod of the node when it stopped fails too.
        outside = proofs.failures_outside(result.answers, pausing - TIMEOUT_S - skew, allowed_until)
        assert not outside, (
            f"{len(outside)} requests through service/{APP} failed outside the window in which "
            f"the stopped node's pods were still routed to (the stop to their leaving the "
            f"EndpointSlices +{out_of_service - stop:.1f}s, plus kube-proxy's lag "
            f"{ROUTING_LAG_S}s), first at {outside[0].start - stop:+.1f}s "
            f"({outside[0].error or outside[0].status}): kube-proxy kept routing to them, or "
            "the healthy replicas failed"
        )

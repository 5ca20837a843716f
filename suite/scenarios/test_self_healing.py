"""Self-healing: the kubelet restarts sick or dead containers, the ReplicaSet replaces lost pods,
and the Service keeps answering from the healthy replica meanwhile.

`healthcheck` answers 503 on `/`, `/healthz` and `/readyz` once infected (`POST /infect`, held in
process memory, so only a restart cures it) and exits with status 1 on `POST /kill`. Readiness and
liveness are separated: readiness acts on the first failure (every second), liveness only after 8
in a row, so an infected pod is NotReady but alive for several seconds before its restart. That is
the window in which the Service must route around it: within a stated bound of the pod turning
NotReady, no request may reach it or fail until it is Ready again, and the healthy replica must
answer throughout. The restart itself must be the liveness probe's doing (its events), exactly one
restart of the sick pod and none of the healthy one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from suite import floors, proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import (
    JSON,
    PODS,
    KubeError,
    container_statuses,
    get_object,
    is_pod_ready,
    is_terminating,
    name_of,
    restart_count,
    selector_string,
)
from suite.recorder import Recorder
from suite.traffic import Prober, ProbeRequest, pod_request
from suite.waiting import Done, Pending, Verdict, pod_ready_verdict, wait_pod, wait_pods

APP = "healthcheck"
REPLICAS = 2
PORT = 8080
#: The probes of manifests/healthcheck, checked against the applied Deployment so the deadlines
#: below cannot drift from what actually runs.
LIVENESS = {"periodSeconds": 1, "failureThreshold": 8, "timeoutSeconds": 1}
READINESS = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1}
STARTUP = {"periodSeconds": 1, "failureThreshold": 30}

#: The kubelet's status update reaching the API server (and the watch) after a probe result.
STATUS_MARGIN_S = 3.0
#: Infection -> NotReady: readiness period x threshold + one probe timeout + the status update.
NOT_READY_DEADLINE_S = (
    READINESS["periodSeconds"] * READINESS["failureThreshold"]
    + READINESS["timeoutSeconds"]
    + STATUS_MARGIN_S
)
#: Beyond the failed probes, a restart takes: the probe worker's phase (up to one period), SIGTERM
#: to gunicorn (graceful timeout 5 s; with nothing in flight it exits at once), creating and
#: starting the new container, and the new status reaching the API server.
RESTART_MARGIN_S = 15.0
#: Infection -> restartCount rises: period x failureThreshold + one probe timeout + margin.
INFECTED_RESTART_DEADLINE_S = (
    LIVENESS["periodSeconds"] * LIVENESS["failureThreshold"]
    + LIVENESS["timeoutSeconds"]
    + RESTART_MARGIN_S
)
#: Infection -> restart no earlier than this: the kubelet needs failureThreshold failures in a row,
#: the first of which can come at once. Earlier means something other than liveness restarted it.
INFECTED_RESTART_EARLIEST_S = LIVENESS["periodSeconds"] * (LIVENESS["failureThreshold"] - 1)
#: The kubelet's PLEG relists containers every second; the first restart has no back-off.
PLEG_RELIST_S = 1.0
#: POST /kill -> restartCount rises (the process exits 0.2 s after answering).
KILL_RESTART_DEADLINE_S = PLEG_RELIST_S + RESTART_MARGIN_S
#: Restart -> Ready: the startup probe may need up to period x failureThreshold before the kubelet
#: gives up, then one readiness period; plus 5 s for status updates.
READY_AGAIN_DEADLINE_S = (
    STARTUP["periodSeconds"] * STARTUP["failureThreshold"] + READINESS["periodSeconds"] + 5.0
)
#: Deletion -> a replacement pod Ready: the ReplicaSet controller reacts to the deletion at once;
#: scheduling and container start take seconds (10 s allowed), then Ready as above.
REPLACEMENT_DEADLINE_S = 10.0 + READY_AGAIN_DEADLINE_S
#: The kubelet writes its events right as it acts; the watch delivers them within a second or two.
EVENTS_DEADLINE_S = 10.0

#: NotReady (as the API reports it) -> no new connection reaches the pod: the EndpointSlice
#: controller drops it at once, kube-proxy applies that at its next sync (minSyncPeriod 1 s), and
#: the rules take a moment to load; 2 s on top for a busy machine. A service proxy that follows
#: endpoint changes late breaks this bound.
ROUTING_BOUND_S = 3.0
#: "The Service keeps answering": the healthy replica never pauses longer than this while the sick
#: pod is out (requests run back to back, 2 at a time, every 50 ms).
MAX_ANSWER_GAP_S = 2.0
#: Prober timestamps come from its node's clock, marks from this machine's: the skew is measured
#: each run (suite.proofs.clock_offset) and must stay within this.
MAX_CLOCK_SKEW_S = 0.5

#: Traffic through the Service while one replica is sick.
TRAFFIC = ProbeRequest(url="http://healthcheck/", concurrency=2, interval_ms=50, timeout_s=2.0)
#: Traffic stops at the end of its current chunk (one streamed POST /probe): short chunks end the
#: test soon after the pod is Ready again (10 s chunks added 1-10 s to every run).
TRAFFIC_CHUNK_S = 3.0
TRAFFIC_BOUND_S = 240.0
WARMUP_ANSWERS = 10
AFTER_READY_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
#: Both replicas answer through the Service before traffic is measured: the EndpointSlice update
#: and a kube-proxy sync (at most once a second); 30 s covers a busy machine.
CONVERGE_S = 30.0
#: pytest-timeout backstop behind the deadlines above (suite/plugin.py): Ready (120 s, READY_S of
#: suite/fixtures.py), converged, then everything happens while the traffic runs; plus a margin.
BACKSTOP_S = 120.0 + CONVERGE_S + TRAFFIC_BOUND_S + 60.0

#: Physical floors (suite.floors), from the probes above: waits no test code can shorten. Pod
#: start (sandbox, container start) comes on top and is what the measured multiple mostly shows.
_READY = ("healthcheck Ready (one readiness period)", READINESS["periodSeconds"])
_BACK = (
    ("startup probe passes (one period)", STARTUP["periodSeconds"]),
    ("Ready again (one readiness period)", READINESS["periodSeconds"]),
)
INFECT_FLOOR = Floor.of(
    _READY,
    (
        "liveness fails failureThreshold times, one period apart",
        LIVENESS["periodSeconds"] * (LIVENESS["failureThreshold"] - 1),
    ),
    *_BACK,
)
KILL_FLOOR = Floor.of(_READY, ("the kubelet's PLEG notices the exit", PLEG_RELIST_S), *_BACK)
DELETE_FLOOR = Floor.of(_READY, *_BACK)


def _probe(deployment: Mapping[str, Any], kind: str) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    container = next(c for c in containers if c["name"] == APP)
    return dict(container.get(kind) or {})


def _assert_probes_as_stated(deployment: Mapping[str, Any]) -> None:
    for kind, stated in (
        ("livenessProbe", LIVENESS),
        ("readinessProbe", READINESS),
        ("startupProbe", STARTUP),
    ):
        actual = _probe(deployment, kind)
        differing = {
            key: actual.get(key) for key, value in stated.items() if actual.get(key) != value
        }
        assert not differing, (
            f"manifests/{APP} {kind} has {differing}, this scenario's deadlines assume {stated}: "
            "update one to match the other"
        )


def _restarted(before: int) -> Any:
    def check(pod: JSON) -> Verdict:
        now = restart_count(pod)
        if now > before:
            return Done(pod)
        ready = "Ready" if is_pod_ready(pod) else "not Ready"
        return Pending(f"restartCount {now}, {ready}")

    return check


def _not_ready(pod: JSON) -> Verdict:
    if not is_pod_ready(pod):
        return Done(pod)
    return Pending(f"still Ready, restartCount {restart_count(pod)}")


def _first_wall(recorder: Recorder, pod: str, since_t: float, predicate: Any) -> float | None:
    for t, wall, view in recorder.pod_history(pod):
        if t >= since_t and view is not None and predicate(view):
            return wall
    return None


def _warm_up(traffic: Any) -> None:
    traffic.wait_for(
        lambda answers: (
            Done()
            if sum(a.ok for a in answers) >= WARMUP_ANSWERS
            else Pending(f"{sum(a.ok for a in answers)} answered")
        ),
        timeout_s=ANSWERS_DEADLINE_S,
        what="traffic to service/healthcheck",
        expected=f"{WARMUP_ANSWERS} answered requests before the infection",
    )


def _restart_counts(cluster: Cluster, namespace: str, pods: list[str]) -> dict[str, int]:
    return {pod: restart_count(get_object(cluster.kube, PODS, namespace, pod)) for pod in pods}


def _assert_events(
    recorder: Recorder, problem: Callable[[list[JSON]], str | None], expected: str
) -> None:
    found = recorder.events_problem(problem, timeout_s=EVENTS_DEADLINE_S, what=expected)
    assert found is None, found


def test_infected_pod_is_restarted_while_the_service_keeps_answering(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Infect one of two replicas: it turns NotReady within a stated time and the Service stops
    routing to it within a stated bound; from then until it is Ready again no request fails and
    the healthy replica answers throughout; its liveness probe (its events say so) makes the
    kubelet restart it, exactly once, and the healthy replica is never restarted."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = INFECT_FLOOR.to_dict()
    deployment = workloads.deploy(APP, replicas=REPLICAS)
    _assert_probes_as_stated(deployment)
    sick_pod, healthy_pod = workloads.pods(APP)
    sick, healthy = name_of(sick_pod), name_of(healthy_pod)
    before = {sick: restart_count(sick_pod), healthy: restart_count(healthy_pod)}
    prober.converge(TRAFFIC.url, [sick, healthy], timeout_s=CONVERGE_S)
    recorder.mark("Service converged")

    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    try:
        _warm_up(traffic)
        infect_wall = time.time()
        t_infect = recorder.mark("infect", pod=sick)
        pod_request(cluster.kube, namespace, sick, PORT, "infect")
        wait_pod(
            cluster.kube,
            namespace,
            sick,
            _not_ready,
            timeout_s=NOT_READY_DEADLINE_S,
            expected="NotReady: its readiness probe fails once it is infected",
            hint=f"is the kubelet probing? kubectl -n {namespace} describe pod/{sick}",
        )
        recorder.mark("not ready", pod=sick)
        wait_pod(
            cluster.kube,
            namespace,
            sick,
            _restarted(before[sick]),
            timeout_s=INFECTED_RESTART_DEADLINE_S - (time.time() - infect_wall),
            expected=f"restartCount > {before[sick]}: liveness probe failed, kubelet restarted it",
            hint=f"is the kubelet probing? kubectl -n {namespace} describe pod/{sick}",
        )
        restart_wall = time.time()
        recorder.mark("restarted", pod=sick)
        wait_pod(
            cluster.kube,
            namespace,
            sick,
            pod_ready_verdict,
            timeout_s=READY_AGAIN_DEADLINE_S,
            expected="Ready again after its restart",
        )
        ready_wall = time.time()
        recorder.mark("ready again", pod=sick)
        traffic.wait_for(
            lambda answers: (
                Done()
                if sum(a.ok and a.start > ready_wall for a in answers) >= AFTER_READY_ANSWERS
                else Pending("waiting for answers after recovery")
            ),
            timeout_s=ANSWERS_DEADLINE_S,
            what="traffic to service/healthcheck",
            expected=f"{AFTER_READY_ANSWERS} answers after the pod was Ready again",
        )
    finally:
        result = traffic.stop()

    offset = proofs.clock_offset(result.answers, result.chunk_sent)
    skew = offset.bound if offset else MAX_CLOCK_SKEW_S
    # The window in which the sick pod is out: from its first NotReady (plus the routing bound)
    # to its next Ready as the API reported it (the kubelet may report the new container Ready
    # once and NotReady again while the restart settles; failures are counted to the end).
    not_ready_wall, back_wall = proofs.not_ready_interval(recorder.pod_history(sick), t_infect)
    restart_seen = _first_wall(recorder, sick, t_infect, lambda view: view.restarts > before[sick])
    restarted_after = (restart_seen or restart_wall) - infect_wall
    out_from = (not_ready_wall or restart_wall) + ROUTING_BOUND_S + skew
    out_until = (back_wall or ready_wall) - skew
    before_out = proofs.in_window(result.answers, infect_wall - skew, out_from)
    after = _restart_counts(cluster, namespace, [sick, healthy])
    figures.update(
        not_ready_after_s=round(not_ready_wall - infect_wall, 2) if not_ready_wall else None,
        restarted_after_s=round(restarted_after, 2),
        restart_earliest_s=INFECTED_RESTART_EARLIEST_S,
        ready_again_after_s=round(ready_wall - infect_wall, 2),
        routing_bound_s=ROUTING_BOUND_S,
        sick_out_s=round(out_until - out_from, 2),
        requests=result.sent,
        failed_before_routed_around=sum(not a.ok for a in before_out),
        failed_while_out=sum(
            not a.ok for a in proofs.in_window(result.answers, out_from, out_until)
        ),
        answered_by=dict(result.by_pod()),
        clock_skew_s=round(skew, 3),
    )

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    problem = proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    blind = recorder.gap_problems(["Pod", "Event"], since=t_infect)
    assert not blind, (
        f"the recorder lost a watch while pod/{sick} was sick, so when it turned NotReady and "
        "restarted is not known: " + "; ".join(blind)
    )
    not_ready_first = not_ready_wall is not None and not_ready_wall < (restart_seen or restart_wall)
    assert not_ready_first, (
        f"pod/{sick} was not seen NotReady before its restart: readiness should fail after "
        f"{READINESS['failureThreshold']} probe, liveness only after "
        f"{LIVENESS['failureThreshold']}"
    )
    routing = proofs.routing_problems(
        result.answers,
        sick,
        healthy,
        out_from,
        out_until,
        MAX_ANSWER_GAP_S,
        failures_until=ready_wall - skew,
    )
    assert not routing, (
        f"Service {APP} did not route around NotReady pod/{sick} (the EndpointSlice controller "
        "in kube-controller-manager and the node's service proxy, kube-proxy, act on readiness): "
        f"from {ROUTING_BOUND_S}s after it turned NotReady until it was Ready again "
        f"({out_until - out_from:.1f}s): " + "; ".join(routing) + f" ({result.describe()})"
    )
    assert restarted_after >= INFECTED_RESTART_EARLIEST_S, (
        f"pod/{sick} restarted {restarted_after:.1f}s after the infection, before its liveness "
        f"probe can have failed {LIVENESS['failureThreshold']} times "
        f"({INFECTED_RESTART_EARLIEST_S}s)"
    )
    _assert_events(
        recorder,
        lambda events: proofs.liveness_restart_problem(events, sick),
        f"pod/{sick} restarted for a failed liveness probe",
    )
    counts = proofs.restart_count_problems(before, after, sick)
    assert not counts, "restarts: " + "; ".join(counts)


def test_killed_process_is_restarted_and_reports_exit_code_1(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Kill the server process (exit 1): the kubelet restarts the container at once, its last
    state says terminated with exit code 1, and the pod is Ready again."""
    figures[floors.FIGURE_KEY] = KILL_FLOOR.to_dict()
    workloads.deploy(APP, replicas=REPLICAS)
    victim, *others = workloads.pods(APP)
    name, before = name_of(victim), restart_count(victim)
    counts_before = {name_of(pod): restart_count(pod) for pod in [victim, *others]}

    kill_wall = time.time()
    recorder.mark("kill", pod=name)
    # The process may be gone before its 202 makes it back through the proxy.
    with contextlib.suppress(KubeError):
        pod_request(cluster.kube, namespace, name, PORT, "kill")
    restarted = wait_pod(
        cluster.kube,
        namespace,
        name,
        _restarted(before),
        timeout_s=KILL_RESTART_DEADLINE_S,
        expected=f"restartCount > {before}: the process exited, the kubelet restarted it",
        hint=f"is the kubelet running? kubectl -n {namespace} describe pod/{name}",
    )
    restart_wall = time.time()
    recorder.mark("restarted", pod=name)
    status = next(s for s in container_statuses(restarted) if s.get("name") == APP)
    last = (status.get("lastState") or {}).get("terminated") or {}
    figures.update(
        restarted_after_s=round(restart_wall - kill_wall, 2),
        exit_code=last.get("exitCode"),
        reason=last.get("reason"),
    )
    assert last.get("exitCode") == 1, (
        f"pod/{name} container {APP}: last state {status.get('lastState')}, expected terminated "
        "with exit code 1 (POST /kill exits 1)"
    )
    wait_pod(
        cluster.kube,
        namespace,
        name,
        pod_ready_verdict,
        timeout_s=READY_AGAIN_DEADLINE_S,
        expected="Ready again after its restart",
    )
    figures["ready_again_after_s"] = round(time.time() - kill_wall, 2)
    killed = [
        event
        for event in proofs.events_for(recorder.events(), f"pod/{name}")
        if event.get("reason") == "Killing"
    ]
    assert not killed, (
        f"the kubelet killed pod/{name} ({killed[0].get('message')}): the restart must come from "
        "the process's own exit, not from a probe"
    )
    counts = proofs.restart_count_problems(
        counts_before, _restart_counts(cluster, namespace, list(counts_before)), name
    )
    assert not counts, "restarts: " + "; ".join(counts)


def test_deleted_pod_is_replaced_by_its_replicaset(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Delete one of two pods: its ReplicaSet creates a replacement that becomes Ready, so the
    Deployment is back to two Ready replicas."""
    figures[floors.FIGURE_KEY] = DELETE_FLOOR.to_dict()
    deployment = workloads.deploy(APP, replicas=REPLICAS)
    pods = workloads.pods(APP)
    victim = name_of(pods[0])
    owner = pods[0]["metadata"]["ownerReferences"][0]["name"]
    survivors = {name_of(pod) for pod in pods[1:]}
    selector = selector_string(deployment["spec"]["selector"]["matchLabels"])

    delete_wall = time.time()
    recorder.mark("delete", pod=victim)
    cluster.kube.request("DELETE", PODS.path(namespace, victim))

    def replaced(current: list[JSON]) -> Verdict:
        live = [pod for pod in current if not is_terminating(pod)]
        new = [pod for pod in live if name_of(pod) not in survivors and name_of(pod) != victim]
        ready = [pod for pod in live if is_pod_ready(pod)]
        if new and len(ready) == REPLICAS and name_of(new[0]) in {name_of(p) for p in ready}:
            return Done(new[0])
        if not new:
            return Pending(f"no replacement pod yet; {len(ready)}/{REPLICAS} Ready")
        return Pending(f"replacement {name_of(new[0])} not Ready; {len(ready)}/{REPLICAS} Ready")

    replacement = wait_pods(
        cluster.kube,
        namespace,
        selector,
        replaced,
        timeout_s=REPLACEMENT_DEADLINE_S,
        what=f"replicaset/{owner}",
        expected=f"{REPLICAS} Ready pods again, one of them new",
        hint=(
            "no replacement means the ReplicaSet controller (kube-controller-manager) or the "
            f"scheduler is not running; kubectl -n {namespace} describe replicaset/{owner}"
        ),
    )
    recorder.mark("replaced", pod=name_of(replacement))
    figures.update(
        deleted=victim,
        replacement=name_of(replacement),
        replaced_and_ready_after_s=round(time.time() - delete_wall, 2),
    )
    owners = [ref["name"] for ref in replacement["metadata"].get("ownerReferences", [])]
    assert owner in owners, (
        f"the replacement {name_of(replacement)} is owned by {owners}, not {owner}"
    )
    _assert_events(
        recorder,
        lambda events: proofs.created_by_problem(
            events, f"replicaset/{owner}", name_of(replacement)
        ),
        f"replicaset/{owner} created {name_of(replacement)}",
    )
    survivors_before = {name_of(pod): restart_count(pod) for pod in pods[1:]}
    survivors_now = _restart_counts(cluster, namespace, sorted(survivors_before))
    assert survivors_now == survivors_before, (
        f"the surviving replicas' restartCounts went {survivors_before} -> {survivors_now}: "
        "deleting one pod must leave the others alone"
    )

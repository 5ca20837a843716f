"""Self-healing: the kubelet restarts sick or dead containers, the ReplicaSet replaces lost pods,
and the Service keeps answering from the healthy replica meanwhile.

`healthcheck` answers 503 on `/`, `/healthz` and `/readyz` once infected (`POST /infect`, held in
process memory, so only a restart cures it) and exits with status 1 on `POST /kill`. Its liveness
and readiness probes run every second and act on the first failure.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Mapping
from typing import Any

from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.kube import (
    JSON,
    PODS,
    KubeError,
    container_statuses,
    is_pod_ready,
    is_terminating,
    name_of,
    restart_count,
    selector_string,
)
from suite.recorder import Recorder
from suite.traffic import Answer, Prober, ProbeRequest, pod_request
from suite.waiting import Done, Pending, Verdict, pod_ready_verdict, wait_pod, wait_pods

APP = "healthcheck"
REPLICAS = 2
PORT = 8080
#: The probes of manifests/healthcheck, checked against the applied Deployment so the deadlines
#: below cannot drift from what actually runs.
LIVENESS = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1}
READINESS = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1}
STARTUP = {"periodSeconds": 1, "failureThreshold": 30}

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

#: Traffic through the Service while one replica is sick.
TRAFFIC = ProbeRequest(url="http://healthcheck/", concurrency=2, interval_ms=50, timeout_s=2.0)
TRAFFIC_CHUNK_S = 10.0
TRAFFIC_BOUND_S = 240.0
WARMUP_ANSWERS = 10
AFTER_READY_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
#: Failures are allowed only from the infection until the sick pod was seen not Ready plus this:
#: the EndpointSlice update and kube-proxy's resync (minSyncPeriod 1 s) before new connections
#: stop reaching the sick pod; requests sent meanwhile get its 503 (or a refused connection
#: while it restarts).
ENDPOINT_PROPAGATION_S = 3.0
#: Both replicas answer through the Service before traffic is measured: the EndpointSlice update
#: and a kube-proxy sync (at most once a second); 30 s covers a busy machine.
CONVERGE_S = 30.0
#: pytest-timeout backstop behind the deadlines above (suite/plugin.py): Ready (120 s, READY_S of
#: suite/fixtures.py), converged, then everything happens while the traffic runs; plus a margin.
BACKSTOP_S = 120.0 + CONVERGE_S + TRAFFIC_BOUND_S + 60.0
#: Prober timestamps come from its node's clock, marks from this machine's.
CLOCK_SKEW_S = 0.5
#: "The Service keeps answering": never this long without an answered request while the sick pod
#: is out (requests run back to back, 2 at a time, every 50 ms).
MAX_ANSWER_GAP_S = 2.0


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


def _longest_gap(answers: list[Answer], start: float, end: float) -> tuple[float, float]:
    """Longest stretch in [start, end] without an answered request: (length, where it began)."""
    times = sorted(a.start for a in answers if a.ok and start <= a.start <= end)
    edges = [start, *times, end]
    gaps = [(b - a, a) for a, b in itertools.pairwise(edges)]
    return max(gaps) if gaps else (end - start, start)


def test_infected_pod_is_restarted_while_the_service_keeps_answering(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Infect one of two replicas: its liveness probe fails, the kubelet restarts it within
    period x threshold + margin, it is Ready again after, and Service clients are answered by the
    healthy replica throughout (failures only until the sick pod leaves the endpoints)."""
    deployment = workloads.deploy(APP, replicas=REPLICAS)
    _assert_probes_as_stated(deployment)
    sick_pod, healthy_pod = workloads.pods(APP)
    sick, healthy, before = name_of(sick_pod), name_of(healthy_pod), restart_count(sick_pod)
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
            _restarted(before),
            timeout_s=INFECTED_RESTART_DEADLINE_S,
            expected=f"restartCount > {before}: liveness probe failed, kubelet restarted it",
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

    not_ready_wall = _first_wall(recorder, sick, t_infect, lambda view: not view.ready)
    restart_seen = _first_wall(recorder, sick, t_infect, lambda view: view.restarts > before)
    out_wall = min(w for w in (not_ready_wall, restart_seen, restart_wall) if w is not None)
    allowed_from = infect_wall - CLOCK_SKEW_S
    allowed_until = out_wall + ENDPOINT_PROPAGATION_S + CLOCK_SKEW_S
    in_window = [a for a in result.failed if allowed_from <= a.start <= allowed_until]
    outside = [a for a in result.failed if not allowed_from <= a.start <= allowed_until]
    gap, gap_at = _longest_gap(result.answers, allowed_until, ready_wall)
    figures.update(
        restarted_after_s=round((restart_seen or restart_wall) - infect_wall, 2),
        floor_s=LIVENESS["periodSeconds"] * LIVENESS["failureThreshold"],
        not_ready_after_s=round(not_ready_wall - infect_wall, 2) if not_ready_wall else None,
        ready_again_after_s=round(ready_wall - infect_wall, 2),
        requests=result.sent,
        failed_while_leaving_endpoints=len(in_window),
        failed_otherwise=len(outside),
        answered_by=dict(result.by_pod()),
    )

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    assert not outside, (
        f"{len(outside)} requests through Service {APP} failed outside the window in which the "
        f"sick pod was leaving the endpoints (infection + {allowed_until - infect_wall:.1f}s), "
        f"first at +{outside[0].start - infect_wall:.1f}s: {outside[0].error or outside[0].status}"
        f" ({result.describe()}); the healthy replica {healthy} should have answered them "
        "(a sick pod leaves the Service when the EndpointSlice controller in "
        "kube-controller-manager and kube-proxy act on its readiness)"
    )
    assert gap <= MAX_ANSWER_GAP_S, (
        f"Service {APP} answered nothing for {gap:.1f}s from +{gap_at - infect_wall:.1f}s after "
        f"the infection while {sick} was out (at most {MAX_ANSWER_GAP_S}s allowed); "
        f"{result.describe()}"
    )
    assert result.by_pod().get(healthy, 0) > 0, f"the healthy replica {healthy} never answered"


def test_killed_process_is_restarted_and_reports_exit_code_1(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Kill the server process (exit 1): the kubelet restarts the container at once, its last
    state says terminated with exit code 1, and the pod is Ready again."""
    workloads.deploy(APP, replicas=REPLICAS)
    victim = workloads.pods(APP)[0]
    name, before = name_of(victim), restart_count(victim)

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


def test_deleted_pod_is_replaced_by_its_replicaset(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Delete one of two pods: its ReplicaSet creates a replacement that becomes Ready, so the
    Deployment is back to two Ready replicas."""
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

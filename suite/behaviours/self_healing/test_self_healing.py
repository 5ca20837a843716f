"""Self-healing: the kubelet restarts sick or dead containers, the ReplicaSet replaces lost pods,
and the Service keeps answering from the healthy replica meanwhile.

`healthcheck` answers 503 on `/`, `/healthz` and `/readyz` once infected (`POST /infect`, held in
process memory, so only a restart cures it) and exits with status 1 on `POST /kill`. Readiness and
liveness are separated: readiness acts on the first failure (every second), liveness only after 8
in a row, so an infected pod is NotReady but alive for several seconds before its restart. That is
the window in which the Service must route around it: within a stated bound of the pod turning
NotReady, no request may reach it or fail until it is Ready again, and the healthy replica must
answer throughout. The restart itself must be the liveness probe's doing (its events), exactly one
restart of the same pod (same UID) and none of the healthy one, after which the pod answers
through the Service again.

Before any of it the scenario reads back what the cluster admitted (`suite.admitted`): the live
pods' probes, grace period and readiness gates, and the Service's type and affinity. Every
deadline below is computed from the admitted probes (`Timers.of_pod`), which equal the stated
ones once the read-back passes. A failure message names a part (the kubelet, the EndpointSlice
controller, kube-proxy) only because of what was recorded: the kubelet's probe events, and the
Service's EndpointSlices as the recorder watched them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from suite import admitted, claims, floors, timing, traffic_proofs
from suite.admitted import ABSENT
from suite.behaviours.self_healing import proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import (
    JSON,
    PODS,
    SERVICES,
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
from suite.traffic import Answer, BackgroundProbe, Prober, ProbeRequest, pod_request
from suite.waiting import Done, Pending, Verdict, WaitFailed
from suite.waits import pod_ready_verdict, wait_pod, wait_pods

APP = "healthcheck"
REPLICAS = 2
PORT = 8080
#: The probes of manifests/healthcheck (test_proofs.py beside this file holds the manifest to them).
#: The scenario reads them back from the live pods and computes its deadlines from what it reads.
LIVENESS = {"periodSeconds": 1, "failureThreshold": 8, "timeoutSeconds": 1}
READINESS = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1, "successThreshold": 1}
STARTUP = {"periodSeconds": 1, "failureThreshold": 30, "timeoutSeconds": 1}
#: The pod's grace period: the kubelet waits up to this for a container it kills to stop. gunicorn
#: stops within its 5 s graceful timeout (at once with nothing in flight), inside RESTART_MARGIN_S.
GRACE_S = 10


def _http_probe(path: str, settings: Mapping[str, int]) -> dict[str, Any]:
    return {**settings, "httpGet": {"path": path, "port": "http"}}


#: What every live pod must carry: the probes the deadlines come from (and no probe-level grace
#: overriding the pod's), the grace the restart margin allows for, and no readiness gate (one
#: would hold Ready, and the Service's endpoints with it, back from the readiness probe).
POD_EXPECTED: dict[str, Any] = {
    "spec": {
        "terminationGracePeriodSeconds": GRACE_S,
        "readinessGates": ABSENT,
        "containers": [
            {
                "name": APP,
                "livenessProbe": {
                    **_http_probe("/healthz", LIVENESS),
                    "terminationGracePeriodSeconds": ABSENT,
                },
                "readinessProbe": _http_probe("/readyz", READINESS),
                "startupProbe": _http_probe("/healthz", STARTUP),
            }
        ],
    }
}
#: The Service the routing claim is about: a virtual IP whose connections the node's service proxy
#: spreads over the ready endpoints, no session affinity (it would pin the prober to one pod), and
#: endpoints on every node, not only the prober's.
SERVICE_EXPECTED: dict[str, Any] = {
    "spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}
}

#: The kubelet's status update reaching the API server (and the watch) after a probe result.
STATUS_MARGIN_S = 3.0
#: Beyond the failed probes, a restart takes: the probe worker's phase (up to one period), SIGTERM
#: to gunicorn (graceful timeout 5 s; with nothing in flight it exits at once), creating and
#: starting the new container, and the new status reaching the API server.
RESTART_MARGIN_S = 15.0
#: Restart -> Ready: status updates on top of the startup and readiness probes.
READY_MARGIN_S = 5.0
#: Deletion -> a replacement pod started: the ReplicaSet controller reacts to the deletion at once;
#: scheduling and container start take seconds.
POD_START_S = 10.0


def _get(probe: Mapping[str, Any], key: str) -> int:
    # The API's defaults, for a probe that does not state a field (the read-back already failed
    # on any field this scenario states and the pod does not carry).
    defaults = {"periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 1}
    return int(probe.get(key, defaults[key]))


@dataclass(frozen=True)
class Timers:
    """This scenario's deadlines, from one pod's probes: as stated above (`STATED`) for the
    numbers shown here, or as admitted (`of_pod`) for the ones a run uses."""

    liveness: Mapping[str, Any]
    readiness: Mapping[str, Any]
    startup: Mapping[str, Any]

    @classmethod
    def of_pod(cls, pod: Mapping[str, Any]) -> Timers:
        """The probes of the pod's `healthcheck` container, as the API server returns them."""
        container = next(c for c in pod["spec"]["containers"] if c.get("name") == APP)
        return cls(
            dict(container.get("livenessProbe") or {}),
            dict(container.get("readinessProbe") or {}),
            dict(container.get("startupProbe") or {}),
        )

    @property
    def not_ready_deadline_s(self) -> float:
        """Infection -> NotReady: readiness period x threshold + one probe timeout + status."""
        r = self.readiness
        return (
            _get(r, "periodSeconds") * _get(r, "failureThreshold")
            + _get(r, "timeoutSeconds")
            + STATUS_MARGIN_S
        )

    @property
    def restart_deadline_s(self) -> float:
        """Infection -> restartCount rises: liveness period x failureThreshold + one probe
        timeout + RESTART_MARGIN_S."""
        live = self.liveness
        return (
            _get(live, "periodSeconds") * _get(live, "failureThreshold")
            + _get(live, "timeoutSeconds")
            + RESTART_MARGIN_S
        )

    @property
    def restart_earliest_s(self) -> float:
        """Infection -> restart no earlier than this: the kubelet needs failureThreshold failures
        in a row, the first of which can come at once. Earlier: something else restarted it."""
        live = self.liveness
        return float(_get(live, "periodSeconds") * (_get(live, "failureThreshold") - 1))

    @property
    def ready_again_deadline_s(self) -> float:
        """Restart -> Ready: the startup probe may need up to period x failureThreshold before the
        kubelet gives up, then one readiness period; plus READY_MARGIN_S for status updates."""
        s = self.startup
        return (
            _get(s, "periodSeconds") * _get(s, "failureThreshold")
            + _get(self.readiness, "periodSeconds")
            + READY_MARGIN_S
        )

    @property
    def replacement_deadline_s(self) -> float:
        """Deletion -> a replacement pod Ready: POD_START_S, then Ready as after a restart."""
        return POD_START_S + self.ready_again_deadline_s


STATED = Timers(LIVENESS, READINESS, STARTUP)
NOT_READY_DEADLINE_S = STATED.not_ready_deadline_s
INFECTED_RESTART_DEADLINE_S = STATED.restart_deadline_s
INFECTED_RESTART_EARLIEST_S = STATED.restart_earliest_s
READY_AGAIN_DEADLINE_S = STATED.ready_again_deadline_s
REPLACEMENT_DEADLINE_S = STATED.replacement_deadline_s
#: The kubelet's PLEG relists containers every second; the first restart has no back-off.
PLEG_RELIST_S = 1.0
#: POST /kill -> restartCount rises (the process exits 0.2 s after answering).
KILL_RESTART_DEADLINE_S = PLEG_RELIST_S + RESTART_MARGIN_S
#: A restarted container's lastState, when its raised restartCount came first: the next status sync.
LAST_STATE_S = 10.0
#: The kubelet writes its events right as it acts; the watch delivers them within a second or two.
EVENTS_DEADLINE_S = 10.0

#: NotReady (as the API reports it) -> its EndpointSlice lists the pod as not ready: the
#: EndpointSlice controller (kube-controller-manager) acts on the pod update at once (no batching
#: by default); a second for its queue and the write on a busy machine.
SLICE_BOUND_S = 1.0
#: EndpointSlice changed -> no new connection reaches the pod: kube-proxy applies it at its next
#: sync and the rules take a restore to load (suite.timing.PROXY_LAG_S, where the figure comes
#: from). A service proxy that follows endpoint changes late breaks this bound.
PROXY_BOUND_S = timing.PROXY_LAG_S
#: NotReady -> routed around, and Ready again -> answering through the Service again: the two
#: bounds above, so a breach of this bound always breaches one of them (and names its part).
ROUTING_BOUND_S = SLICE_BOUND_S + PROXY_BOUND_S
#: "The Service keeps answering": the healthy replica never pauses longer than this while the sick
#: pod is out (requests run back to back, 2 at a time, every 50 ms).
MAX_ANSWER_GAP_S = 2.0
#: Prober timestamps come from its node's clock, marks from this machine's: the skew is measured
#: each run (suite.traffic_proofs.clock_offset) and must stay within this.
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
#: Ready again -> how long the traffic waits for the pod's first answer through the Service: the
#: routing bound and the skew, and 5 s more so that a late answer is measured, not just missed.
ANSWERING_AGAIN_WAIT_S = ROUTING_BOUND_S + MAX_CLOCK_SKEW_S + 5.0
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


# -- reading back what was admitted ---------------------------------------------------------------


def admitted_problems(pods: list[JSON], service: Mapping[str, Any] | None = None) -> list[str]:
    """The live pods (and the Service) against what this scenario's bounds assume."""
    return admitted.workload_problems(pods, POD_EXPECTED, service, SERVICE_EXPECTED)


def _read_back(pods: list[JSON], service: Mapping[str, Any] | None = None) -> Timers:
    """Inside `claims.behaviour()`: fail with one line when the cluster changed what this
    scenario depends on; else the deadlines from the admitted probes."""
    found = admitted_problems(pods, service)
    what = f"the {APP} pods" + (" and service" if service is not None else "")
    assert not found, admitted.rewritten(found, what)
    return Timers.of_pod(pods[0])


# -- small helpers --------------------------------------------------------------------------------


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


def _last_ready_wall(recorder: Recorder, pod: str, since_t: float, until: float) -> float | None:
    """When the pod last turned Ready (after `since_t`, at or before wall `until`)."""
    found, was_ready = None, True
    for t, wall, view in recorder.pod_history(pod):
        if view is None or wall > until:
            continue
        if t >= since_t and view.ready and not was_ready:
            found = wall
        was_ready = view.ready
    return found


def _wait_answering_again(traffic: BackgroundProbe, sick: str, ready_wall: float) -> None:
    """Let the traffic run until the recovered pod answered through the Service (and enough
    answers came after it was Ready), bounded; whether and when it answered is judged after the
    traffic stopped, once the routing around it was judged (the more specific claim)."""

    def check(answers: list[Answer]) -> Verdict:
        after = sum(a.ok and a.start > ready_wall for a in answers)
        back = proofs.first_answer_from(answers, sick, ready_wall - MAX_CLOCK_SKEW_S)
        if back is not None and after >= AFTER_READY_ANSWERS:
            return Done()
        return Pending(f"{after} answers after Ready again, pod/{sick} answered: {bool(back)}")

    with contextlib.suppress(WaitFailed):
        traffic.wait_for(
            check,
            timeout_s=ANSWERING_AGAIN_WAIT_S,
            what="traffic to service/healthcheck",
            expected=f"pod/{sick} answering through the Service after it was Ready again",
        )


def _restart_counts(cluster: Cluster, namespace: str, pods: list[str]) -> dict[str, int]:
    return {pod: restart_count(get_object(cluster.kube, PODS, namespace, pod)) for pod in pods}


def _listed(
    recorder: Recorder, pod: str, since_t: float, since: float
) -> tuple[bool, float | None, float | None]:
    """Whether the recorder watched the Service's EndpointSlices throughout since `since_t`, and
    when they stopped listing `pod` as ready after wall `since` and listed it again."""
    if "EndpointSlice" not in recorder.resources:
        return False, None, None
    watched = not recorder.gap_problems(["EndpointSlice"], since=since_t)
    timeline = traffic_proofs.endpoint_timeline(recorder.samples("EndpointSlice"), APP)
    return (watched, *traffic_proofs.listed_interval(timeline, pod, since))


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _assert_events(
    recorder: Recorder, problem: Callable[[list[JSON]], str | None], expected: str
) -> None:
    found = recorder.events_problem(problem, timeout_s=EVENTS_DEADLINE_S, what=expected)
    assert found is None, found


def _with_blame(error: WaitFailed, blame: str) -> AssertionError:
    return AssertionError(f"{claims.message_of(error)}; {blame}")


# -- the scenarios --------------------------------------------------------------------------------


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
    kubelet restart it, exactly once, and the same pod answers through the Service again; the
    healthy replica is never restarted."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = INFECT_FLOOR.to_dict()
    workloads.deploy(APP, replicas=REPLICAS)
    pods = workloads.pods(APP)
    service = get_object(cluster.kube, SERVICES, namespace, APP)
    with claims.behaviour():
        timers = _read_back(pods, service)
    sick_pod, healthy_pod = pods
    sick, healthy = name_of(sick_pod), name_of(healthy_pod)
    before = {sick: restart_count(sick_pod), healthy: restart_count(healthy_pod)}
    uids = {sick: _uid(sick_pod), healthy: _uid(healthy_pod)}

    prober.converge(TRAFFIC.url, [sick, healthy], timeout_s=CONVERGE_S)
    recorder.mark("Service converged")
    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    try:
        traffic.wait_answered(
            WARMUP_ANSWERS, what="before the infection", timeout_s=ANSWERS_DEADLINE_S
        )
        infect_wall = time.time()
        t_infect = recorder.mark("infect", pod=sick)
        pod_request(cluster.kube, namespace, sick, PORT, "infect")
        with claims.behaviour():
            try:
                wait_pod(
                    cluster.kube,
                    namespace,
                    sick,
                    _not_ready,
                    timeout_s=timers.not_ready_deadline_s,
                    expected="NotReady: its readiness probe fails once it is infected",
                )
            except WaitFailed as error:
                raise _with_blame(error, proofs.not_ready_blame(recorder.events(), sick)) from error
            recorder.mark("not ready", pod=sick)
            try:
                wait_pod(
                    cluster.kube,
                    namespace,
                    sick,
                    _restarted(before[sick]),
                    timeout_s=timers.restart_deadline_s - (time.time() - infect_wall),
                    expected=(
                        f"restartCount > {before[sick]} after its liveness probe failed "
                        f"{_get(timers.liveness, 'failureThreshold')} times"
                    ),
                )
            except WaitFailed as error:
                raise _with_blame(error, proofs.restart_blame(recorder.events(), sick)) from error
            restart_wall = time.time()
            recorder.mark("restarted", pod=sick)
            wait_pod(
                cluster.kube,
                namespace,
                sick,
                pod_ready_verdict,
                timeout_s=timers.ready_again_deadline_s,
                expected="Ready again after its restart",
            )
            ready_wall = time.time()
            recorder.mark("ready again", pod=sick)
        _wait_answering_again(traffic, sick, ready_wall)
    finally:
        result = traffic.stop()
    slices_watched, listed_out, listed_back = _listed(recorder, sick, t_infect, infect_wall)

    offset = traffic_proofs.clock_offset(result.answers, result.chunk_sent)
    skew = offset.bound if offset else MAX_CLOCK_SKEW_S
    # The window in which the sick pod is out: from its first NotReady (plus the routing bound)
    # to its next Ready as the API reported it (the kubelet may report the new container Ready
    # once and NotReady again while the restart settles; failures are counted to the end).
    not_ready_wall, back_wall = traffic_proofs.not_ready_interval(
        recorder.pod_history(sick), t_infect
    )
    restart_seen = _first_wall(recorder, sick, t_infect, lambda view: view.restarts > before[sick])
    restarted_after = (restart_seen or restart_wall) - infect_wall
    out_from = (not_ready_wall or restart_wall) + ROUTING_BOUND_S + skew
    out_until = (back_wall or ready_wall) - skew
    before_out = traffic_proofs.in_window(result.answers, infect_wall - skew, out_from)
    # The pod answering again: its first answer after it was first Ready again, measured from the
    # Ready that let it in (the last one before that answer, should it have flapped).
    back = proofs.first_answer_from(result.answers, sick, (back_wall or ready_wall) - skew)
    back_ref = back_wall or ready_wall
    if back is not None:
        back_ref = _last_ready_wall(recorder, sick, t_infect, back.start + skew) or back_ref
    measured = [a.start for a in result.answers]
    gaps = proofs.answer_gaps(
        result.answers, [sick, healthy], min(measured, default=0.0), max(measured, default=0.0)
    )
    now = {name_of(pod): pod for pod in workloads.pods(APP)}
    after = _restart_counts(cluster, namespace, [sick, healthy])
    figures.update(
        not_ready_after_s=round(not_ready_wall - infect_wall, 2) if not_ready_wall else None,
        restarted_after_s=round(restarted_after, 2),
        restart_earliest_s=timers.restart_earliest_s,
        restart_deadline_s=timers.restart_deadline_s,
        ready_again_after_s=round(ready_wall - infect_wall, 2),
        routing_bound_s=ROUTING_BOUND_S,
        sick_out_s=round(out_until - out_from, 2),
        slice_out_after_not_ready_s=(
            # + 0.0: no "-0.0" when the two watches saw the change in the same instant
            round(listed_out - not_ready_wall, 2) + 0.0 if listed_out and not_ready_wall else None
        ),
        answering_again_after_s=round(back.start - back_ref, 2) if back else None,
        answer_gap_s={pod: round(gap, 2) for pod, (gap, _) in gaps.items()},
        requests=result.sent,
        failed_before_routed_around=sum(not a.ok for a in before_out),
        failed_while_out=sum(
            not a.ok for a in traffic_proofs.in_window(result.answers, out_from, out_until)
        ),
        answered_by=dict(result.by_pod()),
        clock_skew_s=round(skew, 3),
    )

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    problem = traffic_proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    blind = recorder.gap_problems(["Pod", "Event"], since=t_infect)
    assert not blind, (
        f"the recorder lost a watch while pod/{sick} was sick, so when it turned NotReady and "
        "restarted is not known: " + "; ".join(blind)
    )
    with claims.behaviour():
        not_ready_first = not_ready_wall is not None and not_ready_wall < (
            restart_seen or restart_wall
        )
        assert not_ready_first, (
            f"pod/{sick} was not seen NotReady before its restart: readiness should fail after "
            f"{_get(timers.readiness, 'failureThreshold')} probe, liveness only after "
            f"{_get(timers.liveness, 'failureThreshold')}; "
            + proofs.not_ready_blame(recorder.events(), sick)
        )
        routing = traffic_proofs.routing_problems(
            result.answers,
            sick,
            healthy,
            out_from,
            out_until,
            MAX_ANSWER_GAP_S,
            failures_until=ready_wall - skew,
        )
        blame = proofs.routing_blame(
            result.answers,
            sick,
            not_ready_wall,
            listed_out,
            watched=slices_watched,
            start=out_from,
            end=out_until,
            slice_bound_s=SLICE_BOUND_S,
            proxy_bound_s=PROXY_BOUND_S,
            skew_s=skew,
        )
        assert not routing, (
            f"Service {APP} did not route around NotReady pod/{sick} from {ROUTING_BOUND_S}s "
            f"after it turned NotReady until it was Ready again ({out_until - out_from:.1f}s): "
            + "; ".join(routing)
            + (". " + "; ".join(blame) if blame else "")
            + f" ({result.describe()})"
        )
        assert sick in now, f"pod/{sick} is gone: it was to be restarted in place"
        assert _uid(now[sick]) == uids[sick], (
            f"pod/{sick} is another pod now (uid {uids[sick]} -> {_uid(now[sick])}): it was to "
            "be restarted in place"
        )
        counts = proofs.restart_count_problems(before, after, sick)
        assert not counts, "restarts: " + "; ".join(counts)
        again = proofs.answering_again_problem(
            back,
            sick,
            ready=back_ref,
            last_start=max(measured, default=back_ref),
            bound_s=ROUTING_BOUND_S,
            skew_s=skew,
        )
        assert again is None, f"service/{APP}: {again}; " + proofs.back_in_service_blame(
            sick,
            back_wall or ready_wall,
            listed_back,
            watched=slices_watched,
            slice_bound_s=SLICE_BOUND_S,
        )
        assert restarted_after >= timers.restart_earliest_s, (
            f"pod/{sick} restarted {restarted_after:.1f}s after the infection, before its liveness "
            f"probe can have failed {_get(timers.liveness, 'failureThreshold')} times "
            f"({timers.restart_earliest_s}s)"
        )
        _assert_events(
            recorder,
            lambda events: proofs.liveness_restart_problem(events, sick),
            f"pod/{sick} restarted for a failed liveness probe",
        )


def _last_terminated(cluster: Cluster, namespace: str, name: str, pod: JSON) -> JSON:
    """The app container's status once it carries its last termination: the kubelet can post a
    raised restartCount a sync before lastState (seen once under load, a healthy cluster), so an
    empty lastState is read again for LAST_STATE_S before it is judged."""

    def status_of(view: JSON) -> JSON:
        return next((s for s in container_statuses(view) if s.get("name") == APP), {})

    def with_last_state(view: JSON) -> Verdict:
        status = status_of(view)
        if (status.get("lastState") or {}).get("terminated"):
            return Done(status)
        return Pending(f"lastState {status.get('lastState')}")

    first = with_last_state(pod)
    if isinstance(first, Done):
        return first.value
    with contextlib.suppress(WaitFailed):
        found: JSON = wait_pod(
            cluster.kube,
            namespace,
            name,
            with_last_state,
            timeout_s=LAST_STATE_S,
            expected="lastState.terminated of the restarted container",
        )
        return found
    return status_of(get_object(cluster.kube, PODS, namespace, name))


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
    pods = workloads.pods(APP)
    with claims.behaviour():
        timers = _read_back(pods)
    victim = pods[0]
    name, before = name_of(victim), restart_count(victim)
    counts_before = {name_of(pod): restart_count(pod) for pod in pods}

    kill_wall = time.time()
    recorder.mark("kill", pod=name)
    # The process may be gone before its 202 makes it back through the proxy.
    with contextlib.suppress(KubeError):
        pod_request(cluster.kube, namespace, name, PORT, "kill")
    with claims.behaviour():
        try:
            restarted = wait_pod(
                cluster.kube,
                namespace,
                name,
                _restarted(before),
                timeout_s=KILL_RESTART_DEADLINE_S,
                expected=f"restartCount > {before}: the process exited, its container restarted",
            )
        except WaitFailed as error:
            history = recorder.pod_history(name)
            view = history[-1][2] if history else None
            raise _with_blame(error, proofs.exit_restart_blame(view, APP, before)) from error
        restart_wall = time.time()
        recorder.mark("restarted", pod=name)
        status = _last_terminated(cluster, namespace, name, restarted)
        last = (status.get("lastState") or {}).get("terminated") or {}
        figures.update(
            restarted_after_s=round(restart_wall - kill_wall, 2),
            exit_code=last.get("exitCode"),
            reason=last.get("reason"),
        )
        assert last.get("exitCode") == 1, (
            f"pod/{name} container {APP}: last state {status.get('lastState')}, expected "
            "terminated with exit code 1 (POST /kill exits 1)"
        )
        wait_pod(
            cluster.kube,
            namespace,
            name,
            pod_ready_verdict,
            timeout_s=timers.ready_again_deadline_s,
            expected="Ready again after its restart",
        )
        figures["ready_again_after_s"] = round(time.time() - kill_wall, 2)
        killed = [
            event
            for event in traffic_proofs.events_for(recorder.events(), f"pod/{name}")
            if event.get("reason") == "Killing"
        ]
        assert not killed, (
            f"the kubelet killed pod/{name} ({killed[0].get('message')}): the restart must come "
            "from the process's own exit, not from a probe"
        )
        counts = proofs.restart_count_problems(
            counts_before, _restart_counts(cluster, namespace, list(counts_before)), name
        )
        assert not counts, "restarts: " + "; ".join(counts)


def _replacement_verdict(victim: str, survivors: set[str]) -> Callable[[list[JSON]], Verdict]:
    """Done with the replacement once REPLICAS pods are Ready, one of them new; while waiting, the
    part that has not yet done its step, from the pods as they are."""

    def replaced(current: list[JSON]) -> Verdict:
        live = [pod for pod in current if not is_terminating(pod)]
        new = [pod for pod in live if name_of(pod) not in survivors and name_of(pod) != victim]
        ready = [pod for pod in live if is_pod_ready(pod)]
        if new and len(ready) == REPLICAS and name_of(new[0]) in {name_of(p) for p in ready}:
            return Done(new[0])
        if not new:
            return Pending(
                f"no replacement pod was created ({len(ready)}/{REPLICAS} Ready): the ReplicaSet "
                "controller (kube-controller-manager) has not replaced it"
            )
        spec, status = new[0].get("spec") or {}, new[0].get("status") or {}
        if not spec.get("nodeName"):
            return Pending(
                f"replacement {name_of(new[0])} is not bound to a node: the scheduler has not "
                "placed it"
            )
        return Pending(
            f"replacement {name_of(new[0])} on node {spec['nodeName']} is "
            f"{status.get('phase', '?')}, not Ready ({len(ready)}/{REPLICAS} Ready): the kubelet "
            "there has not reported it Ready"
        )

    return replaced


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
    with claims.behaviour():
        timers = _read_back(pods)
    victim = name_of(pods[0])
    owner = pods[0]["metadata"]["ownerReferences"][0]["name"]
    survivors = {name_of(pod) for pod in pods[1:]}
    selector = selector_string(deployment["spec"]["selector"]["matchLabels"])

    delete_wall = time.time()
    recorder.mark("delete", pod=victim)
    cluster.kube.request("DELETE", PODS.path(namespace, victim))

    with claims.behaviour():
        replacement = wait_pods(
            cluster.kube,
            namespace,
            selector,
            _replacement_verdict(victim, survivors),
            timeout_s=timers.replacement_deadline_s,
            what=f"replicaset/{owner}",
            expected=f"{REPLICAS} Ready pods again, one of them new",
            hint=f"kubectl -n {namespace} describe replicaset/{owner}",
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

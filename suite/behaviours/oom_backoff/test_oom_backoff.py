"""Out of memory and the restart back-off: a container that allocates past its memory limit is
OOMKilled, and the kubelet restarts it, waiting longer each time it dies again; the Service keeps
answering from the other replica meanwhile, and the pod comes back, the same pod.

`memhog` runs two replicas under a 96Mi memory limit (about twice what it needs at rest).
`POST /oom?starts=2`, sent to one pod through the API server's pod proxy (never from the
frontend), writes "2 more starts to fail" on an emptyDir (which outlives the container) and has
the container's main process allocate up to 512 MiB: the kernel's OOM killer ends it. The next
two starts take one off the count each and allocate again before serving, so the container is
OOMKilled three times in a row; the fourth run serves. The main process allocates, not a gunicorn
worker: on cgroup v1 (this cluster) the OOM killer ends only the biggest process, and a killed
worker would be replaced without the container dying.

What is judged, all from what the cluster reported (the recorder's pod history: every container
state seen, with the kubelet's start and end times; the EndpointSlices; the answers):
- each of the three runs ended `OOMKilled` (lastState.terminated.reason, as the kubelet reports
  it, never guessed from an exit code), and the pod is the same pod (same UID), serving again
  with restartCount 3;
- the restart delays (one run's finishedAt to the next run's startedAt) follow the kubelet's
  crash-loop back-off, read from the node's kubelet (/configz through the API server: feature
  gates and crashLoopBackOff). The mechanism (pkg/kubelet, v1.34): the first restart has no
  back-off at all (the back-off entry is created at that restart), so it comes at once; restart k
  >= 2 waits B_k = initial x 2^(k-2) (10 s, 20 s; capped at 300 s), counted from the run's end.
  The kubelet only notices the expiry when it syncs the pod again: a sync that finds the
  container in back-off is an error, and the pod worker retries it after backOffPeriod 10 s with
  up to 50 % jitter (pod_workers.go completeWork), so a restart comes between B_k and B_k + 15 s,
  plus the start itself (IMMEDIATE_S) and the timestamps' whole-second resolution (seen on the
  local single-node cluster, 2 cores: 1/15/33 s, 1/17/30 s, 1/16/29 s against windows of
  -1..4, 9..29 and 19..39 s);
- requests through the Service: failures are allowed only while the killed pod was still routed
  to. The kill is unannounced: until the kubelet reports the pod NotReady, the EndpointSlice
  controller takes it out and kube-proxy follows, requests that land on it fail (connection
  refused or reset), so zero cannot be promised for that window. What is certain, and bounded:
  nothing fails before the kill; each step of the way out is bounded and names its part (kill ->
  NotReady, the kubelet; -> out of the EndpointSlice, the EndpointSlice controller; -> the last
  failure, kube-proxy); and after that, through the whole crash loop (the pod is never Ready in
  between: it dies before it serves) and its return, not one request fails;
- the other replica answers throughout, and the pod answers through the Service again once it is
  listed ready.

Before any of it the scenario reads back the admitted pods (their memory limit, their readiness
probe) and the Service, so a cluster that rewrote them fails in one line naming the field.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from suite import admitted, claims, floors, timing, traffic_proofs
from suite.behaviours.oom_backoff import proofs
from suite.behaviours.readiness_gating.proofs import Step, first_answer_from, step_problems
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import JSON, SERVICES, KubeError, get_object, is_pod_ready, name_of
from suite.recorder import Recorder
from suite.traffic import Answer, BackgroundProbe, Prober, ProbeRequest, pod_request
from suite.waiting import Done, Failed, Pending, Verdict, WaitFailed
from suite.waits import wait_pod

APP = "memhog"
REPLICAS = 2
PORT = 8080
#: Starts that run out of memory after the one POST /oom kills: three OOM kills, three restarts
#: (the staircase 0, 10, 20 s), the fourth run serves.
FAILING_STARTS = 2
KILLS = FAILING_STARTS + 1
MEMORY_LIMIT = "96Mi"
#: The readiness probe of manifests/memhog: NotReady at the first failure, every second.
READINESS = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1, "successThreshold": 1}

#: What every live pod must carry: the limit the OOM killer enforces, and the readiness probe
#: the way back into the Service is timed from.
POD_EXPECTED: dict[str, Any] = {
    "spec": {
        "restartPolicy": "Always",
        "containers": [
            {
                "name": APP,
                "resources": {"limits": {"memory": MEMORY_LIMIT}},
                "readinessProbe": {**READINESS, "httpGet": {"path": "/readyz", "port": "http"}},
            }
        ],
    }
}
SERVICE_EXPECTED: dict[str, Any] = {
    "spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}
}

#: An exit -> the next start when nothing holds it back: the kubelet's PLEG relists every
#: second, then the sync creates and starts the container (measured on this 2-core machine:
#: 0-1 s between the kubelet's whole-second stamps); 3 s for a busy node.
IMMEDIATE_S = 3.0
#: The pod worker's retry of a sync that found the container in back-off: backOffPeriod 10 s
#: plus at most 50 % jitter (pkg/kubelet/pod_workers.go, workerBackOffPeriodJitterFactor).
RECHECK_S = 15.0
#: finishedAt and startedAt are whole seconds: a delay is known to within one.
RESOLUTION_S = 1.0
#: POST /oom -> NotReady: the answer leaves, 0.2 s, the master allocates (well under a second),
#: the kubelet's PLEG relist (1 s) and its status update; 5 s for a busy node.
NOT_READY_BOUND_S = 5.0
#: NotReady -> out of the EndpointSlice; out of the slice -> the last request routed to the
#: dead pod; listed ready again -> its first answer: as readiness gating's SLICE_BOUND_S, and
#: kube-proxy's sync and rules restore (suite.timing.PROXY_LAG_S) both ways.
SLICE_BOUND_S = 1.0
PROXY_BOUND_S = timing.PROXY_LAG_S
JOIN_BOUND_S = timing.PROXY_LAG_S
#: "The other replica answers throughout": no pause longer than this (about 20 answers a second
#: reach it while both are in, 40 while alone).
MAX_ANSWER_GAP_S = 2.0
MAX_CLOCK_SKEW_S = 0.5

#: Traffic through the Service the whole time, a new connection per request.
TRAFFIC = ProbeRequest(url="http://memhog/", concurrency=2, interval_ms=50, timeout_s=2.0)
TRAFFIC_CHUNK_S = 3.0
#: The traffic's own bound: the way out, the crash loop and the way back, with room.
TRAFFIC_BOUND_S = 240.0
WARMUP_ANSWERS = 10
AFTER_BACK_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
ANSWERING_AGAIN_WAIT_S = JOIN_BOUND_S + MAX_CLOCK_SKEW_S + 5.0
SLICE_WAIT_S = 15.0
CONVERGE_S = 30.0
#: Each run that runs out of memory at start lives this long at most (Python's start and the
#: allocation); the wait for the pod to serve again allows it per run.
RUN_S = 5.0
#: The kubelet's default back-off, for the stated floor and deadlines (a run reads the node's).
STATED_BACKOFF = proofs.Backoff(proofs.DEFAULT_INITIAL_S, proofs.DEFAULT_MAX_S, "stated")


def serving_again_deadline_s(backoff: proofs.Backoff) -> float:
    """NotReady -> Ready again after KILLS restarts: each restart's latest moment, each run, and
    the readiness probe's first pass (a second) and the status update (3 s)."""
    latest = sum(
        backoff.expected_s(k) + (RECHECK_S if k > 1 else 0.0) + IMMEDIATE_S + RESOLUTION_S
        for k in range(1, KILLS + 1)
    )
    return latest + KILLS * RUN_S + 1.0 + 3.0


def floor(backoff: proofs.Backoff) -> Floor:
    """Physical floor (suite.floors): the back-offs no test code can shorten, the probe, the
    routing; pod start comes on top."""
    return Floor.of(
        ("memhog Ready (one readiness period)", 1.0),
        ("the OOM kill noticed (one PLEG relist)", 1.0),
        (
            f"the back-offs of restarts 2..{KILLS}",
            sum(backoff.expected_s(k) for k in range(1, KILLS + 1)),
        ),
        ("Ready again (one readiness period)", 1.0),
        ("back in the rules (one kube-proxy sync)", 1.0),
    )


FLOOR = floor(STATED_BACKOFF)
#: pytest-timeout backstop: Ready (120 s), listed and converged, the way out, the crash loop,
#: the way back, and a margin.
BACKSTOP_S = (
    120.0
    + SLICE_WAIT_S
    + CONVERGE_S
    + NOT_READY_BOUND_S
    + serving_again_deadline_s(STATED_BACKOFF)
    + SLICE_WAIT_S
    + ANSWERING_AGAIN_WAIT_S
    + 90.0
)


# -- reading back -----------------------------------------------------------------------------


def admitted_problems(pods: list[JSON], service: Mapping[str, Any] | None = None) -> list[str]:
    """The live pods (and the Service) against what this scenario's bounds assume."""
    return admitted.workload_problems(pods, POD_EXPECTED, service, SERVICE_EXPECTED)


def _kubelet_backoff(cluster: Cluster, node: str) -> proofs.Backoff:
    """The node's kubelet back-off, from its /configz through the API server's node proxy; the
    upstream defaults when it cannot be read (a managed cluster may not allow it)."""
    try:
        configz = cluster.kube.request(
            "GET", f"/api/v1/nodes/{node}/proxy/configz", timeout=(5.0, 10.0)
        )
    except KubeError:
        return proofs.backoff_of(None)
    return proofs.backoff_of(configz if isinstance(configz, Mapping) else None)


# -- small helpers ----------------------------------------------------------------------------


def _not_ready(pod: JSON) -> Verdict:
    if not is_pod_ready(pod):
        return Done(pod)
    return Pending("still Ready")


def _restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses)


def _serving_again(pod: JSON) -> Verdict:
    restarts = _restarts(pod)
    if restarts > KILLS:
        return Failed(f"restartCount {restarts}: it died more often than the {KILLS} OOMs asked")
    if restarts == KILLS and is_pod_ready(pod):
        return Done(pod)
    (status,) = (pod.get("status") or {}).get("containerStatuses") or [{}]
    state = next(iter((status.get("state") or {}).items()), ("unknown", {}))
    return Pending(f"restartCount {restarts}, {state[0]} {state[1].get('reason') or ''}".strip())


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _with_blame(error: WaitFailed, blame: str) -> AssertionError:
    return AssertionError(f"{claims.message_of(error)}; {blame}")


def _timeline(recorder: Recorder) -> list[tuple[float, dict[str, bool]]]:
    return traffic_proofs.endpoint_timeline(recorder.samples("EndpointSlice"), APP)


def _wait_listed(recorder: Recorder, wanted: Mapping[str, bool], since_t: float) -> float:
    """Wait until the Service's EndpointSlices list each pod as `wanted`; the wall it was seen.
    A timeout names the EndpointSlice controller when the slices were watched throughout."""

    def listed() -> Verdict:
        current = _timeline(recorder)
        state = current[-1][1] if current else {}
        wrong = [pod for pod, ready in wanted.items() if bool(state.get(pod)) != ready]
        if not wrong:
            return Done(time.time())
        return Pending(f"listed as ready: {', '.join(p for p, r in state.items() if r) or 'none'}")

    try:
        seen: float = recorder.wait_for(
            listed,
            timeout_s=SLICE_WAIT_S,
            what=f"service/{APP}'s EndpointSlices",
            expected=", ".join(
                f"pod/{pod} {'' if ready else 'not '}listed as ready"
                for pod, ready in sorted(wanted.items())
            ),
        )
    except WaitFailed as error:
        watched = not recorder.gap_problems(["EndpointSlice"], since=since_t)
        blame = (
            f"{proofs.ENDPOINTSLICE_CONTROLLER} did not list the pods as their Ready condition says"
            if watched
            else "the watch of the EndpointSlices was lost, so which part lagged is not known"
        )
        raise _with_blame(error, blame) from error
    return seen


def _wait_answering_again(traffic: BackgroundProbe, pod: str, listed_wall: float) -> None:
    def check(answers: list[Answer]) -> Verdict:
        after = sum(a.ok and a.start > listed_wall for a in answers)
        back = first_answer_from(answers, pod, listed_wall - MAX_CLOCK_SKEW_S)
        if back is not None and after >= AFTER_BACK_ANSWERS:
            return Done()
        return Pending(f"{after} answers since listed again, pod/{pod} answered: {bool(back)}")

    with contextlib.suppress(WaitFailed):
        traffic.wait_for(
            check,
            timeout_s=ANSWERING_AGAIN_WAIT_S,
            what=f"traffic to service/{APP}",
            expected=f"pod/{pod} answering through the Service after it was listed ready again",
        )


def _lag(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) + 0.0 if start is not None and end is not None else None


# -- the scenario -----------------------------------------------------------------------------


def test_oom_killed_container_restarts_with_backoff_while_the_service_answers(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Run one of two replicas out of memory under traffic, and its next two starts too: each
    run ends OOMKilled, the restarts come after the kubelet's back-off (at once, then about 10 s,
    then about 20 s), the Service answers from the other replica throughout and fails requests
    only while the dead pod is still routed to, and the same pod serves again after 3 restarts."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    workloads.deploy(APP, replicas=REPLICAS)
    pods = workloads.pods(APP)
    service = get_object(cluster.kube, SERVICES, namespace, APP)
    with claims.behaviour():
        found = admitted_problems(pods, service)
        assert not found, admitted.rewritten(found, f"the {APP} pods and service")
    victim_pod, other_pod = pods
    victim, other = name_of(victim_pod), name_of(other_pod)
    uid = _uid(victim_pod)
    node = str((victim_pod.get("spec") or {}).get("nodeName") or "")
    backoff = _kubelet_backoff(cluster, node)
    figures[floors.FIGURE_KEY] = floor(backoff).to_dict()

    t_deployed = recorder.mark("deployed")
    with claims.behaviour():
        _wait_listed(recorder, {victim: True, other: True}, t_deployed)
    prober.converge(TRAFFIC.url, [victim, other], timeout_s=CONVERGE_S)
    recorder.mark("Service converged")
    traffic = prober.background(
        TRAFFIC,
        chunk_s=TRAFFIC_CHUNK_S,
        total_s=TRAFFIC_BOUND_S,
        label=APP,
    )
    try:
        traffic.wait_answered(WARMUP_ANSWERS, what="before the OOM", timeout_s=ANSWERS_DEADLINE_S)
        oom_wall = time.time()
        t_oom = recorder.mark("oom", pod=victim)
        pod_request(cluster.kube, namespace, victim, PORT, f"oom?starts={FAILING_STARTS}")
        with claims.behaviour():
            wait_pod(
                cluster.kube,
                namespace,
                victim,
                _not_ready,
                timeout_s=NOT_READY_BOUND_S + 5.0,
                expected=f"NotReady: its container OOMKilled after POST /oom ({proofs.KUBELET})",
            )
            recorder.mark("not ready", pod=victim)
            _wait_listed(recorder, {victim: False, other: True}, t_oom)
            recorder.mark("out of the slice", pod=victim)
            try:
                wait_pod(
                    cluster.kube,
                    namespace,
                    victim,
                    _serving_again,
                    timeout_s=serving_again_deadline_s(backoff),
                    expected=f"Ready again after {KILLS} restarts (restartCount {KILLS})",
                )
            except WaitFailed as error:
                raise _with_blame(
                    error,
                    f"{proofs.KUBELET} did not restart it {KILLS} times within its back-off "
                    f"({backoff.source})",
                ) from error
            t_back = recorder.mark("ready again", pod=victim)
            in_seen = _wait_listed(recorder, {victim: True, other: True}, t_back)
            recorder.mark("back in the slice", pod=victim)
        _wait_answering_again(traffic, victim, in_seen)
    finally:
        result = traffic.stop()

    offset = traffic_proofs.clock_offset(result.answers, result.chunk_sent)
    skew = offset.bound if offset else MAX_CLOCK_SKEW_S
    history = recorder.pod_history(victim)
    runs = proofs.container_runs(history, APP)
    delays = proofs.restart_delays(
        runs,
        KILLS,
        backoff,
        immediate_s=IMMEDIATE_S,
        recheck_s=RECHECK_S,
        resolution_s=RESOLUTION_S,
    )
    not_ready_wall, ready_wall = traffic_proofs.not_ready_interval(history, t_oom)
    listed_out, listed_in = traffic_proofs.listed_interval(_timeline(recorder), victim, oom_wall)
    failed = [a for a in result.answers if not a.ok]
    last_failed = max((a.start for a in failed if a.start >= oom_wall - skew), default=None)
    first = first_answer_from(result.answers, victim, (ready_wall or oom_wall) - skew)
    routed_out = listed_out + PROXY_BOUND_S if listed_out is not None else None
    measured = [a.start for a in result.answers]
    others = traffic_proofs.coverage(
        [a.start for a in result.answers if a.ok and a.pod == other],
        min(measured, default=0.0),
        max(measured, default=0.0),
        max_gap_s=MAX_ANSWER_GAP_S,
        min_rate=0.0,
        what=f"answers from pod/{other}",
    )
    now = {name_of(pod): pod for pod in workloads.pods(APP)}
    figures.update(
        kills=KILLS,
        reasons=[runs[i].reason if i in runs else None for i in range(KILLS)],
        restart_delays_s=[d.delay_s for d in delays],
        expected_backoff_s=[d.expected_s for d in delays],
        delay_windows_s=[[d.low_s, d.high_s] for d in delays],
        backoff_source=backoff.source,
        runs=[
            {"started": run.started, "finished": run.finished, "reason": run.reason}
            for _, run in sorted(runs.items())
        ],
        not_ready_after_s=_lag(oom_wall, not_ready_wall),
        slice_out_after_not_ready_s=_lag(not_ready_wall, listed_out),
        last_failure_after_slice_out_s=_lag(listed_out, last_failed),
        serving_again_after_s=_lag(oom_wall, ready_wall),
        first_answer_after_slice_in_s=_lag(listed_in, first.start if first else None),
        requests=result.sent,
        failed=len(failed),
        failed_after_oom=sum(a.start >= oom_wall - skew for a in failed),
        answered_by=dict(result.by_pod()),
        other_gap_s=round(others.gap, 2),
        restart_count=_restarts(now[victim]) if victim in now else None,
        clock_skew_s=round(skew, 3),
    )

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    problem = traffic_proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    blind = recorder.gap_problems(["Pod", "Event", "EndpointSlice"], since=t_oom)
    assert not blind, (
        f"the recorder lost a watch while pod/{victim} crash-looped, so its runs and restarts "
        "are not all known: " + "; ".join(blind)
    )
    with claims.behaviour():
        killed = proofs.oom_problems(runs, KILLS)
        assert not killed, f"pod/{victim} after POST /oom: " + "; ".join(killed)
        staircase = proofs.staircase_problems(delays)
        assert not staircase, (
            f"pod/{victim}'s restarts against the crash-loop back-off ({backoff.source}: "
            f"{backoff.initial_s:g}s doubling, at most {backoff.max_s:g}s): " + "; ".join(staircase)
        )
        leaving = step_problems(
            [
                Step(
                    "POST /oom -> NotReady",
                    oom_wall,
                    not_ready_wall,
                    NOT_READY_BOUND_S,
                    proofs.KUBELET,
                ),
                Step(
                    "NotReady -> out of the EndpointSlice",
                    not_ready_wall,
                    listed_out,
                    SLICE_BOUND_S,
                    proofs.ENDPOINTSLICE_CONTROLLER,
                ),
                Step(
                    "out of the EndpointSlice -> the last failed request through the Service",
                    listed_out,
                    last_failed,
                    PROXY_BOUND_S + skew,
                    proofs.KUBE_PROXY,
                    needed=False,
                ),
            ]
        )
        assert not leaving, f"the OOMKilled pod/{victim} leaving service/{APP}: " + "; ".join(
            leaving
        )
        outside = proofs.failures_outside_problems(
            result.answers, oom_wall, routed_out, skew_s=skew
        )
        assert not outside, f"service/{APP}: " + "; ".join(outside) + f" ({result.describe()})"
        flapped = proofs.ready_between(history, not_ready_wall or oom_wall, ready_wall or 0.0)
        assert not flapped, (
            f"pod/{victim} was Ready during its crash loop (at +{flapped[0] - oom_wall:.1f}s): "
            f"{proofs.KUBELET} reported a container Ready that had not served"
        )
        assert not others.problems, (
            f"the other replica, pod/{other}, did not answer throughout: "
            + "; ".join(others.problems)
        )
        coming_back = step_problems(
            [
                Step(
                    "Ready again -> listed ready in the EndpointSlice",
                    ready_wall,
                    listed_in,
                    SLICE_BOUND_S,
                    proofs.ENDPOINTSLICE_CONTROLLER,
                ),
                Step(
                    "listed ready -> its first answer through the Service",
                    listed_in,
                    first.start if first else None,
                    JOIN_BOUND_S + skew,
                    proofs.KUBE_PROXY,
                ),
            ]
        )
        assert not coming_back, f"pod/{victim} coming back into service/{APP}: " + "; ".join(
            coming_back
        )
        assert victim in now, f"pod/{victim} is gone: the kubelet was to restart its container"
        assert _uid(now[victim]) == uid, (
            f"pod/{victim} is another pod now (uid {uid} -> {_uid(now[victim])}): the kubelet "
            "was to restart the container in place"
        )
        assert _restarts(now[victim]) == KILLS, (
            f"pod/{victim} restartCount {_restarts(now[victim])}, expected {KILLS} (one per OOM)"
        )

"""Readiness gating: a pod that reports not-ready is taken out of the Service while it keeps
running, and put back when it is ready again; it is never restarted (readiness is not liveness).

`healthcheck` fails only its readiness check (`/readyz` 503) after `POST /unready` and passes it
again after `POST /ready`; `/` (what the Service's traffic asks) and `/healthz` (its liveness
probe) answer 200 throughout. Both flips go to the pod through the API server's pod proxy, so
the Service under test carries only the measured traffic.

Under traffic through the Service, one of two replicas is flipped not-ready and, a few seconds
after it left, ready again. Its way out and back is a chain of steps, each the doing of one part
and each bounded: the flip -> NotReady (the kubelet's readiness probe), NotReady -> out of the
Service's EndpointSlice (the EndpointSlice controller), out of the slice -> its last answer
through the Service (kube-proxy); and back: the flip -> Ready, Ready -> listed ready again,
listed -> its first answer. While it is out (from NotReady plus the routing bound until it is
Ready again) no request reaches it and none fails; no request fails at all from the flip on (the
pod itself answers throughout); the other replica answers throughout; the flipped pod is the same
pod (same UID) with the same restartCount at the end, and the kubelet never reported its liveness
probe failing or killed its container.

Before any of it the scenario reads back what the cluster admitted (`suite.admitted`): the live
pods' readiness and liveness probes (on different paths, or the flip would restart the pod) and
no readiness gate, and the Service's type and affinity. The deadlines and the floor are computed
from the admitted readiness probe (`Timers.of_pod`), which equals the stated one once the
read-back passes. The bounds are judged from what the recorder watched (the pod's Ready
condition, the Service's EndpointSlices) and the answers' own times, against the prober's clock
skew measured each run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suite import admitted, claims, floors, timing, traffic_proofs
from suite.admitted import ABSENT
from suite.behaviours.readiness_gating import proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import (
    JSON,
    PODS,
    SERVICES,
    get_object,
    is_pod_ready,
    name_of,
    restart_count,
)
from suite.recorder import Recorder
from suite.traffic import Answer, BackgroundProbe, Prober, ProbeRequest, pod_request
from suite.waiting import Done, Pending, Verdict, WaitFailed
from suite.waits import pod_ready_verdict, wait_pod

APP = "healthcheck"
REPLICAS = 2
PORT = 8080
#: The probes of manifests/healthcheck (test_proofs.py beside this file holds the manifest to
#: them). Readiness acts on the first failure and the first success, every second; liveness is on
#: another path (/healthz), which the flip leaves passing.
READINESS = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1, "successThreshold": 1}
LIVENESS = {"periodSeconds": 1, "failureThreshold": 8, "timeoutSeconds": 1}


def _http_probe(path: str, settings: Mapping[str, int]) -> dict[str, Any]:
    return {**settings, "httpGet": {"path": path, "port": "http"}}


#: What every live pod must carry: the readiness probe the deadlines come from, a liveness probe
#: on another path (were it on /readyz, the flip would restart the pod and prove nothing about
#: readiness), and no readiness gate (one would hold Ready, and the endpoints with it, back).
POD_EXPECTED: dict[str, Any] = {
    "spec": {
        "readinessGates": ABSENT,
        "containers": [
            {
                "name": APP,
                "readinessProbe": _http_probe("/readyz", READINESS),
                "livenessProbe": _http_probe("/healthz", LIVENESS),
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
#: NotReady -> its EndpointSlice lists it as not ready, and Ready -> listed ready again: the
#: EndpointSlice controller (kube-controller-manager) acts on the pod update at once (no batching
#: by default; its 1 s minimum between two syncs of one Service does not bite here, the last
#: write was seconds before); a second for its queue and the write on a busy machine. As
#: self-healing's SLICE_BOUND_S.
SLICE_BOUND_S = 1.0
#: EndpointSlice changed -> the last answer from the pod that left, and -> the first answer from
#: the pod that came back: kube-proxy applies the change at its next sync and the rules take a
#: restore to load (suite.timing.PROXY_LAG_S, where the figure comes from).
PROXY_BOUND_S = timing.PROXY_LAG_S
#: NotReady -> routed around: the two bounds above, so a breach of this bound always breaches one
#: of them (and names its part).
ROUTING_BOUND_S = SLICE_BOUND_S + PROXY_BOUND_S
#: Listed ready again -> its first answer: the same sync and restore (coming back late costs no
#: request, the other replica answers meanwhile).
JOIN_BOUND_S = timing.PROXY_LAG_S
#: Once out of the slice, the traffic goes on for the routing bound and then this long before the
#: pod is flipped back: the window in which no request may reach it (a few seconds of about 40
#: requests a second). Kept well under a slow service proxy's sync interval (20 s in the
#: service-routing-late fault), so a late proxy is caught leaving or coming back.
OUT_WINDOW_S = 4.0
#: The waits for the slices to follow (the bounds above are judged from the recorded times after
#: the traffic stopped; these only stop a run whose slice never changes).
SLICE_WAIT_S = 15.0
#: "The other replica answers throughout": it never pauses longer than this (requests run back to
#: back, 2 at a time, every 50 ms: about 20 a second reach it while both are in, 40 while alone).
MAX_ANSWER_GAP_S = 2.0
#: Prober timestamps come from its node's clock, marks from this machine's: the skew is measured
#: each run (suite.traffic_proofs.clock_offset) and must stay within this.
MAX_CLOCK_SKEW_S = 0.5

#: Traffic through the Service the whole time, a new connection per request.
TRAFFIC = ProbeRequest(url="http://healthcheck/", concurrency=2, interval_ms=50, timeout_s=2.0)
#: Traffic stops at the end of its current chunk (one streamed POST /probe): short chunks end the
#: test soon after the pod answers again.
TRAFFIC_CHUNK_S = 3.0
TRAFFIC_BOUND_S = 180.0
WARMUP_ANSWERS = 10
AFTER_BACK_ANSWERS = 20
ANSWERS_DEADLINE_S = 30.0
#: Listed ready again -> how long the traffic waits for the pod's first answer: the proxy bound
#: and the skew, and 5 s more so that a late answer is measured, not just missed.
ANSWERING_AGAIN_WAIT_S = JOIN_BOUND_S + MAX_CLOCK_SKEW_S + 5.0
#: Both replicas listed and answering through the Service before traffic is measured: the
#: EndpointSlice update and a kube-proxy sync (at most once a second); 30 s covers a busy machine.
CONVERGE_S = 30.0
#: pytest-timeout backstop behind the deadlines above (suite/plugin.py): Ready (120 s, READY_S of
#: suite/fixtures.py), listed and converged, then everything happens while the traffic runs.
BACKSTOP_S = 120.0 + 2 * CONVERGE_S + TRAFFIC_BOUND_S + 60.0
#: kube-proxy's minSyncPeriod (its 1 s default): an EndpointSlice change reaches the rules no
#: sooner than that after the previous sync.
PROXY_SYNC_S = timing.PROXY_SYNC_S


def _get(probe: Mapping[str, Any], key: str) -> int:
    # The API's defaults, for a probe that does not state a field (the read-back already failed
    # on any field this scenario states and the pod does not carry).
    defaults = {
        "periodSeconds": 10,
        "failureThreshold": 3,
        "timeoutSeconds": 1,
        "successThreshold": 1,
    }
    return int(probe.get(key, defaults[key]))


@dataclass(frozen=True)
class Timers:
    """This scenario's deadlines and floor, from one pod's readiness probe: as stated above
    (`STATED`) for the numbers shown here, or as admitted (`of_pod`) for the ones a run uses."""

    readiness: Mapping[str, Any]

    @classmethod
    def of_pod(cls, pod: Mapping[str, Any]) -> Timers:
        """The readiness probe of the pod's `healthcheck` container, as the API returns it."""
        container = next(c for c in pod["spec"]["containers"] if c.get("name") == APP)
        return cls(dict(container.get("readinessProbe") or {}))

    @property
    def not_ready_deadline_s(self) -> float:
        """Flip -> NotReady: period x failureThreshold + one probe timeout + STATUS_MARGIN_S."""
        r = self.readiness
        return (
            _get(r, "periodSeconds") * _get(r, "failureThreshold")
            + _get(r, "timeoutSeconds")
            + STATUS_MARGIN_S
        )

    @property
    def ready_deadline_s(self) -> float:
        """Flip back -> Ready: period x successThreshold + one probe timeout + STATUS_MARGIN_S."""
        r = self.readiness
        return (
            _get(r, "periodSeconds") * _get(r, "successThreshold")
            + _get(r, "timeoutSeconds")
            + STATUS_MARGIN_S
        )

    def floor(self) -> Floor:
        """Physical floor (suite.floors): the waits no test code can shorten, from the probe.
        The out window is the claim's own (it is what "no answers while out" is judged on); pod
        start comes on top."""
        r = self.readiness
        period = _get(r, "periodSeconds")
        return Floor.of(
            ("healthcheck Ready (one readiness period)", period),
            (
                "NotReady: readiness fails failureThreshold times",
                period * _get(r, "failureThreshold"),
            ),
            ("out of the rules (one kube-proxy sync)", PROXY_SYNC_S),
            (
                "kept out under traffic: routing bound + window judged",
                ROUTING_BOUND_S + OUT_WINDOW_S,
            ),
            (
                "Ready: readiness passes successThreshold times",
                period * _get(r, "successThreshold"),
            ),
            ("back in the rules (one kube-proxy sync)", PROXY_SYNC_S),
        )


STATED = Timers(READINESS)
NOT_READY_DEADLINE_S = STATED.not_ready_deadline_s
READY_DEADLINE_S = STATED.ready_deadline_s
FLOOR = STATED.floor()


# -- reading back what was admitted ---------------------------------------------------------------


def admitted_problems(pods: list[JSON], service: Mapping[str, Any] | None = None) -> list[str]:
    """The live pods (and the Service) against what this scenario's bounds assume."""
    return admitted.workload_problems(pods, POD_EXPECTED, service, SERVICE_EXPECTED)


def _read_back(pods: list[JSON], service: Mapping[str, Any] | None = None) -> Timers:
    """Inside `claims.behaviour()`: fail with one line when the cluster changed what this
    scenario depends on; else the deadlines from the admitted probe."""
    found = admitted_problems(pods, service)
    what = f"the {APP} pods" + (" and service" if service is not None else "")
    assert not found, admitted.rewritten(found, what)
    return Timers.of_pod(pods[0])


# -- small helpers --------------------------------------------------------------------------------


def _not_ready(pod: JSON) -> Verdict:
    if not is_pod_ready(pod):
        return Done(pod)
    return Pending(f"still Ready, restartCount {restart_count(pod)}")


def _timeline(recorder: Recorder) -> list[tuple[float, dict[str, bool]]]:
    return traffic_proofs.endpoint_timeline(recorder.samples("EndpointSlice"), APP)


def _wait_listed(recorder: Recorder, wanted: Mapping[str, bool], since_t: float) -> float:
    """Wait until the Service's EndpointSlices (as the recorder watches them) list each pod as
    `wanted`; returns the wall time it was seen. A timeout names the EndpointSlice controller
    when the slices were watched throughout."""

    def listed() -> Verdict:
        problem = proofs.listing_problem(_timeline(recorder), wanted)
        return Done(time.time()) if problem is None else Pending(problem)

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
        raise _with_blame(error, proofs.listing_blame(wanted, watched=watched)) from error
    return seen


def _hold(traffic: BackgroundProbe, until: float, pod: str) -> None:
    """Let the traffic run while the pod is out, until a request started after wall `until`
    (on the prober's clock, which may be behind by the skew bound)."""

    def covered(answers: list[Answer]) -> Verdict:
        last = max((a.start for a in answers), default=0.0)
        if last >= until + MAX_CLOCK_SKEW_S:
            return Done()
        return Pending(f"last request started {until - last:.1f}s before the window's end")

    traffic.wait_for(
        covered,
        timeout_s=until - time.time() + ANSWERS_DEADLINE_S,
        what=f"traffic to service/{APP}",
        expected=f"requests through the Service while pod/{pod} is out",
    )


def _wait_answering_again(traffic: BackgroundProbe, pod: str, listed_wall: float) -> None:
    """Let the traffic run until the pod answered through the Service again (and enough answers
    came after it was listed), bounded; when it answered is judged after the traffic stopped."""

    def check(answers: list[Answer]) -> Verdict:
        after = sum(a.ok and a.start > listed_wall for a in answers)
        back = proofs.first_answer_from(answers, pod, listed_wall - MAX_CLOCK_SKEW_S)
        if back is not None and after >= AFTER_BACK_ANSWERS:
            return Done()
        return Pending(
            f"{after} answers after it was listed again, pod/{pod} answered: {bool(back)}"
        )

    with contextlib.suppress(WaitFailed):
        traffic.wait_for(
            check,
            timeout_s=ANSWERING_AGAIN_WAIT_S,
            what=f"traffic to service/{APP}",
            expected=f"pod/{pod} answering through the Service after it was listed ready again",
        )


def _restart_counts(cluster: Cluster, namespace: str, pods: list[str]) -> dict[str, int]:
    return {pod: restart_count(get_object(cluster.kube, PODS, namespace, pod)) for pod in pods}


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _with_blame(error: WaitFailed, blame: str) -> AssertionError:
    return AssertionError(f"{claims.message_of(error)}; {blame}")


def _lag(start: float | None, end: float | None) -> float | None:
    # + 0.0: no "-0.0" when two watches saw the changes in the same instant
    return round(end - start, 2) + 0.0 if start is not None and end is not None else None


# -- the scenario ---------------------------------------------------------------------------------


def test_unready_pod_leaves_the_service_and_returns_without_a_restart(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Flip one of two replicas not-ready under traffic: within stated bounds it turns NotReady,
    leaves the Service's EndpointSlice and stops answering through the Service, while the other
    replica answers and no request fails; flipped ready again, it is listed again and answers
    again within the same bounds; it is the same pod, never restarted."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    workloads.deploy(APP, replicas=REPLICAS)
    pods = workloads.pods(APP)
    service = get_object(cluster.kube, SERVICES, namespace, APP)
    with claims.behaviour():
        timers = _read_back(pods, service)
    figures[floors.FIGURE_KEY] = timers.floor().to_dict()
    flipped_pod, other_pod = pods
    flipped, other = name_of(flipped_pod), name_of(other_pod)
    before = {flipped: restart_count(flipped_pod), other: restart_count(other_pod)}
    uid = _uid(flipped_pod)

    t_deployed = recorder.mark("deployed")
    with claims.behaviour():
        # Ready pods belong in the Service: before any traffic, both are listed ready.
        _wait_listed(recorder, {flipped: True, other: True}, t_deployed)
    prober.converge(TRAFFIC.url, [flipped, other], timeout_s=CONVERGE_S)
    recorder.mark("Service converged")
    traffic = prober.background(
        TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S, label=APP
    )
    try:
        traffic.wait_answered(WARMUP_ANSWERS, what="before the flip", timeout_s=ANSWERS_DEADLINE_S)
        flip_wall = time.time()
        t_flip = recorder.mark("unready", pod=flipped)
        pod_request(cluster.kube, namespace, flipped, PORT, "unready")
        with claims.behaviour():
            try:
                wait_pod(
                    cluster.kube,
                    namespace,
                    flipped,
                    _not_ready,
                    timeout_s=timers.not_ready_deadline_s,
                    expected="NotReady: its readiness probe fails after POST /unready",
                )
            except WaitFailed as error:
                blame = proofs.not_ready_blame(recorder.events(), flipped)
                raise _with_blame(error, blame) from error
            recorder.mark("not ready", pod=flipped)
            out_seen = _wait_listed(recorder, {flipped: False, other: True}, t_flip)
            recorder.mark("out of the slice", pod=flipped)
        _hold(traffic, out_seen + ROUTING_BOUND_S + OUT_WINDOW_S, flipped)
        back_wall = time.time()
        t_back = recorder.mark("ready", pod=flipped)
        pod_request(cluster.kube, namespace, flipped, PORT, "ready")
        with claims.behaviour():
            wait_pod(
                cluster.kube,
                namespace,
                flipped,
                pod_ready_verdict,
                timeout_s=timers.ready_deadline_s,
                expected="Ready again: its readiness probe passes after POST /ready",
            )
            recorder.mark("ready again", pod=flipped)
            in_seen = _wait_listed(recorder, {flipped: True, other: True}, t_back)
            recorder.mark("back in the slice", pod=flipped)
        _wait_answering_again(traffic, flipped, in_seen)
    finally:
        result = traffic.stop()

    offset = traffic_proofs.clock_offset(result.answers, result.chunk_sent)
    skew = offset.bound if offset else MAX_CLOCK_SKEW_S
    history = recorder.pod_history(flipped)
    not_ready_wall, ready_wall = traffic_proofs.not_ready_interval(history, t_flip)
    listed_out, listed_in = traffic_proofs.listed_interval(_timeline(recorder), flipped, flip_wall)
    # Its last answer before it was flipped back (none may come later until it is listed again),
    # and its first after it was Ready again.
    last = proofs.last_answer_from(result.answers, flipped, flip_wall - skew, back_wall + skew)
    first = proofs.first_answer_from(result.answers, flipped, (ready_wall or back_wall) - skew)
    # Out: from NotReady plus the routing bound (and the skew) until it was Ready again.
    out_from = (not_ready_wall or flip_wall) + ROUTING_BOUND_S + skew
    out_until = (ready_wall or back_wall) - skew
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
    after = _restart_counts(cluster, namespace, [p for p in (flipped, other) if p in now])
    figures.update(
        not_ready_after_s=_lag(flip_wall, not_ready_wall),
        slice_out_after_not_ready_s=_lag(not_ready_wall, listed_out),
        last_answer_after_slice_out_s=_lag(listed_out, last.start if last else None),
        out_of_slice_after_s=_lag(flip_wall, listed_out),
        last_answer_after_s=_lag(flip_wall, last.start if last else None),
        ready_after_s=_lag(back_wall, ready_wall),
        slice_in_after_ready_s=_lag(ready_wall, listed_in),
        first_answer_after_slice_in_s=_lag(listed_in, first.start if first else None),
        first_answer_after_s=_lag(back_wall, first.start if first else None),
        not_ready_deadline_s=timers.not_ready_deadline_s,
        ready_deadline_s=timers.ready_deadline_s,
        slice_bound_s=SLICE_BOUND_S,
        proxy_bound_s=PROXY_BOUND_S,
        join_bound_s=JOIN_BOUND_S,
        out_s=round(out_until - out_from, 2),
        answers_while_out=sum(
            a.pod == flipped for a in traffic_proofs.in_window(result.answers, out_from, out_until)
        ),
        requests=result.sent,
        failed=len(result.failed),
        answered_by=dict(result.by_pod()),
        other_gap_s=round(others.gap, 2),
        restarts={pod: after.get(pod, 0) - count for pod, count in before.items()},
        clock_skew_s=round(skew, 3),
    )

    assert not result.errors, f"the traffic was interrupted: {result.errors[-1]}"
    problem = traffic_proofs.skew_problem(offset, MAX_CLOCK_SKEW_S)
    assert problem is None, problem
    blind = recorder.gap_problems(["Pod", "Event", "EndpointSlice"], since=t_flip)
    assert not blind, (
        f"the recorder lost a watch while pod/{flipped} was flipped, so when it left the "
        "Service and came back is not known: " + "; ".join(blind)
    )
    with claims.behaviour():
        leaving = proofs.step_problems(
            [
                proofs.Step(
                    "POST /unready -> NotReady",
                    flip_wall,
                    not_ready_wall,
                    timers.not_ready_deadline_s,
                    proofs.KUBELET,
                ),
                proofs.Step(
                    "NotReady -> out of the EndpointSlice",
                    not_ready_wall,
                    listed_out,
                    SLICE_BOUND_S,
                    proofs.ENDPOINTSLICE_CONTROLLER,
                ),
                proofs.Step(
                    "out of the EndpointSlice -> its last answer through the Service",
                    listed_out,
                    last.start if last else None,
                    PROXY_BOUND_S + skew,
                    proofs.KUBE_PROXY,
                    needed=False,
                ),
            ]
        )
        assert not leaving, f"pod/{flipped} leaving service/{APP}: " + "; ".join(leaving)
        out = proofs.out_of_service_problems(
            result.answers, flipped, out_from, out_until, listed_out=listed_out
        )
        assert not out, (
            f"service/{APP} did not keep NotReady pod/{flipped} out from {ROUTING_BOUND_S}s after "
            f"it turned NotReady until it was Ready again ({out_until - out_from:.1f}s): "
            + "; ".join(out)
            + f" ({result.describe()})"
        )
        assert not others.problems, (
            f"the other replica, pod/{other}, did not answer throughout: "
            + "; ".join(others.problems)
        )
        coming_back = proofs.step_problems(
            [
                proofs.Step(
                    "POST /ready -> Ready",
                    back_wall,
                    ready_wall,
                    timers.ready_deadline_s,
                    proofs.KUBELET,
                ),
                proofs.Step(
                    "Ready -> listed ready in the EndpointSlice",
                    ready_wall,
                    listed_in,
                    SLICE_BOUND_S,
                    proofs.ENDPOINTSLICE_CONTROLLER,
                ),
                proofs.Step(
                    "listed ready -> its first answer through the Service",
                    listed_in,
                    first.start if first else None,
                    JOIN_BOUND_S + skew,
                    proofs.KUBE_PROXY,
                ),
            ]
        )
        assert not coming_back, f"pod/{flipped} coming back into service/{APP}: " + "; ".join(
            coming_back
        )
        failed = proofs.failed_problem(result.answers, flip_wall - skew)
        assert failed is None, f"service/{APP}: {failed}"
        assert flipped in now, f"pod/{flipped} is gone: it was to keep running"
        assert _uid(now[flipped]) == uid, (
            f"pod/{flipped} is another pod now (uid {uid} -> {_uid(now[flipped])}): it was to "
            "keep running"
        )
        restarted = proofs.not_restarted_problems(before, after, recorder.events(), flipped)
        assert not restarted, "readiness is not liveness: " + "; ".join(restarted)

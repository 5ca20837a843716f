"""The scenarios' decision functions: pure, cluster-free, unit-tested one by one.

Each takes what was recorded (answers, recorder samples, events, pod views) and returns the
problems it found as sentences (an empty list: the claim holds). An observation window with
nothing in it is always a problem: no claim is ever proven by the absence of observations.

Times are epoch seconds (`wall`) unless a name says `t` (the recorder's clock).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from suite.traffic import Answer

# -- traffic -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How densely requests covered a window: count, rate and the longest stretch without one."""

    start: float
    end: float
    count: int
    gap: float
    gap_at: float
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Requests per second over the window (0 for an empty window)."""
        span = self.end - self.start
        return self.count / span if span > 0 else 0.0


def longest_gap(times: Iterable[float], start: float, end: float) -> tuple[float, float]:
    """The longest stretch of [start, end] with none of `times` in it: (length, where it began).
    An empty or inverted window has no stretch: (0, start)."""
    if end <= start:
        return 0.0, start
    inside = sorted(t for t in times if start <= t <= end)
    edges = [start, *inside, end]
    return max(((b - a, a) for a, b in itertools.pairwise(edges)), key=lambda gap: gap[0])


def coverage(
    starts: Iterable[float],
    start: float,
    end: float,
    *,
    max_gap_s: float,
    min_rate: float,
    what: str = "requests",
) -> Coverage:
    """Did requests (their start times) run through all of [start, end], never pausing longer than
    `max_gap_s`, at `min_rate` per second or more?"""
    times = [t for t in starts if start <= t <= end]
    gap, gap_at = longest_gap(times, start, end)
    problems = []
    if end <= start:
        problems.append(f"the window to cover is empty ({end - start:+.2f}s long)")
    elif not times:
        problems.append(f"no {what} started in the {end - start:.1f}s window")
    else:
        if gap > max_gap_s:
            problems.append(
                f"no {what} started for {gap:.2f}s from +{gap_at - start:.1f}s (at most "
                f"{max_gap_s}s allowed)"
            )
        rate = len(times) / (end - start)
        if rate < min_rate:
            problems.append(
                f"{len(times)} {what} in {end - start:.1f}s is {rate:.1f}/s (at least "
                f"{min_rate}/s expected)"
            )
    return Coverage(start, end, len(times), gap, gap_at, problems)


@dataclass(frozen=True)
class ClockOffset:
    """Bounds on (prober clock - runner clock), from when chunks were sent and answers received.

    A chunk's first request cannot start (prober clock) before the runner sent the chunk (runner
    clock), and an answer cannot be received before it ended: `lo <= offset <= hi`.
    """

    lo: float
    hi: float
    samples: int

    @property
    def bound(self) -> float:
        """The largest skew consistent with the observations (what windows must allow for)."""
        return max(abs(self.lo), abs(self.hi))


def clock_offset(answers: Sequence[Answer], chunk_sent: Mapping[int, float]) -> ClockOffset | None:
    """Measure the prober/runner clock offset; None without answers that carry both clocks."""
    received = [a for a in answers if a.received > 0]
    firsts: dict[int, float] = {}
    for answer in answers:
        firsts[answer.chunk] = min(answer.start, firsts.get(answer.chunk, answer.start))
    uppers = [first - chunk_sent[chunk] for chunk, first in firsts.items() if chunk in chunk_sent]
    if not received or not uppers:
        return None
    lo = max(a.end - a.received for a in received)
    return ClockOffset(lo=lo, hi=min(uppers), samples=len(received))


def skew_problem(offset: ClockOffset | None, max_s: float) -> str | None:
    """The skew must be measured, and bounded by `max_s`."""
    if offset is None:
        return "the clock skew between prober and runner could not be measured (no answers)"
    if offset.lo > offset.hi + 0.05:
        return (
            f"the clock observations contradict each other (offset >= {offset.lo:+.3f}s and "
            f"<= {offset.hi:+.3f}s): are answers buffered or reordered?"
        )
    if offset.bound > max_s:
        return (
            f"the prober's clock is off this machine's by up to {offset.bound:.2f}s "
            f"({offset.lo:+.3f}..{offset.hi:+.3f}s), more than the {max_s}s the windows allow"
        )
    return None


def in_window(answers: Iterable[Answer], start: float, end: float) -> list[Answer]:
    """Answers whose request started in [start, end]."""
    return [a for a in answers if start <= a.start <= end]


def not_ready_interval(
    history: Sequence[tuple[float, float, Any]], since_t: float
) -> tuple[float | None, float | None]:
    """(wall when the pod first turned NotReady at or after `since_t`, wall when it was next
    Ready), from the recorder's history of one pod; None for what was not seen."""
    start: float | None = None
    for t, wall, view in history:
        if t < since_t or view is None:
            continue
        if start is None and not view.ready:
            start = wall
        elif start is not None and view.ready:
            return start, wall
    return start, None


def routing_problems(
    answers: Sequence[Answer],
    sick: str,
    healthy: str,
    start: float,
    end: float,
    max_gap_s: float,
    *,
    failures_until: float | None = None,
) -> list[str]:
    """While `sick` is out of the Service ([start, end]): no request fails, none reaches `sick`,
    and `healthy` answers with no pause longer than `max_gap_s`. Failures are also counted up to
    `failures_until` (the pod may flap NotReady/Ready while its restart settles)."""
    if end <= start:
        return [f"the window in which the sick pod is out is empty ({end - start:+.2f}s)"]
    window = in_window(answers, start, end)
    if not window:
        return [f"no request started while the sick pod was out ({end - start:.1f}s)"]
    problems = []
    late = in_window(answers, end, failures_until) if failures_until is not None else []
    late_failed = [a for a in late if not a.ok and a.start > end]
    if late_failed:
        problems.append(
            f"{len(late_failed)} requests failed after the pod was first Ready again and before "
            f"it settled, first at +{late_failed[0].start - start:.1f}s"
        )
    reached = [a for a in window if a.pod == sick]
    if reached:
        problems.append(
            f"{len(reached)} requests still reached the NotReady pod {sick}, the last at "
            f"+{reached[-1].start - start:.1f}s into the window: the Service kept routing to it"
        )
    failed = [a for a in window if not a.ok]
    if failed:
        kinds = Counter(a.error or f"HTTP {a.status}" for a in failed)
        problems.append(
            f"{len(failed)} of {len(window)} requests failed, first at "
            f"+{failed[0].start - start:.1f}s: {dict(kinds.most_common(3))}"
        )
    gap, gap_at = longest_gap([a.start for a in window if a.ok and a.pod == healthy], start, end)
    if gap > max_gap_s:
        problems.append(
            f"the healthy replica {healthy} answered nothing for {gap:.1f}s from "
            f"+{gap_at - start:.1f}s (at most {max_gap_s}s allowed)"
        )
    return problems


# -- pods and events -----------------------------------------------------------------------------


def events_for(events: Iterable[Mapping[str, Any]], obj: str) -> list[Mapping[str, Any]]:
    """Recorded events about `obj` (`kind/name`, e.g. `pod/x`)."""
    return [event for event in events if event.get("object") == obj]


def liveness_restart_problem(events: Iterable[Mapping[str, Any]], pod: str) -> str | None:
    """The kubelet says it restarted `pod` because its liveness probe failed."""
    mine = events_for(events, f"pod/{pod}")
    unhealthy = [
        e for e in mine if e.get("reason") == "Unhealthy" and "Liveness" in str(e.get("message"))
    ]
    killing = [
        e for e in mine if e.get("reason") == "Killing" and "liveness" in str(e.get("message"))
    ]
    if unhealthy and killing:
        return None
    seen = "; ".join(f"{e.get('reason')}: {e.get('message')}" for e in mine[-5:]) or "none"
    return (
        f"no event says pod/{pod} was restarted for a failed liveness probe (expected Unhealthy "
        f"'Liveness probe failed' and Killing '... failed liveness probe'); its events: {seen}"
    )


def created_by_problem(events: Iterable[Mapping[str, Any]], owner: str, pod: str) -> str | None:
    """`owner` (e.g. `replicaset/x`) reported creating `pod` (its SuccessfulCreate event)."""
    mine = events_for(events, owner)
    if any(e.get("reason") == "SuccessfulCreate" and pod in str(e.get("message")) for e in mine):
        return None
    seen = "; ".join(f"{e.get('reason')}: {e.get('message')}" for e in mine[-5:]) or "none"
    return f"no SuccessfulCreate event of {owner} names {pod}; its events: {seen}"


def restart_count_problems(
    before: Mapping[str, int], after: Mapping[str, int], restarted: str
) -> list[str]:
    """Exactly one restart of `restarted`, none of any other pod in `before`."""
    problems = []
    for pod, count in sorted(before.items()):
        expected = count + 1 if pod == restarted else count
        now = after.get(pod)
        if now is None:
            problems.append(f"pod/{pod} is gone (restartCount unknown)")
        elif now != expected:
            problems.append(f"pod/{pod} restartCount {count} -> {now}, expected {expected}")
    if restarted not in before:
        problems.append(f"pod/{restarted} was not known before the fault")
    return problems


# -- self-healing: the Service's endpoints, the answers, and which part the evidence points at ----
#
# A sentence below names a part (the kubelet, the EndpointSlice controller, kube-proxy) only when
# what was recorded points at it: the fault matrix counts a catch by the part the message names.

#: The kubelet's own words in its probe events (reason Unhealthy / Killing).
_LIVENESS_FAILED = "Liveness probe failed"
_READINESS_FAILED = "Readiness probe failed"


def endpoint_timeline(
    samples: Iterable[Mapping[str, Any]], service: str
) -> list[tuple[float, dict[str, bool]]]:
    """(wall, pod name -> ready) after each recorded change of `service`'s EndpointSlices, from
    the recorder's EndpointSlice samples in the order recorded: a pod is ready when any slice
    lists it ready."""
    current: dict[str, list[Any]] = {}
    timeline: list[tuple[float, dict[str, bool]]] = []
    for sample in samples:
        name = str(sample.get("name"))
        if sample.get("deleted"):
            if current.pop(name, None) is None:
                continue
        elif sample.get("service") != service:
            continue
        else:
            current[name] = list(sample.get("endpoints") or [])
        ready: dict[str, bool] = {}
        for endpoints in current.values():
            for endpoint in endpoints:
                pod = str(endpoint.get("pod") or "")
                if pod:
                    ready[pod] = ready.get(pod, False) or bool(endpoint.get("ready"))
        timeline.append((float(sample["wall"]), ready))
    return timeline


def listed_interval(
    timeline: Sequence[tuple[float, Mapping[str, bool]]], pod: str, since: float
) -> tuple[float | None, float | None]:
    """(wall when the EndpointSlices stopped listing `pod` as ready, at or after `since`; wall
    when they next listed it as ready again) from an `endpoint_timeline`; None for what was not
    seen. Not listed at all counts as not ready."""
    out: float | None = None
    in_effect: bool | None = None
    for wall, ready in timeline:
        listed = bool(ready.get(pod))
        if wall < since:
            in_effect = listed
            continue
        if out is None and in_effect is False:
            out = since
        if out is None and not listed:
            out = wall
        elif out is not None and listed:
            return out, wall
        in_effect = listed
    if out is None and in_effect is False:
        out = since
    return out, None


def answer_gaps(
    answers: Sequence[Answer], pods: Iterable[str], start: float, end: float
) -> dict[str, tuple[float, float]]:
    """Per pod: the longest stretch of [start, end] between two of its answered requests (their
    starts), as (length, where it began). For an infected pod that is its time out of service:
    from its last answer before it went out to its first answer after it came back."""
    return {
        pod: longest_gap([a.start for a in answers if a.ok and a.pod == pod], start, end)
        for pod in pods
    }


def first_answer_from(answers: Iterable[Answer], pod: str, since: float) -> Answer | None:
    """The first answered request served by `pod` that started at or after `since`."""
    return min(
        (a for a in answers if a.ok and a.pod == pod and a.start >= since),
        key=lambda a: a.start,
        default=None,
    )


def answering_again_problem(
    back: Answer | None,
    pod: str,
    *,
    ready: float,
    last_start: float,
    bound_s: float,
    skew_s: float,
) -> str | None:
    """The recovered `pod`, Ready again at `ready`, answered (its first answer `back`) within
    `bound_s`; `last_start` is when the last request of the traffic started."""
    if back is None:
        return (
            f"pod/{pod} was Ready again but no request through the Service reached it in the "
            f"{max(0.0, last_start - ready):.1f}s that followed (bound {bound_s}s)"
        )
    if back.start - skew_s > ready + bound_s:
        return (
            f"pod/{pod} was Ready again but answered through the Service only "
            f"{back.start - ready:.1f}s later (bound {bound_s}s)"
        )
    return None


def _probe_events(events: Iterable[Mapping[str, Any]], pod: str, words: str) -> list[Any]:
    return [
        e
        for e in events_for(events, f"pod/{pod}")
        if e.get("reason") == "Unhealthy" and words in str(e.get("message"))
    ]


def not_ready_blame(events: Iterable[Mapping[str, Any]], pod: str) -> str:
    """Why an infected pod was not seen NotReady, as far as the kubelet's events tell."""
    events = list(events)
    failed = _probe_events(events, pod, _READINESS_FAILED)
    if not failed:
        return (
            f"the kubelet reported no failed readiness probe for pod/{pod} (no Unhealthy "
            f"'{_READINESS_FAILED}' event): it did not probe it, or the probe did not fail"
        )
    return (
        f"the kubelet reported {len(failed)} failed readiness probe(s) of pod/{pod} but its Ready "
        "condition did not turn False"
    )


def restart_blame(events: Iterable[Mapping[str, Any]], pod: str) -> str:
    """Why an infected pod's restart did not come, as far as the kubelet's events tell."""
    events = list(events)
    failed = _probe_events(events, pod, _LIVENESS_FAILED)
    killing = [
        e
        for e in events_for(events, f"pod/{pod}")
        if e.get("reason") == "Killing" and "liveness" in str(e.get("message"))
    ]
    if not failed:
        return (
            f"the kubelet reported no failed liveness probe for pod/{pod} (no Unhealthy "
            f"'{_LIVENESS_FAILED}' event): it did not probe it, or the probe did not fail"
        )
    if not killing:
        return (
            f"the kubelet reported {len(failed)} failed liveness probe(s) of pod/{pod} but did not "
            "kill the container for it (no Killing event)"
        )
    return (
        f"the kubelet killed the container of pod/{pod} for its liveness probe "
        f"({killing[-1].get('message')}) but no new container was reported started"
    )


def routing_blame(
    answers: Sequence[Answer],
    sick: str,
    not_ready: float | None,
    listed_out: float | None,
    *,
    watched: bool,
    start: float,
    end: float,
    slice_bound_s: float,
    proxy_bound_s: float,
    skew_s: float,
) -> list[str]:
    """Which part kept the Service routing to the NotReady `sick` pod in [start, end], from when
    its EndpointSlice stopped listing it as ready (`listed_out`): the EndpointSlice controller
    when that took longer than `slice_bound_s` after the pod turned NotReady, the service proxy
    when requests still reached the pod (or failed unanswered) more than `proxy_bound_s` after.
    No part is named without the EndpointSlices watched throughout."""
    if not watched:
        return [
            "the watch of the Service's EndpointSlices was lost or never listed, so which part "
            "lagged is not known"
        ]
    blame = []
    if listed_out is None:
        return [
            f"the Service's EndpointSlices listed pod/{sick} as ready the whole time it was "
            "NotReady: the EndpointSlice controller (kube-controller-manager) did not take it out"
        ]
    if not_ready is not None and listed_out - not_ready > slice_bound_s:
        blame.append(
            f"the EndpointSlice controller (kube-controller-manager) listed pod/{sick} as not "
            f"ready only {listed_out - not_ready:.1f}s after it turned NotReady (bound "
            f"{slice_bound_s}s)"
        )
    after = listed_out + proxy_bound_s + skew_s
    window = [a for a in in_window(answers, start, end) if a.start > after]
    reached = [a for a in window if a.pod == sick]
    unanswered = [a for a in window if not a.ok and a.pod is None]
    if reached:
        blame.append(
            f"{len(reached)} requests through the Service reached pod/{sick} after its "
            "EndpointSlice listed it as not ready, the last "
            f"{reached[-1].start - listed_out:.1f}s after (bound {proxy_bound_s}s): the node's "
            "service proxy (kube-proxy) kept routing to it"
        )
    elif unanswered:
        blame.append(
            f"{len(unanswered)} requests through the Service went unanswered after its "
            f"EndpointSlice listed pod/{sick} as not ready: the node's service proxy (kube-proxy) "
            "or the pod network did not deliver them to the ready pod"
        )
    return blame


def back_in_service_blame(
    sick: str,
    ready: float,
    listed_back: float | None,
    *,
    watched: bool,
    slice_bound_s: float,
) -> str:
    """Why no request through the Service reached `sick` after it was Ready again (at `ready`),
    from when its EndpointSlice listed it as ready again (`listed_back`)."""
    if not watched:
        return (
            "the watch of the Service's EndpointSlices was lost or never listed, so which part "
            "lagged is not known"
        )
    if listed_back is None:
        return (
            f"the Service's EndpointSlices did not list pod/{sick} as ready again: the "
            "EndpointSlice controller (kube-controller-manager) did not add it back"
        )
    if listed_back - ready > slice_bound_s:
        return (
            f"the EndpointSlice controller (kube-controller-manager) listed pod/{sick} as ready "
            f"again only {listed_back - ready:.1f}s after it was Ready (bound {slice_bound_s}s)"
        )
    return (
        f"its EndpointSlice listed pod/{sick} as ready again {max(0.0, listed_back - ready):.1f}s "
        "after it was Ready, yet requests through the Service did not reach it in time: the "
        "node's service proxy (kube-proxy) did not route to it"
    )


def exit_restart_blame(view: Any, container: str, before: int) -> str:
    """Why a killed process's container was not restarted, from the pod as last recorded (a
    `suite.recorder.PodView`, or None when none was)."""
    state = next((c for c in getattr(view, "containers", ()) if c.name == container), None)
    if state is None:
        return f"the container {container} was not seen in the recorded pod"
    if state.state == "running" and state.restart_count <= before:
        return (
            f"its container {container} is still reported running (restartCount "
            f"{state.restart_count}): the process did not exit, or the kubelet did not notice"
        )
    return (
        f"the kubelet reports its container {container} {state.state}"
        + (f" ({state.reason})" if state.reason else "")
        + (f" with exit code {state.exit_code}" if state.exit_code is not None else "")
        + f", restartCount {state.restart_count}: it did not start it again"
    )


# -- autoscaling ---------------------------------------------------------------------------------


def baseline_problem(
    deployment: Mapping[str, Any] | None, hpa: Mapping[str, Any] | None, minimum: int
) -> str | None:
    """Before the load: the Deployment has `minimum` ready replicas and the HPA agrees."""
    if deployment is None or hpa is None:
        return "no Deployment or HPA sample was recorded before the load"
    ready, spec = deployment.get("ready"), deployment.get("spec_replicas")
    current = hpa.get("current_replicas")
    if ready == spec == minimum and current in (minimum, 0):
        return None
    return (
        f"before the load: {ready} ready of {spec} replicas, HPA current {current}; expected "
        f"{minimum} (the baseline a scale-out is measured from)"
    )


@dataclass(frozen=True)
class ScaleOut:
    """When the HPA first asked for more replicas, and the reading that made it."""

    t_above: float | None
    t_desired: float | None
    problems: list[str]


def scale_out_evidence(
    samples: Sequence[Mapping[str, Any]], since_t: float, target: int, minimum: int
) -> ScaleOut:
    """Since the load began: a CPU reading above `target` came no later than the first sample
    asking for more than `minimum` replicas."""
    after = [s for s in samples if s.get("t", 0.0) >= since_t and not s.get("deleted")]
    desired = next((s for s in after if (s.get("desired_replicas") or 0) > minimum), None)
    above = next((s for s in after if (s.get("cpu_utilization") or 0) > target), None)
    problems = []
    if desired is None:
        problems.append(f"no HPA status since the load asked for more than {minimum} replica(s)")
    if above is None:
        readings = [s.get("cpu_utilization") for s in after]
        problems.append(f"no HPA reading above the {target}% target since the load: {readings}")
    if desired is not None and above is not None and above["t"] > desired["t"]:
        problems.append(
            f"the HPA asked for {desired['desired_replicas']} replicas at t={desired['t']:.1f}s "
            f"before any reading above target (first at t={above['t']:.1f}s)"
        )
    return ScaleOut(above["t"] if above else None, desired["t"] if desired else None, problems)


def rescale_event_problem(
    events: Iterable[Mapping[str, Any]], hpa: str, since_t: float
) -> str | None:
    """The HPA's SuccessfulRescale event since `since_t` names CPU as the reason."""
    mine = [
        e
        for e in events_for(events, f"horizontalpodautoscaler/{hpa}")
        if e.get("t", 0.0) >= since_t
    ]
    if any(
        e.get("reason") == "SuccessfulRescale" and "cpu" in str(e.get("message")).lower()
        for e in mine
    ):
        return None
    seen = "; ".join(f"{e.get('reason')}: {e.get('message')}" for e in mine[-3:]) or "none"
    return f"no SuccessfulRescale event of hpa/{hpa} citing CPU since the load; its events: {seen}"


def first_t(
    samples: Iterable[Mapping[str, Any]], since_t: float, key: str, predicate: Any
) -> float | None:
    """`t` of the first sample since `since_t` whose `key` satisfies `predicate`."""
    for sample in samples:
        fresh = sample.get("t", 0.0) >= since_t and not sample.get("deleted")
        if fresh and predicate(sample.get(key)):
            return float(sample["t"])
    return None


# -- autoscaling: the HPA's decisions, checked against its formula and its stored behaviour -------
#
# The HorizontalPodAutoscaler controller (kubernetes v1.34, pkg/controller/podautoscaler:
# replica_calculator.go GetResourceReplicas, horizontal.go reconcileAutoscaler and
# normalizeDesiredReplicasWithBehaviors) decides at every sync:
#
# 1. the raw recommendation from the reading: ratio = U / target, U being the average utilization
#    of the pods it counts as ready (the integer it writes to status.currentMetrics). Within
#    tolerance (1 - down <= ratio <= 1 + up, 0.1 each by default) it keeps the current count,
#    else ceil(ratio x ready pods). Pods without a reading are counted at 100 % of their request
#    on a scale-down and at 0 % on a scale-up, unready pods at 0 % on a scale-up, and a result
#    that would turn the direction round keeps the current count;
# 2. stabilization: the highest recommendation inside the scale-down window and the lowest inside
#    the scale-up window bound the change;
# 3. the rate policies: from the count at the start of each policy's period, `Pods` adds or
#    removes that many, `Percent` that share (rounded up on a scale-up, down on a scale-down);
#    selectPolicy Max takes the larger change, Min the smaller, Disabled none;
# 4. minReplicas..maxReplicas.
#
# The recorder sees the status writes, not each sync, so every check takes the widest range the
# upstream algorithm allows: how many pods were counted as ready is not in the status (any number
# from 1 to currentReplicas; exactly 1 when currentReplicas is 1), and whether a reading or a
# scale event fell inside a window or a period is known only to the sync period plus a slack.

#: kube-controller-manager --horizontal-pod-autoscaler-tolerance default; a tolerance stored in
#: the HPA's behaviour (HPAConfigurableTolerance) wins, as in horizontal.go tolerancesForHpa.
HPA_TOLERANCE = 0.1
#: The controller's scale-down stabilization when the stored behaviour leaves it unset
#: (--horizontal-pod-autoscaler-downscale-stabilization default).
HPA_DOWNSCALE_WINDOW_S = 300.0
#: Whose decisions these are: named when the recorded status shows the controller acted (or
#: never did).
HPA_CONTROLLER = "the HorizontalPodAutoscaler controller (kube-controller-manager)"
METRICS_API = "the resource metrics API (metrics-server)"


@dataclass(frozen=True)
class ScalingPolicy:
    """One rate policy of a direction (autoscaling/v2 HPAScalingPolicy)."""

    kind: str  # Pods | Percent
    value: int
    period_s: float


@dataclass(frozen=True)
class ScalingRules:
    """One direction of an HPA's behaviour as stored (upstream defaults for unset fields)."""

    window_s: float
    select: str  # Max | Min | Disabled
    policies: tuple[ScalingPolicy, ...]
    tolerance: float

    def describe(self) -> str:
        """`window 10s, Max of [Percent 100/15s], tolerance 0.1` for figures and messages."""
        policies = ", ".join(f"{p.kind} {p.value}/{p.period_s:g}s" for p in self.policies)
        return (
            f"window {self.window_s:g}s, {self.select} of [{policies}], "
            f"tolerance {self.tolerance:g}"
        )


@dataclass(frozen=True)
class HpaRules:
    """What the HPA as stored lets its controller do: the bounds every decision is checked on."""

    minimum: int
    maximum: int
    target: int  # CPU averageUtilization: % of the pods' request
    up: ScalingRules
    down: ScalingRules

    def describe(self) -> str:
        """One line for figures and messages."""
        return (
            f"{self.minimum}..{self.maximum} replicas at {self.target}% CPU; scale-up "
            f"{self.up.describe()}; scale-down {self.down.describe()}"
        )


_DEFAULT_UP = (ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0))
_DEFAULT_DOWN = (ScalingPolicy("Percent", 100, 15.0),)


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a number: 0.1, "0.1", "100m" (-> 0.1)."""
    text = str(value).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return float(text)


def _scaling_rules(stored: Mapping[str, Any] | None, *, up: bool, tolerance: float) -> ScalingRules:
    stored = stored or {}
    window = 0.0 if up else HPA_DOWNSCALE_WINDOW_S
    policies: tuple[ScalingPolicy, ...] = _DEFAULT_UP if up else _DEFAULT_DOWN
    if stored.get("stabilizationWindowSeconds") is not None:
        window = float(stored["stabilizationWindowSeconds"])
    if stored.get("policies") is not None:
        policies = tuple(
            ScalingPolicy(
                str(policy.get("type")),
                int(policy.get("value") or 0),
                float(policy.get("periodSeconds") or 0),
            )
            for policy in stored["policies"]
        )
    own = stored.get("tolerance")
    return ScalingRules(
        window_s=window,
        select=str(stored.get("selectPolicy") or "Max"),
        policies=policies,
        tolerance=quantity(own) if own is not None else tolerance,
    )


def hpa_rules(hpa: Mapping[str, Any], *, tolerance: float = HPA_TOLERANCE) -> HpaRules:
    """The rules of an autoscaling/v2 HorizontalPodAutoscaler as stored: its CPU utilization
    target, min..max and behaviour (unset fields as upstream defaults them). ValueError when it
    has no CPU utilization target."""
    spec = hpa.get("spec") or {}
    target = None
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target = (resource.get("target") or {}).get("averageUtilization")
    if not target:
        name = (hpa.get("metadata") or {}).get("name")
        raise ValueError(f"hpa/{name} has no CPU averageUtilization target")
    behavior = spec.get("behavior") or {}
    return HpaRules(
        minimum=int(spec.get("minReplicas") or 1),
        maximum=int(spec.get("maxReplicas") or 0),
        target=int(target),
        up=_scaling_rules(behavior.get("scaleUp"), up=True, tolerance=tolerance),
        down=_scaling_rules(behavior.get("scaleDown"), up=False, tolerance=tolerance),
    )


def recommendation_range(
    cpu: int, current: int, target: int, up_tolerance: float, down_tolerance: float
) -> tuple[int, int]:
    """The lowest and highest raw recommendation GetResourceReplicas can return for a status
    reading of `cpu` % with `current` replicas, whatever number of pods it counted as ready and
    however many had no reading yet:

    - within tolerance: `current`;
    - `current` 1: exactly ceil(ratio) (the one pod is the one that was read);
    - above target: from min(`current`, ceil(ratio)) (unready pods at 0 % keep the count; a
      lone ready pod gives ceil(ratio)) to ceil(ratio x `current`), or to
      ceil((cpu + 1) / target x (`current` - 1)) when a pod without a reading hides the fraction
      the status truncates;
    - below target: from ceil(ratio) (one pod counted) to `current` (pods without a reading
      counted at 100 % keep it).

    The ratio is computed as upstream does (float division, then times the count, then ceil), so
    a reading on the tolerance's edge falls on the same side.
    """
    ratio = cpu / target
    if (1.0 - down_tolerance) <= ratio <= (1.0 + up_tolerance):
        return current, current
    if current <= 1:
        exact = math.ceil(ratio * 1)
        return exact, exact
    if ratio > 1.0:
        high = max(math.ceil(ratio * current), math.ceil((cpu + 1) / target * (current - 1)))
        return min(current, math.ceil(ratio)), max(current, high)
    return math.ceil(ratio), current


def status_written(sample: Mapping[str, Any] | None) -> bool:
    """Whether a controller ever wrote this HPA sample's status: conditions, a scale time, an
    observed generation or a replica count."""
    if not sample or sample.get("deleted"):
        return False
    return bool(
        sample.get("conditions")
        or sample.get("last_scale_time")
        or sample.get("observed_generation")
        or sample.get("current_replicas")
    )


@dataclass(frozen=True)
class Rescale:
    """One decision of the HPA controller the recorder saw, and the range it was checked on."""

    t: float
    current: int
    desired: int
    cpu: int | None
    low: int
    high: int
    basis: str

    @property
    def ok(self) -> bool:
        """The decision lies within what the formula and the stored behaviour allow."""
        return self.low <= self.desired <= self.high

    def describe(self) -> str:
        """`1 -> 4 at t=32.5s on 185% CPU (allowed 4..4)` for the figures."""
        return (
            f"{self.current} -> {self.desired} at t={self.t:.1f}s on {self.cpu}% CPU "
            f"(allowed {self.low}..{self.high})"
        )


def _replicas(sample: Mapping[str, Any]) -> tuple[int, int]:
    return int(sample.get("current_replicas") or 0), int(sample.get("desired_replicas") or 0)


def rescale_indexes(samples: Sequence[Mapping[str, Any]]) -> list[int]:
    """Where the HPA controller rescaled among its status samples: a rescale sets a new
    lastScaleTime, and only then does the controller write a desiredReplicas apart from
    currentReplicas (horizontal.go setStatus). A write that keeps a stale desired count after a
    failed sync (no metrics yet: desired 0) sets no new lastScaleTime and is no decision."""
    found: list[int] = []
    last_scaled: Any = None
    for index, sample in enumerate(samples):
        if not status_written(sample):
            continue
        current, desired = _replicas(sample)
        scaled = sample.get("last_scale_time")
        if current > 0 and desired != current and scaled and scaled != last_scaled:
            found.append(index)
        last_scaled = scaled
    return found


def _period_start(
    current: int, events: Sequence[tuple[float, int]], t: float, period_s: float, slack_s: float
) -> tuple[int, int]:
    """(lowest, highest) count at the start of a policy's period (current - added + removed):
    `events` are the earlier rescales (t, change); one within `slack_s` of the period's start
    may have been inside it or not."""

    def total(sign: int, cutoff: float) -> int:
        return sum(abs(change) for when, change in events if change * sign > 0 and when > cutoff)

    inside, maybe = t - period_s + slack_s, t - period_s - slack_s
    return (
        current - total(1, maybe) + total(-1, inside),
        current - total(1, inside) + total(-1, maybe),
    )


def rate_limit(
    rules: ScalingRules,
    current: int,
    events: Sequence[tuple[float, int]],
    t: float,
    slack_s: float,
    *,
    up: bool,
) -> tuple[int, int]:
    """(lowest, highest) limit the rate policies set on a change from `current` at `t`: the most
    replicas a scale-up may reach (never below `current`), or the fewest a scale-down must keep
    (never above `current`); horizontal.go calculateScaleUpLimitWithScalingRules and
    calculateScaleDownLimitWithBehaviors."""
    if rules.select == "Disabled" or not rules.policies:
        return current, current
    lows, highs = [], []
    for policy in rules.policies:
        bounds = []
        for start in _period_start(current, events, t, policy.period_s, slack_s):
            if policy.kind == "Pods":
                bounds.append(start + policy.value if up else start - policy.value)
            elif up:
                bounds.append(math.ceil(start * (1 + policy.value / 100)))
            else:
                bounds.append(int(start * (1 - policy.value / 100)))
        lows.append(bounds[0])
        highs.append(bounds[1])
    # Max: the larger change (up: the highest limit; down: the lowest); Min: the smaller.
    pick = max if (rules.select == "Max") == up else min
    low, high = pick(lows), pick(highs)
    if up:
        return max(low, current), max(high, current)
    return min(low, current), min(high, current)


def check_rescale(
    samples: Sequence[Mapping[str, Any]],
    index: int,
    rules: HpaRules,
    *,
    sync_s: float,
    slack_s: float,
) -> Rescale:
    """The range the rescale decision `samples[index]` (HPA status samples in time order) had
    to fall in: the raw recommendation of its reading (`recommendation_range`), stabilized by
    the recommendations of the earlier readings inside each window, limited by the rate policies
    (the earlier rescales inside each period) and by min..max.

    A reading holds from its write to the next (the controller writes only a changed status);
    the last sync that used it came at most `sync_s` before the next write. It is surely inside
    a window when that last use, less `slack_s` (watch latency, clocks), is after the window's
    start; possibly inside when the next write, plus `slack_s`, is. The lowest bound counts only
    what is surely inside a scale-down window and whatever may be inside a scale-up window; the
    highest bound the other way round."""
    decision = samples[index]
    t = float(decision["t"])
    current, desired = _replicas(decision)
    cpu = decision.get("cpu_utilization")
    if current > rules.maximum or current < rules.minimum:
        # reconcileAutoscaler: a count outside min..max goes straight to the nearer bound.
        bound = rules.maximum if current > rules.maximum else rules.minimum
        return Rescale(t, current, desired, cpu, bound, bound, f"{current} outside min..max")
    if cpu is None:
        return Rescale(t, current, desired, None, current, current, "no CPU reading in that status")
    tolerances = (rules.up.tolerance, rules.down.tolerance)
    low0, high0 = recommendation_range(int(cpu), current, rules.target, *tolerances)
    up_low, up_high, down_low, down_high = low0, high0, low0, high0
    for before in range(index):
        sample = samples[before]
        reading, then = sample.get("cpu_utilization"), int(sample.get("current_replicas") or 0)
        if not status_written(sample) or reading is None or then <= 0:
            continue
        start, end = float(sample["t"]), float(samples[before + 1]["t"])
        low, high = recommendation_range(int(reading), then, rules.target, *tolerances)
        last_use = max(start, end - sync_s)
        if rules.up.window_s > 0:
            if last_use - slack_s > t - rules.up.window_s:
                up_high = min(up_high, high)
            if end + slack_s > t - rules.up.window_s:
                up_low = min(up_low, low)
        if rules.down.window_s > 0:
            if last_use - slack_s > t - rules.down.window_s:
                down_low = max(down_low, low)
            if end + slack_s > t - rules.down.window_s:
                down_high = max(down_high, high)
    stable_low = min(max(current, up_low), down_low)
    stable_high = min(max(current, up_high), down_high)
    events = []
    for earlier in rescale_indexes(samples[:index]):
        was, wanted = _replicas(samples[earlier])
        events.append((float(samples[earlier]["t"]), wanted - was))
    up_limit = rate_limit(rules.up, current, events, t, slack_s, up=True)
    down_limit = rate_limit(rules.down, current, events, t, slack_s, up=False)

    def limited(stable: int, up_to: int, down_to: int) -> int:
        if stable > current:
            return min(stable, rules.maximum, up_to)
        if stable < current:
            return max(stable, rules.minimum, down_to)
        return current

    basis = (
        f"reading {cpu}% against {rules.target}% with {current} replica(s): formula "
        f"{low0}..{high0}, stabilized {stable_low}..{stable_high}, rate limits up to "
        f"{up_limit[1]} and down to {down_limit[0]}, min {rules.minimum} max {rules.maximum}"
    )
    return Rescale(
        t,
        current,
        desired,
        int(cpu),
        limited(stable_low, up_limit[0], down_limit[0]),
        limited(stable_high, up_limit[1], down_limit[1]),
        basis,
    )


def rescale_problems(
    samples: Sequence[Mapping[str, Any]],
    rules: HpaRules,
    *,
    sync_s: float,
    slack_s: float,
) -> tuple[list[Rescale], list[str]]:
    """Every rescale the recorder saw in an HPA's samples, checked (`check_rescale`): the
    decisions, and one sentence per decision outside its range."""
    live = [sample for sample in samples if not sample.get("deleted")]
    decisions = [
        check_rescale(live, index, rules, sync_s=sync_s, slack_s=slack_s)
        for index in rescale_indexes(live)
    ]
    problems = [
        f"{HPA_CONTROLLER} rescaled {d.current} -> {d.desired} at t={d.t:.1f}s, outside the "
        f"{d.low}..{d.high} its formula (ceil(replicas x usage / target), tolerance "
        f"{rules.up.tolerance:g}) and the stored behaviour allow ({d.basis})"
        for d in decisions
        if not d.ok
    ]
    return decisions, problems


def replica_bound_problems(
    hpa_samples: Iterable[Mapping[str, Any]],
    deployment_samples: Iterable[Mapping[str, Any]],
    pod_counts: Iterable[tuple[float, int]],
    rules: HpaRules,
) -> list[str]:
    """Replicas stayed within the stored min..max the whole time: what the HPA asked for and
    counted, the Deployment's spec and status, and the pods that were not terminating."""
    low, high = rules.minimum, rules.maximum
    problems = []
    for sample in hpa_samples:
        if not status_written(sample):
            continue
        current, desired = _replicas(sample)
        if desired and not low <= desired <= high:
            problems.append(
                f"{HPA_CONTROLLER} asked for {desired} replicas at t={sample['t']:.1f}s, outside "
                f"the stored {low}..{high}"
            )
        if current > high:
            problems.append(f"hpa status counted {current} replicas at t={sample['t']:.1f}s")
    for sample in deployment_samples:
        if sample.get("deleted"):
            continue
        spec, replicas = int(sample.get("spec_replicas") or 0), int(sample.get("replicas") or 0)
        if not low <= spec <= high or replicas > high:
            problems.append(
                f"deployment spec.replicas {spec} (status {replicas}) at t={sample['t']:.1f}s, "
                f"outside the HPA's stored {low}..{high}"
            )
    for t, pods in pod_counts:
        if pods > high:
            problems.append(f"{pods} pods not terminating at t={t:.1f}s, above maxReplicas {high}")
    return problems[:5] + ([f"and {len(problems) - 5} more"] if len(problems) > 5 else [])


def before_load_problems(
    samples: Iterable[Mapping[str, Any]], t_load: float, rules: HpaRules
) -> list[str]:
    """The scale-out follows the load the scenario drove: before the load started, no reading
    above target and no desired count above the minimum."""
    problems = []
    for sample in samples:
        if sample.get("t", 0.0) >= t_load or not status_written(sample):
            continue
        cpu = sample.get("cpu_utilization")
        if cpu is not None and cpu > rules.target:
            problems.append(
                f"{METRICS_API} reported {cpu}% CPU (target {rules.target}%) at "
                f"t={sample['t']:.1f}s, before the load started (t={t_load:.1f}s)"
            )
        desired = int(sample.get("desired_replicas") or 0)
        if desired > rules.minimum:
            problems.append(
                f"{HPA_CONTROLLER} asked for {desired} replicas at t={sample['t']:.1f}s, before "
                f"the load started (t={t_load:.1f}s)"
            )
    return problems[:3]


def hpa_blame(sample: Mapping[str, Any] | None, hpa: str) -> str:
    """What an HPA's latest status points at when it does not scale: the controller that never
    wrote it, or the metrics it could not read; "" when it points at neither."""
    if sample is None or sample.get("deleted"):
        return f"hpa/{hpa} is not there"
    if not status_written(sample):
        return (
            f"hpa/{hpa} has no status at all (no conditions, no lastScaleTime, no "
            f"observedGeneration): {HPA_CONTROLLER} has never synced it"
        )
    conditions = sample.get("conditions") or {}
    active = str(conditions.get("ScalingActive", ""))
    if active.startswith("False/FailedGetResourceMetric"):
        return (
            f"the HPA controller cannot read CPU (ScalingActive={active}): {METRICS_API} "
            "gave it no reading for these pods"
        )
    able = str(conditions.get("AbleToScale", ""))
    if able.startswith("False/"):
        return f"the HPA controller cannot change the Deployment's scale (AbleToScale={able})"
    return ""


# -- load balancing ------------------------------------------------------------------------------


def service_problems(service: Mapping[str, Any]) -> list[str]:
    """The Service balances per connection: ClusterIP with a virtual IP, no session affinity."""
    spec = service.get("spec") or {}
    name = (service.get("metadata") or {}).get("name", "?")
    problems = []
    kind = spec.get("type", "ClusterIP")
    if kind != "ClusterIP":
        problems.append(f"service/{name} is type {kind}, not ClusterIP")
    if spec.get("clusterIP") in (None, "", "None"):
        problems.append(
            f"service/{name} is headless (clusterIP {spec.get('clusterIP')!r}): DNS, not the "
            "service proxy, would pick the pod"
        )
    affinity = spec.get("sessionAffinity", "None")
    if affinity != "None":
        problems.append(
            f"service/{name} has sessionAffinity {affinity}: one client would stick to one pod"
        )
    return problems


def share_problems(by_pod: Mapping[str, int], pods: Sequence[str], bound_pp: float) -> list[str]:
    """Each pod's share of the answers is within `bound_pp` percentage points of 1/len(pods)."""
    total = sum(by_pod.get(pod, 0) for pod in pods)
    if not pods or total == 0:
        return ["no answers to measure the spread with"]
    fair = 100.0 / len(pods)
    problems = []
    for pod in pods:
        share = 100.0 * by_pod.get(pod, 0) / total
        if abs(share - fair) > bound_pp:
            problems.append(
                f"{pod} answered {share:.1f}% ({by_pod.get(pod, 0)} of {total}), more than "
                f"{bound_pp} points from the fair {fair:.1f}%"
            )
    return problems


def node_problems(node_of_pod: Mapping[str, str], by_pod: Mapping[str, int]) -> list[str]:
    """Every node holding a replica served answers from a replica on it."""
    if not node_of_pod:
        return ["no replica with a known node"]
    by_node: Counter[str] = Counter()
    for pod, node in node_of_pod.items():
        by_node[node or "?"] += by_pod.get(pod, 0)
    silent = sorted(node for node, count in by_node.items() if count == 0)
    if silent:
        return [f"no answer came from the replicas on node(s) {', '.join(silent)}"]
    return []


def spread_problem(node_of_pod: Mapping[str, str], schedulable_nodes: int) -> str | None:
    """With two or more schedulable nodes, the replicas landed on at least two."""
    nodes = {node for node in node_of_pod.values() if node}
    if schedulable_nodes >= 2 and len(nodes) < 2:
        return (
            f"all {len(node_of_pod)} replicas run on {sorted(nodes)} although {schedulable_nodes} "
            "nodes are schedulable (manifests/getip spreads them by hostname)"
        )
    return None


# -- rolling update ------------------------------------------------------------------------------


def bound_problems(
    moments: Sequence[Any],
    replicas: int,
    surge: int,
    unavailable: int,
    *,
    lasting_s: float = 0.0,
) -> list[str]:
    """Every observed moment keeps pods <= replicas + surge and ready >= replicas - unavailable;
    no moments at all is a problem (nothing was observed, nothing is proven). A moment that the
    next one replaced within `lasting_s` is not judged: two ReplicaSet controllers act on one
    Deployment decision independently, so one's new pod and the other's deletion can cross by
    a moment (the decision itself is judged exactly by `replicaset_bound_problems`)."""
    if not moments:
        return ["the recorder observed no pod counts during the rollout"]
    problems = []
    for index, moment in enumerate(moments):
        following = moments[index + 1] if index + 1 < len(moments) else None
        if following is not None and following.t - moment.t < lasting_s:
            continue
        if moment.pods > replicas + surge:
            problems.append(
                f"t={moment.t:.1f}s ({moment.cause}): {moment.pods} pods > {replicas} replicas + "
                f"maxSurge {surge}"
            )
        if moment.ready < replicas - unavailable:
            problems.append(
                f"t={moment.t:.1f}s ({moment.cause}): {moment.ready} ready < {replicas} replicas - "
                f"maxUnavailable {unavailable}"
            )
    return problems


def replicaset_bound_problems(
    samples: Sequence[Mapping[str, Any]],
    owner: str,
    replicas: int,
    surge: int,
    *,
    since_t: float,
    until_t: float,
) -> list[str]:
    """The Deployment controller's own decisions: after every recorded ReplicaSet change of
    `owner` (names `owner-<hash>`) in [since_t, until_t], the ReplicaSets together ask for at most
    replicas + surge pods. No sample in the window is a problem."""
    specs: dict[str, int] = {}
    problems, seen = [], 0
    for sample in samples:
        name = str(sample.get("name"))
        if not name.startswith(f"{owner}-"):
            continue
        if sample.get("deleted"):
            specs.pop(name, None)
        else:
            specs[name] = int(sample.get("spec_replicas") or 0)
        t = float(sample.get("t", 0.0))
        if not since_t <= t <= until_t:
            continue
        seen += 1
        asked = sum(specs.values())
        if asked > replicas + surge:
            shown = ", ".join(f"{n} {v}" for n, v in sorted(specs.items()))
            problems.append(
                f"t={t:.1f}s: its ReplicaSets ask for {asked} pods ({shown}) > {replicas} "
                f"replicas + maxSurge {surge}"
            )
    if not seen:
        return ["the recorder observed no ReplicaSet change during the rollout"]
    return problems


def rollout_seen_problems(
    histories: Mapping[str, Sequence[Any]], old_image: str, new_image: str, replicas: int
) -> list[str]:
    """The recorder saw the rollout happen: `replicas` pods of the new image become Ready and
    `replicas` pods of the old image go (terminating or deleted). `histories` maps a pod name to
    its recorded views (None once deleted)."""
    new_ready = set()
    old_gone = set()
    for name, views in histories.items():
        images = {view.image for view in views if view is not None}
        if new_image in images and any(v is not None and v.ready for v in views):
            new_ready.add(name)
        if old_image in images and any(v is None or v.terminating for v in views):
            old_gone.add(name)
    problems = []
    if len(new_ready) < replicas:
        problems.append(
            f"the recorder saw {len(new_ready)} pods of {new_image} become Ready, expected "
            f"{replicas}"
        )
    if len(old_gone) < replicas:
        problems.append(
            f"the recorder saw {len(old_gone)} pods of {old_image} go, expected {replicas}"
        )
    return problems


# -- rolling update, answer by answer --------------------------------------------------------------
#
# Every answer is matched to the pod that served it, and that pod's moments from the recorder: when
# the kubelet reported it Ready, when the EndpointSlice controller listed it as ready for the
# Service, its first answer through the Service (kube-proxy routes to it); when it was told to
# stop (deletionTimestamp), when the slice stopped listing it as ready, its last answer. Recorder
# times are this machine's clock; answers carry the prober's, so they are shifted by the measured
# clock offset and every comparison allows for its uncertainty.

KUBE_PROXY = "kube-proxy (the node's service proxy)"
SLICE_CONTROLLER = "the EndpointSlice controller (kube-controller-manager)"


@dataclass(frozen=True)
class PodSpan:
    """One pod's life as the recorder saw it (this machine's clock): first Ready, first told to
    stop (terminating or deleted)."""

    image: str = ""
    ready: float | None = None
    terminating: float | None = None


def pod_span(history: Sequence[tuple[float, float, Any]]) -> PodSpan:
    """From `Recorder.pod_history`: (t, wall, view or None once deleted)."""
    image, ready, terminating = "", None, None
    for _, wall, view in history:
        if view is None or view.terminating:
            terminating = wall if terminating is None else terminating
            continue
        image = image or view.image
        if view.ready and ready is None and terminating is None:
            ready = wall
    return PodSpan(image, ready, terminating)


@dataclass(frozen=True)
class SliceSpan:
    """When the Service's EndpointSlices first listed a pod as ready, and when they last stopped
    (not ready, terminating, or gone) and did not list it again. None: not seen."""

    joined: float | None = None
    left: float | None = None


def slice_spans(samples: Sequence[Mapping[str, Any]], service: str) -> dict[str, SliceSpan]:
    """Replay the recorder's EndpointSlice samples (in order) of `service`'s slices."""
    slices: dict[str, set[str]] = {}
    joined: dict[str, float] = {}
    left: dict[str, float] = {}
    for sample in samples:
        name = str(sample.get("name"))
        if sample.get("deleted"):
            if name not in slices:
                continue
            slices.pop(name)
        elif sample.get("service") != service:
            continue
        else:
            slices[name] = {
                str(e["pod"]) for e in sample.get("endpoints") or [] if e.get("ready") and e["pod"]
            }
        ready_now = set().union(*slices.values()) if slices else set()
        wall = float(sample["wall"])
        for pod in ready_now:
            joined.setdefault(pod, wall)
            # Listed again (a readiness flap): it left for good only at its last leaving.
            left.pop(pod, None)
        for pod in set(joined) - ready_now:
            left.setdefault(pod, wall)
    return {pod: SliceSpan(joined.get(pod), left.get(pod)) for pod in set(joined) | set(left)}


JSONish = dict[str, Any]


@dataclass(frozen=True)
class Routing:
    """One pod, answer by answer (this machine's clock; `first`/`last` are answer starts)."""

    pod: str
    image: str
    ready: float | None
    joined: float | None
    first: float | None
    terminating: float | None
    left: float | None
    last: float | None
    answers: int
    #: Answers that started before the pod was Ready (beyond the clock allowance).
    early: int
    #: Answers that started after the pod was told to stop: expected within the routing lag.
    draining: int
    #: Answers that started later than `left` plus the routing-lag bound.
    late: int
    #: Where lags are measured from when the pod joined before traffic began.
    since: float

    @property
    def slice_in_s(self) -> float | None:
        """Ready -> listed ready in the EndpointSlice."""
        return _lag(self.ready, self.joined)

    @property
    def first_answer_s(self) -> float | None:
        """Listed ready (or traffic start, if later) -> first answer through the Service."""
        return _lag(None if self.joined is None else max(self.joined, self.since), self.first)

    @property
    def slice_out_s(self) -> float | None:
        """Told to stop -> no longer listed ready."""
        return _lag(self.terminating, self.left)

    @property
    def last_answer_s(self) -> float | None:
        """No longer listed ready -> last answer (negative: it stopped answering before)."""
        return _lag(self.left, self.last)

    def to_dict(self, origin: float) -> JSONish:
        """For the report's figures: times in seconds from `origin`, lags in seconds."""

        def at(wall: float | None) -> float | None:
            return None if wall is None else round(wall - origin, 3)

        def lag(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "pod": self.pod,
            "image": self.image,
            "ready_s": at(self.ready),
            "in_slice_s": at(self.joined),
            "first_answer_s": at(self.first),
            "terminating_s": at(self.terminating),
            "out_of_slice_s": at(self.left),
            "last_answer_s": at(self.last),
            "ready_to_slice_s": lag(self.slice_in_s),
            "slice_to_first_answer_s": lag(self.first_answer_s),
            "terminating_to_out_s": lag(self.slice_out_s),
            "out_to_last_answer_s": lag(self.last_answer_s),
            "answers": self.answers,
            "answers_before_ready": self.early,
            "answers_while_terminating": self.draining,
            "answers_after_leaving": self.late,
        }


def _lag(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def routing_table(
    answers: Sequence[Answer],
    pods: Mapping[str, PodSpan],
    spans: Mapping[str, SliceSpan],
    *,
    offset: float,
    uncertainty: float,
    lag_s: float,
    since: float,
    early_allowance_s: float,
) -> list[Routing]:
    """One row per pod the recorder saw or an answer named. `offset` is prober clock minus this
    machine's; `uncertainty` how far off it may be. An answer is early when it started more than
    `uncertainty + early_allowance_s` before the pod's Ready, and late when it started more than
    `lag_s + uncertainty` after the pod left the slice (or was told to stop, if it never
    left)."""
    served: dict[str, list[float]] = {}
    for answer in answers:
        if answer.ok and answer.pod:
            served.setdefault(answer.pod, []).append(answer.start - offset)
    rows = []
    for pod in sorted(set(pods) | set(served)):
        span, where = pods.get(pod, PodSpan()), spans.get(pod, SliceSpan())
        starts = sorted(served.get(pod, []))
        ready = span.ready
        early = (
            len(starts)
            if ready is None
            else sum(1 for s in starts if s < ready - uncertainty - early_allowance_s)
        )
        stop = span.terminating
        out = where.left if where.left is not None else stop
        rows.append(
            Routing(
                pod=pod,
                image=span.image,
                ready=ready,
                joined=where.joined,
                first=starts[0] if starts else None,
                terminating=stop,
                left=where.left,
                last=starts[-1] if starts else None,
                answers=len(starts),
                early=early,
                draining=0 if stop is None else sum(1 for s in starts if s > stop),
                late=0 if out is None else sum(1 for s in starts if s > out + lag_s + uncertainty),
                since=since,
            )
        )
    return rows


def routing_lag_problems(
    rows: Sequence[Routing],
    *,
    lag_s: float,
    slice_lag_s: float,
    uncertainty: float,
    traffic_end: float,
    join_lag_s: float | None = None,
) -> list[str]:
    """Each sentence names the part the evidence points at: the EndpointSlice controller when the
    slice followed a pod's Ready or stop late, kube-proxy when answers did not follow the slice
    (a pod listed ready got nothing for longer than `lag_s`, or one that left kept answering, or
    one answered before it was Ready while the slice did not list it). `traffic_end`: the last
    answer's start (this machine's clock): a pod joined later than `traffic_end - lag_s` cannot
    be judged on its first answer yet. A pod listed before the traffic began is judged only on
    getting nothing at all: its first answer is the fresh Service's start-up (kube-proxy's first
    rules for it, the prober's first connections), not a routing change."""
    problems: list[str] = []
    # Joining late costs no request (the other pods answer meanwhile), so its bound may be wider
    # than leaving's, which the workload's drain must cover.
    join_s = lag_s if join_lag_s is None else join_lag_s
    join_allowance = join_s + uncertainty
    for row in rows:
        who = f"pod {row.pod}" + (f" ({row.image.rsplit(':', 1)[-1]})" if row.image else "")
        if row.slice_in_s is not None and row.slice_in_s > slice_lag_s:
            problems.append(
                f"{SLICE_CONTROLLER} listed {who} as ready {row.slice_in_s:.2f}s after the kubelet "
                f"reported it Ready (at most {slice_lag_s}s)"
            )
        if row.slice_out_s is not None and row.slice_out_s > slice_lag_s:
            problems.append(
                f"{SLICE_CONTROLLER} kept {who} listed as ready {row.slice_out_s:.2f}s after it "
                f"was told to stop (at most {slice_lag_s}s)"
            )
        if row.ready is not None and row.joined is None:
            since_ready = max(row.ready, row.since)
            end = min(traffic_end, row.terminating if row.terminating is not None else traffic_end)
            if end - since_ready > slice_lag_s:
                problems.append(
                    f"{SLICE_CONTROLLER} never listed {who} as ready in the Service's "
                    f"EndpointSlice, in the {end - since_ready:.1f}s it was Ready while traffic "
                    f"ran (at most {slice_lag_s}s expected)"
                )
        told = row.terminating
        still_listed = row.left is None and row.joined is not None
        if told is not None and still_listed and traffic_end - told > slice_lag_s:
            problems.append(
                f"{SLICE_CONTROLLER} still listed {who} as ready "
                f"{traffic_end - told:.1f}s after it was told to stop"
            )
        if row.early:
            listed_early = (
                row.joined is not None and row.ready is not None and row.joined < row.ready
            )
            part = SLICE_CONTROLLER if listed_early else KUBE_PROXY
            problems.append(
                f"{row.early} answers came from {who} before the kubelet reported it Ready: "
                + (
                    f"{part} listed it as ready first"
                    if listed_early
                    else f"{part} routed to it although the EndpointSlice did not list it as ready"
                )
            )
        if row.late:
            problems.append(
                f"{KUBE_PROXY} kept routing to {who} after it left the EndpointSlice: {row.late} "
                f"answers started more than {lag_s}s (+{uncertainty:.2f}s clock allowance) "
                f"later, the last {row.last_answer_s:.2f}s after it left"
            )
        if row.joined is None or (row.left is not None and row.left <= max(row.joined, row.since)):
            continue
        start = max(row.joined, row.since)
        # Listed ready from `start` until it left (or the traffic ended): long enough to be hit.
        listed = min(traffic_end, row.left if row.left is not None else traffic_end) - start
        if row.first is None and listed > join_allowance:
            problems.append(
                f"{KUBE_PROXY} routed nothing to {who} in {listed:.1f}s of traffic through "
                f"the Service while the EndpointSlice listed it as ready (at most {join_s}s "
                "expected)"
            )
        elif (
            row.first_answer_s is not None
            and row.first_answer_s > join_allowance
            and row.joined > row.since
        ):
            problems.append(
                f"{KUBE_PROXY} routed the first request to {who} {row.first_answer_s:.2f}s after "
                f"the EndpointSlice listed it as ready (at most {join_s}s, "
                f"+{uncertainty:.2f}s clock allowance)"
            )
    return problems


def failed_request_problems(
    failed: Sequence[Answer],
    ok: Sequence[Answer],
    rows: Sequence[Routing],
    *,
    offset: float,
    uncertainty: float,
    lag_s: float,
    workload: str,
    origin: float,
    routed: float | None = None,
) -> list[str]:
    """Which part failed requests point at, from where the pods stood when each one started:

    - within `lag_s` (+ clock allowance) after a pod left the EndpointSlice: the routing lag the
      workload's graceful shutdown must cover (`workload` names it: its preStop drain and server);
    - later than that after a pod left, while every pod listed ready then answered requests
      started after the failure (so the failures were not theirs): kube-proxy still sent them to
      a pod that had left;
    - otherwise, while every pod in the slice was Ready and none had just left: the workload.

    Times in the sentences are seconds from `origin` (this machine's clock). Failures that
    started before `routed` (the first answer through the fresh Service: until then kube-proxy
    may not have its first rules for it) are not judged here; `failed_before` counts them.
    """
    if not failed:
        return []
    allowance = lag_s + uncertainty
    answered: dict[str, list[float]] = {}
    for answer in ok:
        if answer.pod:
            answered.setdefault(answer.pod, []).append(answer.start - offset)
    shutdown: list[tuple[float, str]] = []
    stale: list[tuple[float, str]] = []
    serving: list[float] = []
    unlisted: list[float] = []
    none_ready: list[float] = []
    for answer in failed:
        t = answer.start - offset
        if routed is not None and t < routed:
            continue
        just_left = [
            r.pod
            for r in rows
            if r.left is not None and r.left - uncertainty <= t <= r.left + allowance
        ]
        if just_left:
            shutdown.append((t, just_left[0]))
            continue
        listed = [
            r
            for r in rows
            if r.joined is not None and r.joined <= t and (r.left is None or t < r.left)
        ]
        if not listed:
            ready = [
                r.pod
                for r in rows
                if r.ready is not None
                and r.ready <= t
                and (r.terminating is None or t < r.terminating)
            ]
            (unlisted if ready else none_ready).append(t)
            continue
        alive = all(any(s >= t for s in answered.get(r.pod, [])) for r in listed)
        gone = [r.pod for r in rows if r.left is not None and r.left + allowance < t]
        if gone and alive:
            stale.append((t, gone[-1]))
        else:
            serving.append(t)
    problems = []
    if unlisted:
        problems.append(
            f"{len(unlisted)} requests failed while the Service's EndpointSlice listed no pod as "
            f"ready although the kubelet reported pods Ready: {SLICE_CONTROLLER} did not list "
            f"them (first at {unlisted[0] - origin:+.1f}s)"
        )
    if none_ready:
        problems.append(
            f"{len(none_ready)} requests failed while no pod of the Service was Ready "
            f"(first at {none_ready[0] - origin:+.1f}s)"
        )
    if stale:
        pods = sorted({pod for _, pod in stale})
        problems.append(
            f"{len(stale)} requests failed more than {lag_s}s after pod(s) {', '.join(pods)} left "
            f"the EndpointSlice, while every pod it listed as ready went on answering: "
            f"{KUBE_PROXY} still sent requests to a pod that had left "
            f"(first at {stale[0][0] - origin:+.1f}s)"
        )
    if shutdown:
        pods = sorted({pod for _, pod in shutdown})
        problems.append(
            f"{len(shutdown)} requests failed within {lag_s}s of pod(s) {', '.join(pods)} leaving "
            f"the EndpointSlice, the routing lag a stopping pod must keep serving through: "
            f"{workload} stopped serving too soon (first at {shutdown[0][0] - origin:+.1f}s)"
        )
    if serving:
        problems.append(
            f"{len(serving)} requests failed while every pod in the EndpointSlice was Ready and "
            f"none had just left it: {workload} failed them (first at {serving[0] - origin:+.1f}s)"
        )
    return problems


DEPLOYMENT_CONTROLLER = "the Deployment controller (kube-controller-manager)"
REPLICASET_CONTROLLER = "the ReplicaSet controller (kube-controller-manager)"


def failed_before(failed: Sequence[Answer], *, offset: float, routed: float | None) -> int:
    """Failed requests that started before `routed` (see `failed_request_problems`)."""
    if routed is None:
        return 0
    return sum(1 for answer in failed if answer.start - offset < routed)


def converged_at(rows: Sequence[Routing], pods: Iterable[str]) -> float | None:
    """When the last of `pods` first answered (this machine's clock); None if one never did."""
    by_pod = {row.pod: row.first for row in rows}
    firsts = [by_pod.get(pod) for pod in pods]
    if not firsts or None in firsts:
        return None
    return max(first for first in firsts if first is not None)


def rollout_stall(
    deployment: Mapping[str, Any] | None,
    replicasets: Sequence[Mapping[str, Any]],
    new_image: str,
    replicas: int,
) -> str:
    """Why a rollout did not finish, from the last recorded Deployment and ReplicaSet samples:
    which controller the evidence points at, or that the new pods did not become Ready."""
    if deployment is None:
        return "no Deployment status was recorded"
    generation, observed = deployment.get("generation", 0), deployment.get("observed_generation", 0)
    if observed < generation:
        return (
            f"{DEPLOYMENT_CONTROLLER} never acted on the new spec: status.observedGeneration "
            f"{observed} < metadata.generation {generation}"
        )
    latest: dict[str, Mapping[str, Any]] = {}
    for sample in replicasets:
        if sample.get("deleted"):
            latest.pop(str(sample.get("name")), None)
        else:
            latest[str(sample.get("name"))] = sample
    new = [rs for rs in latest.values() if rs.get("image") == new_image]
    if not new:
        return f"{DEPLOYMENT_CONTROLLER} made no ReplicaSet for {new_image}"
    rs = new[-1]
    wanted, made, ready = rs.get("spec_replicas", 0), rs.get("replicas", 0), rs.get("ready", 0)
    if made < wanted:
        return (
            f"{REPLICASET_CONTROLLER} made {made} of the {wanted} pods replicaset/{rs['name']} "
            "asks for"
        )
    if ready < wanted:
        return (
            f"{ready} of the {made} new pods of replicaset/{rs['name']} became Ready (the kubelet "
            "runs their readiness probes; see the pods' events)"
        )
    return (
        f"{DEPLOYMENT_CONTROLLER} stopped scaling: replicaset/{rs['name']} asks for {wanted} "
        f"of {replicas} pods, all Ready, and the rollout went no further"
    )

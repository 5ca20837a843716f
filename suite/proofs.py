"""The scenarios' decision functions: pure, cluster-free, unit-tested one by one.

Each takes what was recorded (answers, recorder samples, events, pod views) and returns the
problems it found as sentences (an empty list: the claim holds). An observation window with
nothing in it is always a problem: no claim is ever proven by the absence of observations.

Times are epoch seconds (`wall`) unless a name says `t` (the recorder's clock).
"""

from __future__ import annotations

import itertools
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


def scale_in_problems(
    samples: Sequence[Mapping[str, Any]],
    *,
    since_t: float,
    t_scaled_in: float,
    target: int,
    window_s: float,
    slack_s: float,
) -> list[str]:
    """The scale-in came no earlier than the stabilization window after the last reading above
    target (less `slack_s` for observation latency)."""
    readings = [
        s
        for s in samples
        if since_t <= s.get("t", 0.0) <= t_scaled_in and s.get("cpu_utilization") is not None
    ]
    if not readings:
        return ["no HPA CPU reading was recorded between the load and the scale-in"]
    above = [s for s in readings if s["cpu_utilization"] > target]
    if not above:
        return [f"no HPA reading above the {target}% target before the scale-in"]
    waited = t_scaled_in - above[-1]["t"]
    if waited < window_s - slack_s:
        return [
            f"scaled in {waited:.1f}s after the last reading above target "
            f"({above[-1]['cpu_utilization']}% at t={above[-1]['t']:.1f}s), before the "
            f"{window_s:.0f}s scale-down stabilization window ended"
        ]
    return []


def first_t(
    samples: Iterable[Mapping[str, Any]], since_t: float, key: str, predicate: Any
) -> float | None:
    """`t` of the first sample since `since_t` whose `key` satisfies `predicate`."""
    for sample in samples:
        fresh = sample.get("t", 0.0) >= since_t and not sample.get("deleted")
        if fresh and predicate(sample.get(key)):
            return float(sample["t"])
    return None


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
    moments: Sequence[Any], replicas: int, surge: int, unavailable: int
) -> list[str]:
    """Every observed moment keeps pods <= replicas + surge and ready >= replicas - unavailable;
    no moments at all is a problem (nothing was observed, nothing is proven)."""
    if not moments:
        return ["the recorder observed no pod counts during the rollout"]
    problems = []
    for moment in moments:
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

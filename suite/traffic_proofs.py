"""What answers over time show, for any behaviour: coverage and gaps, the prober's clock
offset, windows, routing around a pod that left, a Service's EndpointSlices over time, and the
events of an object. Pure, cluster-free, unit-tested one by one.

Each takes what was recorded (answers, recorder samples, events) and returns the problems it found
as sentences (an empty list: the claim holds). An observation window with nothing in it is always a
problem: no claim is ever proven by the absence of observations.

Times are epoch seconds (`wall`) unless a name says `t` (the recorder's clock).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from suite.traffic import Answer, ProbeResult

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


def throughout(
    result: ProbeResult,
    start: float,
    end: float,
    *,
    max_skew_s: float,
    max_gap_s: float,
    min_rate: float,
) -> tuple[float, Coverage, list[str]]:
    """A background run's checks before any verdict on it: not interrupted, the prober's clock
    skew measured within `max_skew_s`, requests through all of [start, end] shrunk by that skew.
    Returns (the skew bound, the coverage, the problems)."""
    problems = [f"the traffic was interrupted: {result.errors[-1]}"] if result.errors else []
    offset = clock_offset(result.answers, result.chunk_sent)
    skew = skew_problem(offset, max_skew_s)
    problems += [skew] if skew else []
    bound = offset.bound if offset else max_skew_s
    flow = coverage(
        [a.start for a in result.answers],
        start + bound,
        end - bound,
        max_gap_s=max_gap_s,
        min_rate=min_rate,
    )
    problems += [f"traffic did not run throughout: {p}" for p in flow.problems]
    return bound, flow, problems


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


# -- a Service's EndpointSlices ----------------------------------------------------------------


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


# -- pods and events -----------------------------------------------------------------------------


def events_for(events: Iterable[Mapping[str, Any]], obj: str) -> list[Mapping[str, Any]]:
    """Recorded events about `obj` (`kind/name`, e.g. `pod/x`)."""
    return [event for event in events if event.get("object") == obj]

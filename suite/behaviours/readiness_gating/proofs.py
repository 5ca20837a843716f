"""Readiness gating's decision functions: the steps a pod takes out of the Service and back (each
the doing of one part, each with its bound), what the EndpointSlices list, the answers around
it, and that it was never restarted.

Pure and cluster-free, each unit-tested (test_proofs.py beside it). A sentence names a part (the
kubelet, the EndpointSlice controller, kube-proxy) only when what was recorded points at it: the
fault matrix counts a catch by the part the message names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suite.traffic import Answer
from suite.traffic_proofs import events_for

#: The parts, in the words of suite/parts.py, as the steps name them.
KUBELET = "the kubelet"
ENDPOINTSLICE_CONTROLLER = "the EndpointSlice controller (kube-controller-manager)"
KUBE_PROXY = "the node's service proxy (kube-proxy)"


@dataclass(frozen=True)
class Step:
    """One step of the pod's way out of the Service or back: from `start` to `end` (walls; None:
    not seen), the doing of `part`, within `bound_s`. With `needed` False an end that was not
    seen is no problem (the pod answered nothing more after the flip: nothing left to stop)."""

    what: str
    start: float | None
    end: float | None
    bound_s: float
    part: str
    needed: bool = True

    @property
    def lag_s(self) -> float | None:
        """end - start, when both were seen."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    def problem(self) -> str | None:
        """None when the step came within its bound."""
        if self.start is None:
            return f"{self.what}: when it began was not seen, so its lag is not known"
        if self.end is None:
            if not self.needed:
                return None
            return f"{self.what}: not seen by the end of the run ({self.part} did not act)"
        lag = self.end - self.start
        if lag > self.bound_s:
            return f"{self.what} took {lag:.2f}s (bound {self.bound_s:g}s): {self.part} was late"
        return None


def step_problems(steps: Iterable[Step]) -> list[str]:
    """Every step that was not seen or came later than its bound, in order."""
    return [problem for step in steps if (problem := step.problem()) is not None]


def listing_problem(
    timeline: Sequence[tuple[float, Mapping[str, bool]]], wanted: Mapping[str, bool]
) -> str | None:
    """Do the Service's EndpointSlices (an `endpoint_timeline`, as last recorded) list each pod
    of `wanted` as ready (True) or not (False, or not at all)? None when they do."""
    if not wanted:
        return "no pod to look for in the Service's EndpointSlices"
    if not timeline:
        return "no EndpointSlice of the Service was recorded"
    current = timeline[-1][1]
    wrong = [pod for pod, ready in sorted(wanted.items()) if bool(current.get(pod)) != ready]
    if not wrong:
        return None
    listed = ", ".join(sorted(pod for pod, ready in current.items() if ready)) or "none"
    return f"the Service's EndpointSlices list as ready: {listed}; expected " + ", ".join(
        f"pod/{pod} {'' if wanted[pod] else 'not '}listed as ready" for pod in wrong
    )


def listing_blame(wanted: Mapping[str, bool], *, watched: bool) -> str:
    """Who did not make the EndpointSlices list the pods as `wanted`, once the kubelet reported
    them so (Ready: True, NotReady: False): the EndpointSlice controller, if its slices were
    watched throughout."""
    if not watched:
        return (
            "the watch of the Service's EndpointSlices was lost or never listed, so which part "
            "lagged is not known"
        )
    added = sorted(pod for pod, ready in wanted.items() if ready)
    removed = sorted(pod for pod, ready in wanted.items() if not ready)
    words = []
    if added:
        words.append("add Ready " + ", ".join(f"pod/{pod}" for pod in added))
    if removed:
        words.append("take NotReady " + ", ".join(f"pod/{pod}" for pod in removed) + " out")
    return f"{ENDPOINTSLICE_CONTROLLER} did not " + " or ".join(words)


def not_ready_blame(events: Iterable[Mapping[str, Any]], pod: str) -> str:
    """Why a pod whose readiness was flipped off was not seen NotReady, as the kubelet's events
    tell."""
    failed = [
        e
        for e in events_for(events, f"pod/{pod}")
        if e.get("reason") == "Unhealthy" and "Readiness probe failed" in str(e.get("message"))
    ]
    if not failed:
        return (
            f"{KUBELET} reported no failed readiness probe for pod/{pod} (no Unhealthy "
            "'Readiness probe failed' event): it did not probe it, or the probe did not fail"
        )
    return (
        f"{KUBELET} reported {len(failed)} failed readiness probe(s) of pod/{pod} but its Ready "
        "condition did not turn False"
    )


def last_answer_from(
    answers: Iterable[Answer], pod: str, since: float, until: float
) -> Answer | None:
    """The last answered request served by `pod` that started in [since, until]."""
    return max(
        (a for a in answers if a.ok and a.pod == pod and since <= a.start <= until),
        key=lambda a: a.start,
        default=None,
    )


def first_answer_from(answers: Iterable[Answer], pod: str, since: float) -> Answer | None:
    """The first answered request served by `pod` that started at or after `since`."""
    return min(
        (a for a in answers if a.ok and a.pod == pod and a.start >= since),
        key=lambda a: a.start,
        default=None,
    )


def out_of_service_problems(
    answers: Sequence[Answer],
    pod: str,
    start: float,
    end: float,
    *,
    listed_out: float | None,
) -> list[str]:
    """While `pod` is out of the Service ([start, end], after the routing bound): none of the
    requests through the Service reached it, and none failed. A request that reached it is the
    service proxy's doing once its EndpointSlice listed it as not ready (`listed_out`); failed
    ones are the service proxy's or the pod network's (the pod itself answers throughout)."""
    if end <= start:
        return [f"the window in which pod/{pod} is out is empty ({end - start:+.2f}s)"]
    window = [a for a in answers if start <= a.start <= end]
    if not window:
        return [f"no request started while pod/{pod} was out ({end - start:.1f}s)"]
    problems = []
    reached = [a for a in window if a.pod == pod]
    if reached:
        since = (
            f", {reached[-1].start - listed_out:.1f}s after its EndpointSlice listed it as not "
            f"ready: {KUBE_PROXY} kept routing to it"
            if listed_out is not None and listed_out <= reached[-1].start
            else ""
        )
        problems.append(
            f"{len(reached)} requests through the Service reached pod/{pod} while it was out, "
            f"the last at +{reached[-1].start - start:.1f}s into the window{since}"
        )
    failed = [a for a in window if not a.ok]
    if failed:
        kinds: dict[str, int] = {}
        for a in failed:
            kind = a.error or f"HTTP {a.status}"
            kinds[kind] = kinds.get(kind, 0) + 1
        problems.append(
            f"{len(failed)} of {len(window)} requests failed while pod/{pod} was out, first at "
            f"+{failed[0].start - start:.1f}s ({kinds}): {KUBE_PROXY} or the pod network did "
            "not deliver them to the ready pod"
        )
    return problems


def failed_problem(answers: Sequence[Answer], since: float) -> str | None:
    """No request through the Service failed from `since` on: the flipped pod answers throughout
    (only its readiness fails), so a failure is the routing's doing."""
    after = [a for a in answers if a.start >= since]
    if not after:
        return "no request started after the flip"
    failed = [a for a in after if not a.ok]
    if not failed:
        return None
    kinds: dict[str, int] = {}
    for a in failed:
        kind = a.error or f"HTTP {a.status}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return (
        f"{len(failed)} of {len(after)} requests through the Service failed, first at "
        f"+{failed[0].start - since:.1f}s after the flip ({kinds}) although both pods kept "
        f"serving: {KUBE_PROXY} or the pod network did not deliver them"
    )


def not_restarted_problems(
    before: Mapping[str, int],
    after: Mapping[str, int],
    events: Iterable[Mapping[str, Any]],
    pod: str,
) -> list[str]:
    """Readiness is not liveness: no pod of `before` was restarted (restartCount unchanged), and
    the kubelet neither failed the flipped `pod`'s liveness probe nor killed its container."""
    problems = []
    if not before:
        problems.append("no restartCount was read before the flip")
    for name, count in sorted(before.items()):
        now = after.get(name)
        if now is None:
            problems.append(f"pod/{name} is gone (restartCount unknown)")
        elif now != count:
            problems.append(
                f"{KUBELET} restarted pod/{name} (restartCount {count} -> {now}): a failing "
                "readiness probe must not restart a container"
            )
    for event in events_for(events, f"pod/{pod}"):
        message = str(event.get("message"))
        if event.get("reason") == "Killing" or (
            event.get("reason") == "Unhealthy" and "Liveness probe failed" in message
        ):
            problems.append(
                f"{KUBELET} reported {event.get('reason')} for pod/{pod} ({message}): its "
                "liveness probe (/healthz) must pass while only its readiness fails"
            )
    return problems

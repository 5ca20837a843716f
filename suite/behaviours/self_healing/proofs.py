"""Self-healing's decision functions: restarts and their events, the Service's endpoints
around a sick pod, the answers, and which part the evidence points at.

Pure and cluster-free, each unit-tested (test_proofs.py beside it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from suite.traffic import Answer
from suite.traffic_proofs import events_for, in_window, longest_gap


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
    `suite.samples.PodView`, or None when none was)."""
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

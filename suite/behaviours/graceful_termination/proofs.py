"""Graceful termination's decisions, cluster-free: how long each pod took from being told to stop
to being gone, whether the kubelet held the graceful pods for their preStop drain, and what the
failed requests of each half were."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from suite.traffic import Answer

KUBE_PROXY = "kube-proxy (the node's service proxy)"
SLICE_CONTROLLER = "the EndpointSlice controller (kube-controller-manager)"
KUBELET = "the kubelet (it runs the preStop hook and sends SIGTERM only after it)"


def stop_to_gone(history: Sequence[tuple[float, float, Any]]) -> float | None:
    """From `Recorder.pod_history` (t, wall, view or None once deleted): seconds from the first
    view that says the pod was told to stop (deletionTimestamp set) to its deletion; None when
    the recorder did not see both."""
    told = gone = None
    for _, wall, view in history:
        if view is None:
            gone = wall
            break
        if view.terminating and told is None:
            told = wall
    if told is None or gone is None:
        return None
    return gone - told


def drain_problems(stops: Mapping[str, float | None], drain_s: float) -> list[str]:
    """Graceful pods that were gone sooner after being told to stop than their preStop drain
    lasts: the kubelet did not wait for the hook (or did not run it) before stopping them. A pod
    whose stop the recorder did not see whole is a problem too: nothing would be proven."""
    if not stops:
        return ["the recorder saw no pod of the graceful half stop"]
    problems = []
    unseen = sorted(pod for pod, s in stops.items() if s is None)
    if unseen:
        problems.append(
            f"the recorder did not see {', '.join(unseen)} go from told-to-stop to deleted"
        )
    short = sorted((s, pod) for pod, s in stops.items() if s is not None and s < drain_s)
    if short:
        listed = ", ".join(f"{pod} after {s:.2f}s" for s, pod in short)
        problems.append(
            f"{len(short)} graceful pods were gone sooner than their {drain_s:g}s preStop drain "
            f"({listed}): {KUBELET} did not hold them for the hook"
        )
    return problems


def failure_kinds(failed: Iterable[Answer]) -> dict[str, int]:
    """The failed requests by what went wrong: the HTTP status, or the error's first words."""
    kinds: dict[str, int] = {}
    for answer in failed:
        if answer.status is not None:
            kind = f"HTTP {answer.status}"
        else:
            kind = (answer.error or "no answer").split(":", 1)[0].strip() or "no answer"
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda item: (-item[1], item[0])))


def judged(failed: Sequence[Answer], *, offset: float, since: float | None) -> list[Answer]:
    """The failures that started at `since` or later (this machine's clock; the prober's answers
    are shifted by `offset`); all of them when `since` is None."""
    if since is None:
        return list(failed)
    return [answer for answer in failed if answer.start - offset >= since]


def unrouted(app: str, *, listed: bool, answered: bool, seen: str, within_s: float) -> str | None:
    """Why `app`'s fresh Service gave no baseline of answers within `within_s`: its EndpointSlice
    listed no ready pod (the EndpointSlice controller), or it did and no request was answered
    through the Service (kube-proxy did not route it). None when it answered."""
    if answered:
        return None
    if not listed:
        return (
            f"service/{app} answered nothing within {within_s:g}s and its EndpointSlice never "
            f"listed a ready pod: {SLICE_CONTROLLER} did not list them ({seen})"
        )
    return (
        f"service/{app} answered nothing within {within_s:g}s although its EndpointSlice listed "
        f"ready pods: {KUBE_PROXY} did not route the Service ({seen})"
    )

"""Decisions of the disruption-budget scenario, from what was recorded: which nodes can take pods,
whether the budget's status was computed, when a refusal was certain, and whether Ready pods ever
fell below the budget (pure functions; no cluster)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from suite.kube import condition
from suite.podcount import Moment

#: Who computes a PodDisruptionBudget's status (and so lets an eviction through), in the words of
#: suite/parts.py.
DISRUPTION_CONTROLLER = "the disruption controller (kube-controller-manager)"
#: Taints that keep new pods off a node (a cordon adds the first kind as node.kubernetes.io/
#: unschedulable).
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


def schedulable_nodes(nodes: Iterable[Mapping[str, Any]]) -> list[str]:
    """The nodes a pod without tolerations can go to: Ready, not cordoned, no NoSchedule or
    NoExecute taint (a kind control plane has one), by name."""
    found = []
    for node in nodes:
        spec = node.get("spec") or {}
        ready = condition(node, "Ready")
        if spec.get("unschedulable") or not ready or ready.get("status") != "True":
            continue
        if any(t.get("effect") in BLOCKING_EFFECTS for t in spec.get("taints") or []):
            continue
        found.append(str((node.get("metadata") or {}).get("name") or ""))
    return sorted(found)


def budget_status(pdb: Mapping[str, Any]) -> str:
    """A PodDisruptionBudget's status in one line, for progress and failure messages."""
    status = pdb.get("status") or {}
    generation = (pdb.get("metadata") or {}).get("generation")
    keys = ("currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed")
    parts = [f"observedGeneration {status.get('observedGeneration', '<unset>')}/{generation}"]
    parts += [f"{key} {status.get(key, '<unset>')}" for key in keys]
    return ", ".join(parts)


def budget_computed_problem(pdb: Mapping[str, Any], *, pods: int) -> str | None:
    """None once the budget's status is the disruption controller's for its current generation,
    counting all `pods` and all of them healthy; else what is missing."""
    status = pdb.get("status") or {}
    generation = int((pdb.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return f"status not computed for generation {generation} ({budget_status(pdb)})"
    if (
        int(status.get("expectedPods") or 0) != pods
        or int(status.get("currentHealthy") or 0) < pods
    ):
        return f"not all {pods} pods counted healthy yet ({budget_status(pdb)})"
    return None


def refusal_certain(
    on_node: int, allowed: int, first_pass_end: float, first_ready: float | None
) -> bool:
    """A 429 is certain when the drained node held more pods than the budget allowed to go at
    once, and the first pass of evictions (one request per pod, back to back) ended before any
    replacement turned Ready (so the budget could not have grown in between)."""
    return on_node > allowed and (first_ready is None or first_ready > first_pass_end)


def ready_floor_problems(moments: Sequence[Moment], min_available: int) -> list[str]:
    """Every recorded moment of the window (the one in force when it opened included) has at
    least `min_available` Ready pods that are not terminating (what the disruption controller
    counts as healthy). No moment: a problem (nothing was seen)."""
    if not moments:
        return ["no pod change was recorded during the drain: availability not proven"]
    start = moments[0].t
    return [
        f"{m.ready} Ready at +{m.t - start:.1f}s ({m.cause or 'pod change'}), fewer than the "
        f"budget's minAvailable {min_available}"
        for m in moments
        if m.ready < min_available
    ]


def available_floor_problems(
    samples: Sequence[Mapping[str, Any]], min_available: int, *, since: float, until: float
) -> list[str]:
    """The Deployment's availableReplicas (as recorded, the sample in force at `since` included)
    never below `min_available` from `since` to `until` (wall clock)."""
    live = [s for s in samples if not s.get("deleted")]
    judged = [s for s in live if float(s["wall"]) < since][-1:] + [
        s for s in live if since <= float(s["wall"]) <= until
    ]
    if not judged:
        return ["no Deployment status was recorded during the drain: availability not proven"]
    return [
        f"availableReplicas {s.get('available')} at +{max(0.0, float(s['wall']) - since):.1f}s, "
        f"fewer than minAvailable {min_available}"
        for s in judged
        if int(s.get("available") or 0) < min_available
    ]


def first_ready_after(
    history: Mapping[str, Sequence[tuple[float, float, Any]]], since: float, old: Iterable[str]
) -> float | None:
    """The wall time the first pod not in `old` was seen Ready (and not terminating) at or after
    `since`; None when none was. `history` maps a pod to its (t, wall, view or None) states."""
    known = set(old)
    times = [
        wall
        for name, states in history.items()
        if name not in known
        for _, wall, view in states
        if view is not None and view.ready and not view.terminating and wall >= since
    ]
    return min(times, default=None)

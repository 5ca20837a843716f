"""The node failure's decisions: the node's state and taints from the recorder's Node samples, the
tolerations the cluster admitted, where the pods ran, when they were evicted, and which requests
failed when. Pure, cluster-free; every function has its no-data case in test_proofs.py.

Times are epoch seconds (`wall`), as the recorder and the prober stamp them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from suite.traffic import Answer

#: The node lifecycle controller's words (suite/parts.py NODE_LIFECYCLE_CONTROLLER).
NODE_LIFECYCLE_CONTROLLER = "the node lifecycle controller (kube-controller-manager)"
#: The NoExecute taints the node lifecycle controller puts on a node whose kubelet stopped
#: reporting (Ready Unknown: unreachable) or that reports NotReady (not-ready).
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
NO_EXECUTE = (f"{UNREACHABLE}:NoExecute", f"{NOT_READY}:NoExecute")
#: kube-controller-manager's --node-monitor-grace-period default since Kubernetes 1.32 (40 s
#: before), used when the controller's flags cannot be read (a managed control plane).
DEFAULT_GRACE_S = 50.0

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_s(text: str) -> float | None:
    """A Go duration ("50s", "1m0s", "500ms") in seconds; None when it is not one."""
    text = text.strip()
    if not text or _DURATION.sub("", text):
        return None
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(text))


def grace_period_s(command: Sequence[str]) -> float | None:
    """--node-monitor-grace-period from kube-controller-manager's command line; None when it is
    not set there (the default holds)."""
    for index, arg in enumerate(command):
        if arg.startswith("--node-monitor-grace-period="):
            return duration_s(arg.split("=", 1)[1])
        if arg == "--node-monitor-grace-period" and index + 1 < len(command):
            return duration_s(command[index + 1])
    return None


# -- nodes ----------------------------------------------------------------------------------------


def is_ready(sample: Mapping[str, Any]) -> bool:
    """A Node sample's Ready condition is True."""
    return str(sample.get("ready", "")).startswith("True/")


def no_execute_taint(sample: Mapping[str, Any]) -> str | None:
    """The unreachable or not-ready NoExecute taint the sample carries, if any."""
    return next((t for t in sample.get("taints") or [] if t in NO_EXECUTE), None)


def schedulable(sample: Mapping[str, Any]) -> bool:
    """Ready, not cordoned, and without a taint that keeps ordinary pods off (kind's control plane
    has node-role.kubernetes.io/control-plane:NoSchedule)."""
    hard = [t for t in sample.get("taints") or [] if t.endswith((":NoSchedule", ":NoExecute"))]
    return is_ready(sample) and not sample.get("unschedulable") and not hard


def latest(samples: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The last sample of each node (deleted nodes left out)."""
    found: dict[str, Mapping[str, Any]] = {}
    for sample in samples:
        if sample.get("deleted"):
            found.pop(str(sample.get("name")), None)
        else:
            found[str(sample.get("name"))] = sample
    return found


def first_seen(
    samples: Iterable[Mapping[str, Any]],
    node: str,
    since: float,
    *,
    ready: bool | None = None,
    tainted: bool | None = None,
) -> float | None:
    """Wall time of the first sample of `node` at or after `since` whose Ready state is `ready`
    and whose NoExecute taint presence is `tainted` (None: either); None if never seen."""
    for sample in samples:
        if sample.get("name") != node or sample.get("deleted") or float(sample["wall"]) < since:
            continue
        if ready is not None and is_ready(sample) != ready:
            continue
        if tainted is not None and (no_execute_taint(sample) is not None) != tainted:
            continue
        return float(sample["wall"])
    return None


def state_text(sample: Mapping[str, Any] | None) -> str:
    """A node sample in words, for a failure message."""
    if sample is None:
        return "never seen"
    taints = ", ".join(sample.get("taints") or []) or "no taints"
    return f"Ready {sample.get('ready')}, {taints}"


# -- pods -----------------------------------------------------------------------------------------


def tolerations_s(pod: Mapping[str, Any]) -> dict[str, int | None]:
    """The admitted pod's tolerationSeconds for the unreachable and not-ready NoExecute taints
    (a key it does not tolerate is left out; None: tolerated for ever)."""
    found: dict[str, int | None] = {}
    for toleration in (pod.get("spec") or {}).get("tolerations") or []:
        key = toleration.get("key")
        if key in (UNREACHABLE, NOT_READY) and toleration.get("effect") in (None, "NoExecute"):
            seconds = toleration.get("tolerationSeconds")
            found[str(key)] = int(seconds) if seconds is not None else None
    return found


def toleration_problems(pods: Sequence[Mapping[str, Any]], expected_s: int) -> list[str]:
    """Each admitted pod tolerates both taints for exactly `expected_s` seconds."""
    if not pods:
        return ["no pod to read the tolerations of"]
    problems = []
    for pod in pods:
        seen = tolerations_s(pod)
        for key in (UNREACHABLE, NOT_READY):
            if seen.get(key, -1) != expected_s:
                shown = "not tolerated" if key not in seen else f"{seen[key]}"
                problems.append(
                    f"pod/{(pod.get('metadata') or {}).get('name')} spec.tolerations {key}: "
                    f"expected tolerationSeconds {expected_s}, got {shown}"
                )
    return problems


def by_node(placed: Mapping[str, str]) -> dict[str, list[str]]:
    """Pod name -> node, turned into node -> its pods (sorted)."""
    found: dict[str, list[str]] = {}
    for pod, node in sorted(placed.items()):
        found.setdefault(node, []).append(pod)
    return found


def first_terminating(history: Sequence[tuple[float, float, Any]]) -> float | None:
    """Wall time the recorder first saw the pod terminating (or deleted); None if never."""
    for _, wall, view in history:
        if view is None or view.terminating:
            return float(wall)
    return None


# -- bounds and traffic ---------------------------------------------------------------------------


def lag_problem(
    what: str, start: float | None, end: float | None, *, low_s: float, high_s: float
) -> str | None:
    """`end` came between `low_s` and `high_s` after `start`; a sentence when not (or unseen)."""
    if start is None:
        return f"{what}: its start was never recorded"
    if end is None:
        return f"{what}: not seen (expected {low_s:.1f}..{high_s:.1f}s after)"
    lag = end - start
    if not low_s <= lag <= high_s:
        return f"{what}: {lag:.1f}s after, expected {low_s:.1f}..{high_s:.1f}s"
    return None


def failed_window(answers: Sequence[Answer]) -> tuple[int, float | None, float | None]:
    """(failed requests, first failed start, last failed end)."""
    failed = [a for a in answers if not a.ok]
    if not failed:
        return 0, None, None
    return len(failed), min(a.start for a in failed), max(a.end for a in failed)


def failures_outside(answers: Sequence[Answer], start: float, end: float) -> list[Answer]:
    """Failed requests that started before `start` or after `end`: outside the window in which
    the cluster allows them."""
    return [a for a in answers if not a.ok and not start <= a.start <= end]


def answered_by(
    answers: Sequence[Answer], pods: Iterable[str], start: float, end: float
) -> list[Answer]:
    """Answers from `pods` to requests that started in [start, end]."""
    wanted = set(pods)
    return [a for a in answers if a.ok and a.pod in wanted and start <= a.start <= end]

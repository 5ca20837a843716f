"""The failed rollout's decisions, from what was recorded: when the Deployment reported
ProgressDeadlineExceeded, how many pods the broken ReplicaSet made, whether availability held,
which ReplicaSet an undo goes back to (what `kubectl rollout undo` reads), and when capacity was
restored. Pure functions of samples, pod entries and API objects; each problem is a sentence that
names the part the evidence points at."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from suite.traffic import Answer

DEPLOYMENT_CONTROLLER = "the deployment controller (kube-controller-manager)"
REPLICASET_CONTROLLER = "the ReplicaSet controller (kube-controller-manager)"
#: Where a Deployment's ReplicaSets keep the revision they stand for, and the label that ties a
#: ReplicaSet's pods to its template (an undo copies the template without it, as kubectl does).
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"
EXCEEDED = "False/ProgressDeadlineExceeded"
COMPLETE = "True/NewReplicaSetAvailable"


def progressing(sample: Mapping[str, Any]) -> str:
    """A Deployment sample's Progressing condition as "status/reason" ("" before any)."""
    return str((sample.get("conditions") or {}).get("Progressing") or "")


def first_with_progressing(
    samples: Iterable[Mapping[str, Any]], wanted: str, *, since: float, generation: int
) -> float | None:
    """Wall time of the first Deployment sample at or after `since` that had observed
    `generation` and whose Progressing condition is `wanted` ("status/reason")."""
    for sample in samples:
        if sample.get("deleted") or float(sample["wall"]) < since:
            continue
        if int(sample.get("observed_generation") or 0) < generation:
            continue
        if progressing(sample) == wanted:
            return float(sample["wall"])
    return None


def deadline_problem(
    started: float,
    exceeded: float | None,
    *,
    deadline_s: float,
    margin_s: float,
    last_seen: str,
) -> str | None:
    """Progressing=False/ProgressDeadlineExceeded must come no sooner than the admitted
    progressDeadlineSeconds after the rollout began (less 1 s: its lastUpdateTime is stored in
    whole seconds) and no later than that plus `margin_s`."""
    if exceeded is None:
        return (
            f"{DEPLOYMENT_CONTROLLER} never reported Progressing=False with reason "
            f"ProgressDeadlineExceeded (progressDeadlineSeconds {deadline_s:g}, allowed up to "
            f"{deadline_s + margin_s:g}s); last Progressing seen: {last_seen or '<none>'}"
        )
    took = exceeded - started
    if took < deadline_s - 1.0:
        return (
            f"{DEPLOYMENT_CONTROLLER} reported ProgressDeadlineExceeded {took:.1f}s after the "
            f"rollout began, before its progressDeadlineSeconds ({deadline_s:g}s) had passed"
        )
    if took > deadline_s + margin_s:
        return (
            f"{DEPLOYMENT_CONTROLLER} reported ProgressDeadlineExceeded {took:.1f}s after the "
            f"rollout began, later than progressDeadlineSeconds {deadline_s:g}s + "
            f"{margin_s:g}s margin"
        )
    return None


def pods_of(entries: Iterable[Mapping[str, Any]], owner: str) -> list[str]:
    """The pods (recorder entries: `name`, `state` with `owner`) that `owner` ever owned."""
    names = {
        str(entry["name"])
        for entry in entries
        if (entry.get("state") or {}).get("owner") == owner and owner
    }
    return sorted(names)


def broken_pod_problems(
    pods: Sequence[str],
    replicaset_samples: Iterable[Mapping[str, Any]],
    broken: str,
    *,
    max_surge: int,
    max_unavailable: int,
) -> list[str]:
    """The broken ReplicaSet may ask for, and hold, at most maxSurge + maxUnavailable pods: its
    pods never become available, so the Deployment controller may surge by maxSurge and take
    away maxUnavailable old ones, no more. None at all is a problem too (nothing was rolled)."""
    bound = max_surge + max_unavailable
    asked = [
        int(s.get("spec_replicas") or 0)
        for s in replicaset_samples
        if s.get("name") == broken and not s.get("deleted")
    ]
    problems = []
    if not pods:
        problems.append(f"replicaset/{broken} made no pod: the broken version was never rolled")
    if len(pods) > bound:
        problems.append(
            f"replicaset/{broken} made {len(pods)} pods ({', '.join(pods)}), more than maxSurge "
            f"{max_surge} + maxUnavailable {max_unavailable} = {bound}"
        )
    if asked and max(asked) > bound:
        problems.append(
            f"{DEPLOYMENT_CONTROLLER} scaled replicaset/{broken} to {max(asked)}, more than "
            f"maxSurge {max_surge} + maxUnavailable {max_unavailable} = {bound} while none of "
            "its pods was available"
        )
    return problems


def availability_problems(
    samples: Sequence[Mapping[str, Any]],
    *,
    replicas: int,
    max_unavailable: int,
    since: float,
    until: float,
) -> list[str]:
    """The Deployment's availableReplicas (as recorded) never below replicas - maxUnavailable
    from `since` to `until` (the sample in force at `since` counts). No sample there: a problem."""
    floor = replicas - max_unavailable
    window = [s for s in samples if not s.get("deleted") and since <= float(s["wall"]) <= until]
    before = [s for s in samples if not s.get("deleted") and float(s["wall"]) < since]
    judged = before[-1:] + window
    if not judged:
        return ["no Deployment status was recorded during the rollout: availability not proven"]
    return [
        f"availableReplicas {s.get('available')} at +{max(0.0, float(s['wall']) - since):.1f}s "
        f"(fewer than {replicas} replicas - maxUnavailable {max_unavailable} = {floor}; "
        f"{DEPLOYMENT_CONTROLLER} takes old pods away only as new ones become available)"
        for s in judged
        if int(s.get("available") or 0) < floor
    ]


def revision_of(obj: Mapping[str, Any]) -> int:
    """A Deployment's or ReplicaSet's revision annotation (0 when absent or not a number)."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def previous_replicaset(
    replicasets: Iterable[Mapping[str, Any]], current_revision: int
) -> Mapping[str, Any] | None:
    """What `kubectl rollout undo` goes back to: the ReplicaSet with the highest revision below
    the Deployment's current one (None when there is no earlier revision)."""
    earlier = [rs for rs in replicasets if 0 < revision_of(rs) < current_revision]
    return max(earlier, key=revision_of, default=None)


def undo_template(replicaset: Mapping[str, Any]) -> dict[str, Any]:
    """The ReplicaSet's pod template without its pod-template-hash label, as `kubectl rollout
    undo` copies it back into the Deployment."""
    template: dict[str, Any] = copy.deepcopy(dict((replicaset.get("spec") or {})["template"]))
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(TEMPLATE_HASH, None)
    return template


def restored_problem(
    deployment: Mapping[str, Any] | None,
    broken: Mapping[str, Any] | None,
    *,
    replicas: int,
    generation: int,
) -> str | None:
    """Full capacity (None) once the Deployment observed the undo's `generation` and every
    replica is updated, Ready and available, and the broken ReplicaSet is scaled to 0 with no
    pod left; else what is still missing."""
    if deployment is None:
        return "no Deployment status recorded yet"
    seen = []
    observed = int(deployment.get("observed_generation") or 0)
    if observed < generation:
        seen.append(f"generation {generation} not observed yet (at {observed})")
    for key in ("replicas", "updated", "ready", "available"):
        if int(deployment.get(key) or 0) != replicas:
            seen.append(f"{key} {deployment.get(key)}/{replicas}")
    rs: Mapping[str, Any] = broken or {"deleted": True}
    if not rs.get("deleted") and (
        int(rs.get("spec_replicas") or 0) or int(rs.get("replicas") or 0)
    ):
        seen.append(
            f"replicaset/{rs.get('name')} at {rs.get('spec_replicas')} asked, "
            f"{rs.get('replicas')} pods"
        )
    return "; ".join(seen) or None


def answered_by(answers: Iterable[Answer], pods: Iterable[str]) -> list[Answer]:
    """The answers that came from any of `pods`."""
    wanted = set(pods)
    return [a for a in answers if a.ok and a.pod in wanted]


def failed_problem(answers: Sequence[Answer]) -> str | None:
    """Bound 0: every request through the Service is answered, the whole run."""
    failed = [a for a in answers if not a.ok]
    if not answers:
        return "no request was sent: nothing shows the old pods kept serving"
    if not failed:
        return None
    kinds: dict[str, int] = {}
    for answer in failed:
        why = answer.error or f"HTTP {answer.status}"
        kinds[why] = kinds.get(why, 0) + 1
    common = ", ".join(f"{why} x{n}" for why, n in sorted(kinds.items(), key=lambda i: -i[1])[:3])
    return f"{len(failed)} of {len(answers)} requests failed ({common}), expected none"

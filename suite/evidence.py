"""What a failing test carries: pod logs (current and previous container), events, the timeline.

Collected while the test namespace still exists (the report hook runs before fixture teardown),
each piece bounded in size, and never raising: evidence that cannot be read says so instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from suite.kube import EVENTS, PODS, Kube, KubeError, container_statuses, list_objects, name_of
from suite.recorder import timeline_text

SECTION_PREFIX = "kube-alive"
TAIL_LINES = 200
MAX_SECTION_CHARS = 20_000


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"... ({len(text) - limit} characters left out) ...\n" + text[-limit:]


def pod_logs(
    kube: Kube,
    namespace: str,
    pod: str,
    container: str,
    *,
    previous: bool,
    tail_lines: int = TAIL_LINES,
) -> str:
    """The last `tail_lines` log lines of a container (or of its previous instance)."""
    query: dict[str, str | int | bool] = {
        "container": container,
        "tailLines": tail_lines,
        "timestamps": True,
    }
    if previous:
        query["previous"] = True
    result = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query)
    return result if isinstance(result, str) else str(result)


def format_events(events: Sequence[Mapping[str, Any]]) -> str:
    """Events, oldest first, one per line: time, type, reason, object, count, message."""

    def when(event: Mapping[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    lines = []
    for event in sorted(events, key=when):
        involved = event.get("involvedObject") or {}
        target = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
        count = int(event.get("count") or 1)
        message = " ".join(str(event.get("message") or "").split())
        lines.append(
            f"{when(event)} {event.get('type', '')} {event.get('reason', '')} {target}"
            + (f" (x{count})" if count > 1 else "")
            + f": {message}"
        )
    return "\n".join(lines)


def collect(
    kube: Kube, namespace: str, recording: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """Report sections (title, text) for a failed test in `namespace`."""
    sections: list[tuple[str, str]] = []
    try:
        events, _ = list_objects(kube, EVENTS, namespace)
        sections.append(
            (f"{SECTION_PREFIX}: events in {namespace}", _clip(format_events(events)) or "(none)")
        )
    except KubeError as error:
        sections.append(
            (f"{SECTION_PREFIX}: events in {namespace}", f"could not read events: {error}")
        )
    try:
        pods, _ = list_objects(kube, PODS, namespace)
    except KubeError as error:
        sections.append((f"{SECTION_PREFIX}: pods in {namespace}", f"could not list pods: {error}"))
        pods = []
    for pod in sorted(pods, key=name_of):
        name = name_of(pod)
        restarts = {
            str(s.get("name")): int(s.get("restartCount") or 0) for s in container_statuses(pod)
        }
        for container in (pod.get("spec") or {}).get("containers") or []:
            cname = str(container.get("name"))
            variants = [False] + ([True] if restarts.get(cname, 0) > 0 else [])
            for previous in variants:
                title = f"{SECTION_PREFIX}: logs pod/{name} -c {cname}" + (
                    " --previous" if previous else ""
                )
                try:
                    text = pod_logs(kube, namespace, name, cname, previous=previous)
                except KubeError as error:
                    text = f"could not read logs: {error}"
                sections.append((title, _clip(text) or "(empty)"))
    if recording is not None:
        sections.append(
            (f"{SECTION_PREFIX}: timeline of {namespace}", _clip(timeline_text(recording)))
        )
    return sections

"""Reading a test's recording (the dicts of `Recorder.to_dict()` and `ProbeResult.to_dict()`) into
what the report draws: the scenario's marks, one lane of states per pod, answers on the
recording's clock, pod counts over time.

Every time here is the recording's `t`: seconds since the test's recorder started. Answers carry
the prober's wall clock; they are moved onto `t` with the recording's `started_wall`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from suite import images
from suite.podcount import Change, Reading, replay

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Mark:
    """One action of the scenario (`recorder.mark`), numbered in time order."""

    number: int
    t: float
    label: str
    detail: str = ""

    @property
    def text(self) -> str:
        """Label and detail, for a tooltip or a list."""
        return f"{self.label} ({self.detail})" if self.detail else self.label


def marks_of(recording: Record | None) -> list[Mark]:
    """The scenario's marks, oldest first, numbered from 1."""
    if not recording:
        return []
    entries = sorted(recording.get("marks") or [], key=lambda mark: float(mark.get("t", 0.0)))
    result = []
    for number, entry in enumerate(entries, start=1):
        extra = {k: v for k, v in entry.items() if k not in ("t", "wall", "label")}
        detail = ", ".join(f"{key} {value}" for key, value in sorted(extra.items()))
        result.append(Mark(number, float(entry["t"]), str(entry.get("label", "")), detail))
    return result


def mark_t(marks: Sequence[Mark], label: str) -> float | None:
    """`t` of the last mark with this label."""
    found = [mark.t for mark in marks if mark.label == label]
    return found[-1] if found else None


def mark_detail(recording: Record | None, label: str, key: str) -> str | None:
    """A value stored with a mark (e.g. the `pod` of "infect")."""
    for entry in reversed((recording or {}).get("marks") or []):
        if entry.get("label") == label and key in entry:
            return str(entry[key])
    return None


@dataclass(frozen=True)
class Answer:
    """One request the prober sent, on the recording's clock."""

    t: float
    took: float
    ok: bool
    status: int | None
    pod: str | None
    version: str | None
    error: str | None

    @property
    def why(self) -> str:
        """What went wrong, in a few words."""
        return self.error or (f"HTTP {self.status}" if self.status else "no answer")


def answers_of(probe: Record, recording: Record | None) -> list[Answer]:
    """A probe's answers on the recording's clock (or the probe's own, without a recording)."""
    origin = float((recording or {}).get("started_wall") or probe.get("started") or 0.0)
    fields = list(probe.get("answer_fields") or [])
    result = []
    for row in probe.get("answers") or []:
        item = dict(zip(fields, row, strict=False)) if isinstance(row, list) else dict(row)
        start = float(item.get("start", 0.0))
        status = item.get("status")
        result.append(
            Answer(
                t=start - origin,
                took=float(item.get("end", start)) - start,
                ok=bool(item.get("ok")),
                status=int(status) if status is not None else None,
                pod=str(item["pod"]) if item.get("pod") is not None else None,
                version=str(item["version"]) if item.get("version") is not None else None,
                error=str(item["error"]) if item.get("error") else None,
            )
        )
    result.sort(key=lambda answer: answer.t)
    return result


def probe_window(probe: Record, recording: Record | None) -> tuple[float, float] | None:
    """When the probe ran, on the recording's clock."""
    origin = float((recording or {}).get("started_wall") or 0.0)
    started, ended = probe.get("started"), probe.get("ended")
    answers = answers_of(probe, recording)
    lo = float(started) - origin if started else (answers[0].t if answers else None)
    hi = float(ended) - origin if ended else (answers[-1].t + answers[-1].took if answers else None)
    if lo is None or hi is None:
        return None
    if answers:
        lo, hi = min(lo, answers[0].t), max(hi, max(a.t + a.took for a in answers))
    return lo, hi


def app_of(owner: str, name: str) -> str:
    """The Deployment a pod belongs to: its ReplicaSet's name without the template hash."""
    base = owner or name
    return base.rsplit("-", 1)[0] if "-" in base else base


def tag_of(image: str) -> str:
    """The version an image reference names (`...:v2` -> `v2`, and `...:v2-<digest>` too: the
    digest is the same for every pod of a run, and the page shows it once, with the cluster)."""
    last = image.rsplit("/", 1)[-1]
    return images.version_of(last.rsplit(":", 1)[1]) if ":" in last else ""


@dataclass
class Span:
    """A stretch of time a pod spent in one state."""

    start: float
    end: float
    status: str
    detail: str = ""


@dataclass
class Lane:
    """One pod's life in the recording."""

    name: str
    app: str
    tag: str
    first_seen: float
    spans: list[Span] = field(default_factory=list)
    restarts: list[tuple[float, str]] = field(default_factory=list)
    probe_failures: list[tuple[float, str]] = field(default_factory=list)
    warnings: list[tuple[float, str]] = field(default_factory=list)
    deleted: float | None = None


def _container_detail(state: Mapping[str, Any]) -> str:
    parts = []
    for container in state.get("containers") or []:
        text = f"{container.get('name')} {container.get('state')}"
        if container.get("reason"):
            text += f" ({container['reason']})"
        if container.get("exit_code") is not None:
            text += f" exit {container['exit_code']}"
        parts.append(text)
    return "; ".join(parts)


def lanes_of(recording: Record | None, end: float) -> list[Lane]:
    """One lane per pod, in order of appearance (the prober, the traffic source, last)."""
    if not recording:
        return []
    lanes: dict[str, Lane] = {}
    restarts_seen: dict[str, int] = {}
    for entry in sorted(recording.get("pods") or [], key=lambda e: float(e["t"])):
        t, name, state = float(entry["t"]), str(entry["name"]), entry.get("state")
        lane = lanes.get(name)
        if state is None:
            if lane is not None:
                lane.deleted = t
                if lane.spans:
                    lane.spans[-1].end = t
            continue
        containers = state.get("containers") or [{}]
        restarts = int(state.get("restarts") or 0)
        if lane is None:
            lane = Lane(
                name=name,
                app=app_of(str(state.get("owner", "")), name),
                tag=tag_of(str(containers[0].get("image", ""))),
                first_seen=t,
            )
            lanes[name] = lane
            restarts_seen[name] = restarts
        if restarts > restarts_seen[name]:
            restarts_seen[name] = restarts
            last = containers[0]
            lane.restarts.append(
                (
                    t,
                    f"restart {restarts}: the previous container ended "
                    f"{last.get('last_reason') or '?'} (exit {last.get('last_exit_code')})",
                )
            )
        status = str(state.get("status") or "Unknown")
        detail = _container_detail(state)
        if lane.spans and lane.spans[-1].status == status:
            lane.spans[-1].detail = detail
            continue
        if lane.spans:
            lane.spans[-1].end = t
        lane.spans.append(Span(t, end, status, detail))
    for event in recording.get("events") or []:
        target = str(event.get("object", ""))
        if not target.startswith("pod/") or target[4:] not in lanes:
            continue
        lane = lanes[target[4:]]
        text = f"{event.get('reason')}: {event.get('message', '')}"
        if event.get("reason") == "Unhealthy":
            lane.probe_failures.append((float(event["t"]), text))
        elif event.get("type") == "Warning":
            lane.warnings.append((float(event["t"]), text))
    return sorted(lanes.values(), key=lambda lane: (lane.app == "prober", lane.first_seen))


def end_of(recording: Record | None, probes: Iterable[Record] = ()) -> float:
    """The last moment anything was recorded (at least 1 s)."""
    times = [1.0]
    if recording:
        for key in ("marks", "pods", "events", "deployments", "replicasets", "hpas"):
            times.extend(float(item["t"]) for item in recording.get(key) or [] if "t" in item)
    for probe in probes:
        window = probe_window(probe, recording)
        if window:
            times.append(window[1])
    return max(times)


@dataclass(frozen=True)
class Count:
    """Pods of one app right after a change: not terminating, of those Ready, and all."""

    t: float
    pods: int
    ready: int
    total: int


def pod_counts(recording: Record | None, app: str) -> list[Count]:
    """Replay the pod log of one app into counts over time (`suite.podcount`, as the recorder's
    `pod_moments`; entries at the same instant are one change)."""
    changes = [
        Change(
            float(entry["t"]),
            float(entry.get("wall") or 0.0),
            str(entry["name"]),
            entry.get("state"),
            round(float(entry["t"]), 6),
        )
        for entry in sorted((recording or {}).get("pods") or [], key=lambda e: float(e["t"]))
    ]
    reading: Reading[Mapping[str, Any]] = Reading(
        counted=lambda state: (
            app_of(str(state.get("owner", "")), str(state.get("name", ""))) == app
        ),
        terminating=lambda state: bool(state.get("terminating")),
        ready=lambda state: bool(state.get("ready")),
        words=lambda state: str(state.get("status", "")),
    )
    return [Count(m.t, m.pods, m.ready, m.total) for m in replay(changes, reading)]


def samples_of(recording: Record | None, key: str, name: str | None = None) -> list[Record]:
    """Recorded samples (`deployments`, `replicasets`, `hpas`), optionally of one object."""
    return [
        sample
        for sample in (recording or {}).get(key) or []
        if not sample.get("deleted") and (name is None or sample.get("name") == name)
    ]

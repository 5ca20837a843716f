"""The failed rollout in the report: its headline (the deadline, the broken pods, the undo, the
requests), its chart (requests by version over the Ready pods of each ReplicaSet) and its
figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import (
    LIMIT,
    Below,
    Panel,
    TimeFrame,
    draw_hline,
    draw_lines,
    draw_y_axis,
    traffic_chart,
)
from suite.report.data import Answer, Mark, Record, answers_of, probe_window, samples_of, tag_of
from suite.report.svg import BLUE, ORANGE, PURPLE, VERMILION, Look, Stroke, Svg
from suite.report.words import num, secs

#: One line look per ReplicaSet, in the order they appear.
RS_STROKES = (
    Stroke(BLUE, None, 2.6),
    Stroke(VERMILION, "7 4", 2.4),
    Stroke(ORANGE, "2 3", 2.4),
    Stroke(PURPLE, "9 3 2 3", 2.2),
)


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """ProgressDeadlineExceeded after so long, the broken pods, the undo, the requests."""
    del recording
    if "broken_pods" not in f:
        return None
    text = "broken rollout stopped"
    if f.get("exceeded_after_s") is not None:
        text += f", ProgressDeadlineExceeded {secs(f['exceeded_after_s'])} s after it began"
        if f.get("progress_deadline_s") is not None:
            text += f" (deadline {secs(f['progress_deadline_s'])} s)"
    text += f"; {num(f['broken_pods'])} broken pod(s)"
    if f.get("min_available") is not None:
        text += f", never fewer than {num(f['min_available'])} available"
    if f.get("undo_to_restored_s") is not None:
        text += f"; undo restored full capacity in {secs(f['undo_to_restored_s'])} s"
    if f.get("requests") is not None:
        text += f"; {num(f.get('failed') or 0)} of {num(f['requests'])} requests failed"
    return text


def replicaset_panel(
    recording: Record | None, app: str, replicas: int | None, height: float = 110
) -> tuple[float, Below]:
    """Ready pods of each of the app's ReplicaSets over time (from the recorder's samples),
    against the Deployment's replicas."""
    sets = [
        s
        for s in samples_of(recording, "replicasets")
        if str(s.get("name", "")).startswith(f"{app}-")
    ]
    names: list[str] = []
    for sample in sets:
        if sample["name"] not in names:
            names.append(str(sample["name"]))

    def draw(svg: Svg, frame: TimeFrame, top: float) -> list[tuple[Look | Stroke, str]]:
        highest = max([int(s.get("ready") or 0) for s in sets] + [replicas or 0, 1]) + 1.0
        panel = Panel(top, height, highest, "Ready pods")
        draw_y_axis(svg, frame, panel)
        if replicas:
            draw_hline(svg, frame, panel, replicas, LIMIT, f"{replicas} replicas")
        lines = []
        entries: list[tuple[Look | Stroke, str]] = []
        for index, name in enumerate(names):
            own = [s for s in sets if s["name"] == name]
            stroke = RS_STROKES[index % len(RS_STROKES)]
            tag = tag_of(str(own[0].get("image") or ""))
            label = f"Ready pods of {name}" + (f" ({tag})" if tag else "")
            lines.append(
                (
                    stroke,
                    label,
                    [(float(s["t"]), int(s.get("ready") or 0) + 0.06 * index) for s in own],
                )
            )
            entries.append((stroke, label))
        draw_lines(svg, frame, panel, lines)
        return entries

    return height, draw


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests through the Service by the version that answered; beneath, the Ready pods of
    each ReplicaSet; the marks: the broken rollout, ProgressDeadlineExceeded, undo, restored."""
    del end
    recording = test.get("recording")
    probes = test.get("probes") or []
    figures = test.get("figures") or {}
    if not probes:
        return None
    probe = probes[0]
    window = probe_window(probe, recording)
    if window is None:
        return None
    app = str(probe.get("label") or "incver")
    replicas = figures.get("replicas")

    def by_version(answer: Answer) -> str:
        return answer.version or "?"

    answers = answers_of(probe, recording)
    return traffic_chart(
        answers,
        marks,
        window,
        prefix=prefix,
        series_of=by_version,
        order=sorted({a.version or "?" for a in answers if a.ok}),
        label_of=lambda version: f"version {version}",
        title="Requests through the failed rollout and the undo",
        below=replicaset_panel(recording, app, replicas if isinstance(replicas, int) else None),
    )


#: Its figures' words on the page.
FIGURE_WORDS = {
    "max_surge": "maxSurge",
    "max_unavailable": "maxUnavailable",
    "progress_deadline_s": "progressDeadlineSeconds, as admitted (s)",
    "progress_margin_s": "margin past the deadline for the deployment controller (s)",
    "restore_deadline_s": "undo to full capacity bound (s)",
    "by_version": "answers per version",
    "exceeded_after_s": "broken rollout began \u2192 ProgressDeadlineExceeded (s)",
    "undo_to_restored_s": "undo \u2192 full capacity (s)",
    "broken_pods": "pods the broken ReplicaSet made",
    "broken_replicaset": "the broken ReplicaSet",
    "undo_to_revision": "undone to revision",
    "min_available": "fewest available replicas (recorded)",
    "deployment_samples": "Deployment status changes recorded",
    "largest_traffic_gap_s": "largest gap between requests (s)",
    "traffic_rate_per_s": "requests per second",
}

"""The report's pictures, as inline SVG: the pod timeline every behaviour gets, and each
behaviour's own chart.

Charts on a time axis use the recording's clock (seconds since the test's recorder started), so
a moment in a chart is the same number on the timeline above it, and the scenario's actions are
the same numbered marks on both.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from suite.report.data import Answer, Lane, Mark, answers_of, mark_detail, probe_window
from suite.report.svg import (
    BLUE,
    FAILED,
    GREEN,
    GREY,
    ORANGE,
    SERIES,
    TIMES,
    VERMILION,
    Look,
    Scale,
    Stroke,
    Svg,
    fmt_number,
    path_of,
    step_points,
    tick_label,
    ticks,
)

WIDTH = 960
LABEL_W = 236
RIGHT = 24
LANE_H = 20
LANE_GAP = 7
BADGE = 15
AXIS_H = 30
#: Pod states: colour and pattern (the legend and the in-span words name them too).
STATUS_LOOKS = {
    "Pending": Look("#d4d4d4", "dots"),
    "Running": Look(ORANGE, "backhatch"),
    "Ready": Look(GREEN),
    "Terminating": Look(GREY, "hatch"),
    "Failed": FAILED,
    "Succeeded": Look("#bdbdbd", "horizontal"),
    "Unknown": Look("#eeeeee", "grid"),
}
STATUS_WORDS = {"Running": "Running, not Ready"}
TRAFFIC_LOOK = Look("#cfe3f3", "horizontal", ink=BLUE)
LOAD_LOOK = Look("#fbe3b3", "backhatch", ink=ORANGE)
MAX_BINS = 60
#: Bins wide enough to hold this many requests on average (thinner bins only show noise).
MIN_PER_BIN = 8
BIN_CHOICES = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0)


def _fits(text: str, width: float) -> bool:
    return len(text) * 7.0 + 8 <= width  # bold labels


def short_label(text: str, limit: int = 36) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TimeFrame:
    """An x axis of time shared by the parts of one image."""

    def __init__(self, svg: Svg, t0: float, t1: float, *, left: float = LABEL_W) -> None:
        self.svg = svg
        self.t0, self.t1 = t0, max(t1, t0 + 1.0)
        self.left, self.right = left, svg.width - RIGHT
        self.x = Scale(self.t0, self.t1, left, self.right)

    def clamp(self, t: float) -> float:
        """x of `t`, held inside the frame."""
        return self.x(min(max(t, self.t0), self.t1))

    def axis(self, y: float, caption: str = "seconds since the test began recording") -> None:
        """Ticks and labels along y, and a caption under them."""
        group = self.svg.group(cls="axis")
        self.svg.el(group, "line", x1=self.left, y1=y, x2=self.right, y2=y)
        for value in ticks(self.t0, self.t1, 10):
            x = self.x(value)
            self.svg.el(group, "line", x1=x, y1=y, x2=x, y2=y + 4)
            self.svg.text(group, x, y + 15, f"{tick_label(value)} s", anchor="middle")
        self.svg.text(group, self.right, y + 28, caption, anchor="end", cls="caption")

    def grid(self, top: float, bottom: float) -> None:
        """Faint vertical lines at the ticks."""
        group = self.svg.group(cls="grid")
        for value in ticks(self.t0, self.t1, 10):
            x = self.x(value)
            self.svg.el(group, "line", x1=x, y1=top, x2=x, y2=bottom)

    def badge_rows(self, marks: Sequence[Mark]) -> list[int]:
        """A row per mark so that numbered badges do not overlap (at most 3 rows)."""
        rows: list[int] = []
        last_x: list[float] = []
        for mark in marks:
            x = self.clamp(mark.t)
            for row, previous in enumerate(last_x):
                if x - previous >= BADGE + 2:
                    rows.append(row)
                    last_x[row] = x
                    break
            else:
                if len(last_x) < 3:
                    rows.append(len(last_x))
                    last_x.append(x)
                else:
                    rows.append(2)
                    last_x[2] = x
        return rows

    def marks(self, marks: Sequence[Mark], top: float, bottom: float) -> float:
        """Numbered badges from `top` and a dashed line per mark down to `bottom`; returns the
        height the badges took."""
        if not marks:
            return 0.0
        rows = self.badge_rows(marks)
        height = (max(rows) + 1) * (BADGE + 2)
        group = self.svg.group(cls="marks")
        for mark, row in zip(marks, rows, strict=True):
            x = self.clamp(mark.t)
            cy = top + row * (BADGE + 2) + BADGE / 2
            item = self.svg.group(group, cls="mark")
            self.svg.tip(item, f"{mark.number}: {mark.text} at {mark.t:.1f} s")
            self.svg.el(item, "line", x1=x, y1=cy + BADGE / 2, x2=x, y2=bottom, cls="mark-line")
            self.svg.el(item, "circle", cx=x, cy=cy, r=BADGE / 2, cls="badge")
            self.svg.text(item, x, cy + 4, str(mark.number), anchor="middle", cls="badge-text")
        return height

    def band(self, t0: float, t1: float, top: float, bottom: float, look: Look, label: str) -> None:
        """A shaded stretch of time (load, traffic), named at its top left."""
        x0, x1 = self.clamp(t0), self.clamp(t1)
        group = self.svg.group(cls="band")
        self.svg.tip(group, f"{label}: {t0:.1f} s to {t1:.1f} s")
        self.svg.el(
            group,
            "rect",
            x=x0,
            y=top,
            width=max(1.0, x1 - x0),
            height=bottom - top,
            fill=self.svg.fill(look),
            fill_opacity=0.45,
        )
        self.svg.text(group, x0 + 3, top + 11, label, cls="band-label")


# -- the timeline ----------------------------------------------------------------------------------


def draw_cross(svg: Svg, parent: ET.Element, x: float, y: float, size: float = 4.0) -> None:
    left, right, top, bottom = x - size, x + size, y - size, y + size
    d = f"M{left},{top} L{right},{bottom} M{left},{bottom} L{right},{top}"
    svg.el(parent, "path", d=d, cls="probe-fail")


def timeline(
    lanes: Sequence[Lane],
    marks: Sequence[Mark],
    end: float,
    *,
    prefix: str,
    traffic: Sequence[tuple[str, float, float, Sequence[float]]] = (),
) -> Markup:
    """One lane per pod (its states as spans; restarts, probe failures and warnings marked), a
    lane per traffic run (failed requests ticked), the scenario's marks across all of them."""
    rows = len(lanes) + len(traffic)
    probe = Svg(WIDTH, 10, prefix=prefix, label="", kind="timeline")
    frame = TimeFrame(probe, 0.0, end)
    badge_h = (max(frame.badge_rows(marks)) + 1) * (BADGE + 2) if marks else 0
    top = 6 + badge_h + 4
    lanes_bottom = top + rows * (LANE_H + LANE_GAP)
    legend_top = lanes_bottom + AXIS_H + 10
    height = int(legend_top + 44)
    svg = Svg(
        WIDTH,
        height,
        prefix=prefix,
        label=f"Timeline: {len(lanes)} pods, {len(marks)} scenario actions, {end:.0f} s",
        kind="timeline",
    )
    frame = TimeFrame(svg, 0.0, end)
    frame.grid(top - 2, lanes_bottom)
    for index, lane in enumerate(lanes):
        y = top + index * (LANE_H + LANE_GAP)
        group = svg.group(cls="lane")
        label = lane.name + (f" ({lane.tag})" if lane.tag and _many_tags(lanes) else "")
        svg.tip(svg.text(group, LABEL_W - 8, y + 14, short_label(label), anchor="end"), label)
        for span in lane.spans:
            x0, x1 = frame.clamp(span.start), frame.clamp(span.end)
            look = STATUS_LOOKS.get(span.status, STATUS_LOOKS["Unknown"])
            word = STATUS_WORDS.get(span.status, span.status)
            rect = svg.el(
                group,
                "rect",
                x=x0,
                y=y,
                width=max(1.0, x1 - x0),
                height=LANE_H,
                fill=svg.fill(look),
                cls=f"span span-{span.status.lower()}",
            )
            svg.tip(
                rect,
                f"{lane.name}: {word} from {span.start:.1f} s to {span.end:.1f} s "
                f"({span.end - span.start:.1f} s); {span.detail}",
            )
            if _fits(word, x1 - x0):
                svg.text(group, x0 + 4, y + 14, word, cls="span-label")
        for t, text in lane.restarts:
            x = frame.clamp(t)
            diamond = svg.el(
                group,
                "path",
                d=f"M{x},{y - 3} L{x + 6},{y + LANE_H / 2} L{x},{y + LANE_H + 3} "
                f"L{x - 6},{y + LANE_H / 2} Z",
                cls="restart",
            )
            svg.tip(diamond, f"{lane.name}: {text} (at {t:.1f} s)")
        for t, text in lane.probe_failures:
            item = svg.group(group, cls="probe-failure")
            svg.tip(item, f"{lane.name}: {text} (at {t:.1f} s)")
            draw_cross(svg, item, frame.clamp(t), y + LANE_H / 2)
        for t, text in lane.warnings:
            x = frame.clamp(t)
            item = svg.el(
                group,
                "path",
                d=f"M{x},{y + 2} L{x + 5},{y + 11} L{x - 5},{y + 11} Z",
                cls="warning",
            )
            svg.tip(item, f"{lane.name}: {text} (at {t:.1f} s)")
    for index, (label, t0, t1, failures) in enumerate(traffic):
        y = top + (len(lanes) + index) * (LANE_H + LANE_GAP)
        group = svg.group(cls="lane traffic")
        svg.text(group, LABEL_W - 8, y + 14, short_label(label), anchor="end")
        x0, x1 = frame.clamp(t0), frame.clamp(t1)
        svg.tip(
            svg.el(
                group,
                "rect",
                x=x0,
                y=y + 3,
                width=max(1.0, x1 - x0),
                height=LANE_H - 6,
                fill=svg.fill(TRAFFIC_LOOK),
                cls="span",
            ),
            f"{label}: from {t0:.1f} s to {t1:.1f} s",
        )
        seen: set[int] = set()
        for t in failures:
            x = frame.clamp(t)
            if int(x) in seen:
                continue
            seen.add(int(x))
            svg.el(group, "line", x1=x, y1=y, x2=x, y2=y + LANE_H, cls="fail-tick")
    frame.marks(marks, 6, lanes_bottom)
    frame.axis(lanes_bottom + 6)
    entries: list[tuple[Look | Stroke, str]] = [
        (STATUS_LOOKS[status], STATUS_WORDS.get(status, status))
        for status in ("Pending", "Running", "Ready", "Terminating")
    ]
    if any(
        span.status not in ("Pending", "Running", "Ready", "Terminating")
        for lane in lanes
        for span in lane.spans
    ):
        entries.append((STATUS_LOOKS["Failed"], "Failed / Succeeded / Unknown"))
    if traffic:
        entries.append((TRAFFIC_LOOK, "traffic (red ticks: failed requests)"))
    below = svg.legend(LABEL_W, legend_top, entries, width=WIDTH - LABEL_W - RIGHT)
    _symbol_legend(svg, LABEL_W, below - 2)
    return svg.markup()


def _many_tags(lanes: Sequence[Lane]) -> bool:
    return len({lane.tag for lane in lanes if lane.app != "prober"}) > 1


def _symbol_legend(svg: Svg, x: float, y: float) -> None:
    group = svg.group(cls="legend")
    svg.el(
        group,
        "path",
        d=f"M{x + 6},{y} L{x + 12},{y + 6} L{x + 6},{y + 12} L{x},{y + 6} Z",
        cls="restart",
    )
    svg.text(group, x + 18, y + 10, "container restart")
    x += 150
    draw_cross(svg, group, x + 6, y + 6)
    svg.text(group, x + 18, y + 10, "probe failed")
    x += 110
    svg.el(
        group, "path", d=f"M{x + 6},{y + 1} L{x + 11},{y + 10} L{x + 1},{y + 10} Z", cls="warning"
    )
    svg.text(group, x + 18, y + 10, "warning event")
    x += 125
    svg.el(group, "circle", cx=x + 6, cy=y + 6, r=6, cls="badge")
    svg.text(group, x + 6, y + 10, "1", anchor="middle", cls="badge-text")
    svg.text(group, x + 18, y + 10, "scenario action (listed below)")


# -- charts over time ------------------------------------------------------------------------------


def bin_width(span: float, requests: int = 0) -> float:
    """A round bin width that cuts `span` seconds into at most MAX_BINS bins, each holding about
    MIN_PER_BIN requests or more."""
    wanted = max(span / MAX_BINS, MIN_PER_BIN * span / requests if requests else 0.0)
    for width in BIN_CHOICES:
        if width >= wanted:
            return width
    return float(math.ceil(wanted))


@dataclass
class Panel:
    """One horizontal strip of a chart with its own y scale."""

    top: float
    height: float
    y_max: float
    title: str

    @property
    def bottom(self) -> float:
        """Its lower edge."""
        return self.top + self.height

    def y(self, value: float) -> float:
        """Pixels of a value."""
        return Scale(0.0, self.y_max, self.bottom, self.top)(value)


def draw_y_axis(svg: Svg, frame: TimeFrame, panel: Panel, unit: str = "") -> None:
    group = svg.group(cls="axis")
    svg.el(group, "line", x1=frame.left, y1=panel.top, x2=frame.left, y2=panel.bottom)
    svg.el(group, "line", x1=frame.left, y1=panel.bottom, x2=frame.right, y2=panel.bottom)
    for value in ticks(0.0, panel.y_max, 4):
        y = panel.y(value)
        svg.el(group, "line", x1=frame.left - 4, y1=y, x2=frame.left, y2=y)
        svg.el(group, "line", x1=frame.left, y1=y, x2=frame.right, y2=y, cls="gridline")
        svg.text(group, frame.left - 7, y + 4, f"{tick_label(value)}{unit}", anchor="end")
    svg.text(
        group,
        frame.left - 48,
        panel.top + panel.height / 2,
        panel.title,
        anchor="middle",
        cls="panel-title",
        transform=f"rotate(-90 {frame.left - 48} {panel.top + panel.height / 2})",
    )


def _columns(
    svg: Svg,
    frame: TimeFrame,
    panel: Panel,
    width_s: float,
    stacks: Sequence[tuple[Look, str, Sequence[int]]],
) -> None:
    group = svg.group(cls="columns")
    bins = len(stacks[0][2]) if stacks else 0
    for index in range(bins):
        start = frame.t0 + index * width_s
        x0, x1 = frame.clamp(start), frame.clamp(start + width_s)
        base = 0
        for look, label, counts in stacks:
            count = counts[index]
            if not count:
                continue
            rect = svg.el(
                group,
                "rect",
                x=x0 + 0.5,
                y=panel.y(base + count),
                width=max(0.8, x1 - x0 - 1),
                height=panel.y(base) - panel.y(base + count),
                fill=svg.fill(look),
                cls="column",
            )
            svg.tip(rect, f"{start:.1f}-{start + width_s:.1f} s: {count} {label}")
            base += count


def _failure_strip(
    svg: Svg, frame: TimeFrame, y: float, failures: Sequence[Answer], total: int
) -> None:
    group = svg.group(cls="failure-strip")
    svg.text(group, frame.left - 7, y + 12, "failed requests", anchor="end", cls="strip-title")
    svg.el(group, "line", x1=frame.left, y1=y + 8, x2=frame.right, y2=y + 8, cls="strip-line")
    if not failures:
        svg.text(
            group,
            frame.left + 6,
            y + 4,
            f"none: all {fmt_number(total)} were answered",
            cls="strip-note",
        )
        return
    seen: set[int] = set()
    for answer in failures:
        x = frame.clamp(answer.t)
        if int(x / 2) in seen:
            continue
        seen.add(int(x / 2))
        item = svg.group(group, cls="failure")
        svg.tip(item, f"failed at {answer.t:.2f} s: {answer.why}")
        draw_cross(svg, item, x, y + 8, 3.5)
    kinds: dict[str, int] = {}
    for answer in failures:
        kinds[answer.why] = kinds.get(answer.why, 0) + 1
    common = ", ".join(
        f"{why} {TIMES} {n}" for why, n in sorted(kinds.items(), key=lambda i: -i[1])[:3]
    )
    svg.text(
        group,
        frame.right,
        y - 2,
        f"{len(failures)} of {fmt_number(total)} failed: {common}",
        anchor="end",
        cls="strip-note",
    )


#: Draws a second panel under a traffic chart from the given top; returns its legend entries.
Below = Callable[[Svg, TimeFrame, float], list[tuple[Look | Stroke, str]]]


def traffic_chart(
    answers: Sequence[Answer],
    marks: Sequence[Mark],
    window: tuple[float, float],
    *,
    prefix: str,
    series_of: Callable[[Answer], str],
    order: Sequence[str],
    label_of: Callable[[str], str],
    title: str,
    below: tuple[float, Below] | None = None,
) -> Markup:
    """Requests over time in bins, stacked by series (serving pod, version), failures on top and
    crossed on a strip beneath; optionally a second panel (`below`: its height and drawer)."""
    t0, t1 = window
    width_s = bin_width(t1 - t0, len(answers))
    bins = max(1, math.ceil((t1 - t0) / width_s))
    keys = list(order) + sorted({series_of(a) for a in answers if a.ok} - set(order))
    counts = {key: [0] * bins for key in keys}
    failed = [0] * bins
    for answer in answers:
        index = min(bins - 1, max(0, int((answer.t - t0) // width_s)))
        if answer.ok:
            counts[series_of(answer)][index] += 1
        else:
            failed[index] += 1
    stacks = [
        (SERIES[i % len(SERIES)], f"answered by {label_of(k)}", counts[k])
        for i, k in enumerate(keys)
    ]
    stacks.append((FAILED, "failed", failed))
    peak = max((sum(stack[2][i] for stack in stacks) for i in range(bins)), default=1)
    t_end = t0 + bins * width_s
    visible = [mark for mark in marks if t0 <= mark.t <= t_end]
    probe = Svg(WIDTH, 10, prefix=prefix, label="", kind="chart")
    frame = TimeFrame(probe, t0, t_end)
    badge_h = (max(frame.badge_rows(visible)) + 1) * (BADGE + 2) if visible else 0
    panel = Panel(6 + badge_h + 8, 150, max(1, peak) * 1.08, f"requests / {width_s:g} s")
    strip_y = panel.bottom + 22
    axis_y = strip_y + 22 + (below[0] + 12 if below else 0)
    legend_top = axis_y + AXIS_H + 10
    height = int(legend_top + 58)
    failures = [a for a in answers if not a.ok]
    svg = Svg(
        WIDTH,
        height,
        prefix=prefix,
        label=f"{title}: {len(answers)} requests, {len(failures)} failed",
        kind="chart",
    )
    frame = TimeFrame(svg, t0, t_end)
    draw_y_axis(svg, frame, panel)
    _columns(svg, frame, panel, width_s, stacks)
    _failure_strip(svg, frame, strip_y, failures, len(answers))
    entries: list[tuple[Look | Stroke, str]] = [(look, label) for look, label, _ in stacks]
    if below is not None:
        entries += below[1](svg, frame, strip_y + 34)
    frame.marks(visible, 6, axis_y)
    frame.axis(axis_y)
    svg.legend(LABEL_W, legend_top, entries, width=WIDTH - LABEL_W - RIGHT)
    return svg.markup()


def draw_lines(
    svg: Svg,
    frame: TimeFrame,
    panel: Panel,
    lines: Sequence[tuple[Stroke, str, Sequence[tuple[float, float]]]],
) -> None:
    group = svg.group(cls="lines")
    for stroke, label, samples in lines:
        if not samples:
            continue
        points = [(frame.clamp(t), panel.y(v)) for t, v in step_points(samples, frame.t1)]
        svg.tip(svg.el(group, "path", d=path_of(points), **stroke.attrs()), label)


def draw_hline(
    svg: Svg, frame: TimeFrame, panel: Panel, value: float, stroke: Stroke, label: str
) -> None:
    y = panel.y(value)
    group = svg.group(cls="bound")
    svg.el(group, "line", x1=frame.left, y1=y, x2=frame.right, y2=y, **stroke.attrs())
    svg.text(group, frame.right - 4, y - 4, label, anchor="end", cls="bound-label")


#: Line looks of the autoscaling and rolling-update charts.
MEASURED = Stroke(BLUE, None, 2.6)
DESIRED = Stroke(ORANGE, "7 4", 2.2)
READY = Stroke(GREEN, "2 3", 2.6)
ALL_PODS = Stroke("#555", "1 2", 1.6)
BOUND = Stroke(VERMILION, "9 3 2 3", 1.5)
LIMIT = Stroke("#666", "9 3 2 3", 1.2)
FORBIDDEN = Look("#f6d0c4", "hatch", ink=VERMILION)
TARGET = Stroke(VERMILION, "6 3", 1.5)


def requests_by_pod(
    test: Mapping[str, Any], marks: Sequence[Mark], *, prefix: str, mark: str, role: str, title: str
) -> Markup | None:
    """Requests through the Service of a test's first traffic, by the pod that answered; the pod
    named by the `mark` (its `pod` detail) first, labelled with its `role` ("infected")."""
    recording = test.get("recording")
    probes = test.get("probes") or []
    if not probes:
        return None
    window = probe_window(probes[0], recording)
    if window is None:
        return None
    singled = mark_detail(recording, mark, "pod")

    def by_pod(answer: Answer) -> str:
        return answer.pod or "?"

    def pod_label(pod: str) -> str:
        return f"{pod} ({role})" if pod == singled else pod

    return traffic_chart(
        answers_of(probes[0], recording),
        marks,
        window,
        prefix=prefix,
        series_of=by_pod,
        order=[singled] if singled else [],
        label_of=pod_label,
        title=title,
    )

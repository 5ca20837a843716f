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

from markupsafe import Markup

from suite.report.data import Answer, Count, Lane, Mark, Record, samples_of
from suite.report.svg import (
    BLUE,
    FAILED,
    GREEN,
    GREY,
    MINUS,
    ORANGE,
    SERIES,
    SKY,
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


def _short(text: str, limit: int = 36) -> str:
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


def _cross(svg: Svg, parent: ET.Element, x: float, y: float, size: float = 4.0) -> None:
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
        svg.tip(svg.text(group, LABEL_W - 8, y + 14, _short(label), anchor="end"), label)
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
            _cross(svg, item, frame.clamp(t), y + LANE_H / 2)
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
        svg.text(group, LABEL_W - 8, y + 14, _short(label), anchor="end")
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
    _cross(svg, group, x + 6, y + 6)
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


def _y_axis(svg: Svg, frame: TimeFrame, panel: Panel, unit: str = "") -> None:
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
        _cross(svg, item, x, y + 8, 3.5)
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
    _y_axis(svg, frame, panel)
    _columns(svg, frame, panel, width_s, stacks)
    _failure_strip(svg, frame, strip_y, failures, len(answers))
    entries: list[tuple[Look | Stroke, str]] = [(look, label) for look, label, _ in stacks]
    if below is not None:
        entries += below[1](svg, frame, strip_y + 34)
    frame.marks(visible, 6, axis_y)
    frame.axis(axis_y)
    svg.legend(LABEL_W, legend_top, entries, width=WIDTH - LABEL_W - RIGHT)
    return svg.markup()


def _lines(
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


def _hline(
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


def autoscaling_chart(
    recording: Record,
    marks: Sequence[Mark],
    end: float,
    *,
    prefix: str,
    hpa_name: str,
    load: tuple[float, float] | None,
) -> Markup:
    """CPU (the HPA's average utilization of the pods' request) against its target, and the
    replicas the HPA wanted against the Ready pods, with the load's time shaded."""
    hpas = samples_of(recording, "hpas", hpa_name)
    deployments = samples_of(recording, "deployments", hpa_name)
    target = next((s["target_utilization"] for s in hpas if s.get("target_utilization")), None)
    low = next((int(s["min_replicas"]) for s in hpas if s.get("min_replicas")), 1)
    high = next((int(s["max_replicas"]) for s in hpas if s.get("max_replicas")), None)
    cpu = [
        (float(s["t"]), float(s["cpu_utilization"]))
        for s in hpas
        if s.get("cpu_utilization") is not None
    ]
    desired = [(float(s["t"]), float(s["desired_replicas"])) for s in hpas]
    ready = [(float(s["t"]), float(s["ready"])) for s in deployments]
    peak_cpu = max([v for _, v in cpu] + [float(target or 0) * 2, 100.0])
    peak_replicas = max([v for _, v in desired + ready] + [float(high or 0), 1.0])
    probe = Svg(WIDTH, 10, prefix=prefix, label="", kind="chart")
    frame = TimeFrame(probe, 0.0, end)
    badge_h = (max(frame.badge_rows(marks)) + 1) * (BADGE + 2) if marks else 0
    cpu_panel = Panel(6 + badge_h + 8, 140, peak_cpu * 1.1, "CPU % of request")
    replica_panel = Panel(cpu_panel.bottom + 22, 110, peak_replicas + 0.6, "replicas")
    axis_y = replica_panel.bottom
    legend_top = axis_y + AXIS_H + 10
    svg = Svg(
        WIDTH,
        int(legend_top + 40),
        prefix=prefix,
        label=f"Autoscaling: CPU peaked at {max((v for _, v in cpu), default=0):.0f} % "
        f"(target {target} %), replicas {low} to {max((v for _, v in desired), default=low):.0f}",
        kind="chart",
    )
    frame = TimeFrame(svg, 0.0, end)
    if load is not None:
        frame.band(
            load[0],
            load[1],
            cpu_panel.top,
            replica_panel.bottom,
            LOAD_LOOK,
            "load through the Service",
        )
    for panel in (cpu_panel, replica_panel):
        _y_axis(svg, frame, panel, " %" if panel is cpu_panel else "")
    if target is not None:
        _hline(svg, frame, cpu_panel, float(target), TARGET, f"target {target} %")
    _lines(svg, frame, cpu_panel, [(MEASURED, "CPU % of request (HPA)", cpu)])
    if high is not None:
        _hline(svg, frame, replica_panel, float(high), LIMIT, f"max {high}")
    _hline(svg, frame, replica_panel, float(low), LIMIT, f"min {low}")
    _lines(
        svg,
        frame,
        replica_panel,
        [
            (DESIRED, "replicas the HPA wants", desired),
            (READY, "Ready pods (Deployment)", ready),
        ],
    )
    frame.marks(marks, 6, axis_y)
    frame.axis(axis_y)
    svg.legend(
        LABEL_W,
        legend_top,
        [
            (MEASURED, "CPU, % of request (HPA average)"),
            (TARGET, "CPU target"),
            (DESIRED, "replicas the HPA wants"),
            (READY, "Ready pods"),
            (LIMIT, "min / max replicas"),
            (LOAD_LOOK, "load"),
        ],
        width=WIDTH - LABEL_W - RIGHT,
    )
    return svg.markup()


def pod_count_panel(
    counts: Sequence[Count],
    *,
    replicas: int | None,
    max_surge: int | None,
    max_unavailable: int | None,
    height: float = 120,
) -> tuple[float, Below]:
    """A panel of pod counts with the rolling update's forbidden zones shaded: more pods than
    replicas + maxSurge, fewer Ready than replicas - maxUnavailable (terminating pods count for
    neither, as for the Deployment controller)."""

    def draw(svg: Svg, frame: TimeFrame, top: float) -> list[tuple[Look | Stroke, str]]:
        ceiling = (replicas or 0) + (max_surge or 0)
        highest = max([c.pods for c in counts] + [ceiling, 1]) + 1.5
        panel = Panel(top, height, highest, "pods")
        before = [c for c in counts if c.t <= frame.t0]
        shown = (
            [Count(frame.t0, before[-1].pods, before[-1].ready, before[-1].total)] if before else []
        ) + [c for c in counts if c.t > frame.t0]
        entries: list[tuple[Look | Stroke, str]] = []
        broken: list[Count] = []
        zones = svg.group(cls="zones")
        if replicas is not None and max_surge is not None:
            y = panel.y(ceiling + 0.5)
            svg.el(
                zones,
                "rect",
                x=frame.left,
                y=panel.top,
                width=frame.right - frame.left,
                height=y - panel.top,
                fill=svg.fill(FORBIDDEN),
                fill_opacity=0.5,
            )
            svg.text(
                zones,
                frame.right - 4,
                panel.top + 11,
                f"more than {ceiling} pods: beyond {replicas} replicas + maxSurge {max_surge}",
                anchor="end",
                cls="bound-label",
            )
            broken += [c for c in shown if c.pods > ceiling]
        if replicas is not None and max_unavailable is not None:
            floor = replicas - max_unavailable
            y = panel.y(floor - 0.5)
            svg.el(
                zones,
                "rect",
                x=frame.left,
                y=y,
                width=frame.right - frame.left,
                height=panel.bottom - y,
                fill=svg.fill(FORBIDDEN),
                fill_opacity=0.5,
            )
            svg.text(
                zones,
                frame.right - 4,
                panel.bottom - 5,
                f"fewer than {floor} Ready: beyond {replicas} replicas {MINUS} maxUnavailable "
                f"{max_unavailable}",
                anchor="end",
                cls="bound-label",
            )
            broken += [c for c in shown if c.ready < floor]
            entries.append((FORBIDDEN, "outside the rolling-update bounds"))
        _y_axis(svg, frame, panel)
        _lines(
            svg,
            frame,
            panel,
            [
                (MEASURED, "pods (not terminating)", [(c.t, c.pods + 0.07) for c in shown]),
                (READY, "Ready pods", [(c.t, c.ready - 0.07) for c in shown]),
            ],
        )
        for count in broken:
            item = svg.group(cls="violation")
            svg.tip(
                item, f"bound broken at {count.t:.2f} s: {count.pods} pods, {count.ready} Ready"
            )
            _cross(svg, item, frame.clamp(count.t), panel.y(count.pods), 5)
        return [(MEASURED, "pods (not terminating)"), (READY, "Ready pods"), *entries]

    return height, draw


def per_pod_bars(
    counts: Mapping[str, int], *, prefix: str, replicas: int | None, failed: int = 0
) -> Markup:
    """Answers per pod as horizontal bars, with the even share marked."""
    pods = sorted(counts)
    total = sum(counts.values())
    share = total / (replicas or len(pods) or 1)
    bar_h, gap, top = 22, 8, 26
    height = top + len(pods) * (bar_h + gap) + AXIS_H + 30
    svg = Svg(
        WIDTH,
        height,
        prefix=prefix,
        label=f"Requests per pod: {', '.join(f'{pod} {counts[pod]}' for pod in pods)}",
        kind="chart",
    )
    peak = max([*counts.values(), share, 1])
    x = Scale(0.0, peak * 1.15, LABEL_W, WIDTH - RIGHT - 80)
    group = svg.group(cls="bars")
    for index, pod in enumerate(pods):
        y = top + index * (bar_h + gap)
        count = counts[pod]
        svg.tip(svg.text(group, LABEL_W - 8, y + 15, _short(pod), anchor="end"), pod)
        rect = svg.el(
            group,
            "rect",
            x=LABEL_W,
            y=y,
            width=max(1.0, x(count) - LABEL_W),
            height=bar_h,
            fill=svg.fill(SERIES[0]),
            cls="bar",
        )
        svg.tip(rect, f"{pod}: {count} requests")
        percent = 100 * count / total if total else 0.0
        svg.text(group, x(count) + 6, y + 15, f"{count}  ({percent:.1f} %)", cls="bar-label")
    bottom = top + len(pods) * (bar_h + gap)
    sx = x(share)
    svg.el(svg.root, "line", x1=sx, y1=top - 8, x2=sx, y2=bottom, **TARGET.attrs())
    svg.text(svg.root, sx, top - 11, f"even share: {share:.0f}", anchor="middle", cls="bound-label")
    axis = svg.group(cls="axis")
    svg.el(axis, "line", x1=LABEL_W, y1=bottom, x2=WIDTH - RIGHT - 80, y2=bottom)
    for value in ticks(0.0, peak * 1.15, 6):
        svg.el(axis, "line", x1=x(value), y1=bottom, x2=x(value), y2=bottom + 4)
        svg.text(axis, x(value), bottom + 16, tick_label(value), anchor="middle")
    note = f"requests answered by each pod (of {fmt_number(total + failed)} sent"
    note += f", {failed} failed)" if failed else ")"
    svg.text(axis, WIDTH - RIGHT - 80, bottom + 30, note, anchor="end", cls="caption")
    return svg.markup()


#: The two steps of a routing change, drawn end to end on one pod's row.
SLICE_STEP = Look(SKY, "dots")
ANSWER_STEP = Look(BLUE)
#: Where the routing-lag bound ends on a pod's row (a short solid tick: dashes would break up).
BOUND_TICK = Stroke(VERMILION, None, 2.0)
#: The rolling update's `routing_lags_s` keys: per side, its slice step and its answer step.
ROUTING_SIDES = (
    ("joining: Ready \u2192 in the slice \u2192 first answer", "ready>slice", "slice>first"),
    ("leaving: told to stop \u2192 out of the slice \u2192 last answer", "stop>out", "out>last"),
)


@dataclass(frozen=True)
class Lag:
    """The worst of one kind of routing lag: how long, which pod, what step, its bound."""

    seconds: float
    pod: str
    step: str
    bound: float | None

    @property
    def within(self) -> bool:
        """Inside its bound (or no bound stated)."""
        return self.bound is None or self.seconds <= self.bound


ROUTING_STEP_WORDS = {
    "ready>slice": "Ready \u2192 in the slice",
    "slice>first": "in the slice \u2192 first answer",
    "stop>out": "told to stop \u2192 out of the slice",
    "out>last": "out of the slice \u2192 last answer",
}


def worst_lags(
    lags: Mapping[str, Mapping[str, float | None]],
    *,
    slice_bound: float | None,
    routing_bound: float | None,
) -> tuple[Lag | None, Lag | None]:
    """The worst slice step (Ready or stop to the EndpointSlice) and the worst answer step (the
    slice to the first or last answer), each with its bound."""

    def worst(keys: Sequence[str], bound: float | None) -> Lag | None:
        found = [
            Lag(float(value), pod, key, bound)
            for pod, row in lags.items()
            for key in keys
            if isinstance(value := row.get(key), int | float)
        ]
        return max(found, key=lambda lag: lag.seconds, default=None)

    return (
        worst(("ready>slice", "stop>out"), slice_bound),
        worst(("slice>first", "out>last"), routing_bound),
    )


def routing_lag_chart(
    lags: Mapping[str, Mapping[str, float | None]],
    *,
    prefix: str,
    slice_bound: float | None,
    routing_bound: float | None,
    labels: Mapping[str, str] | None = None,
) -> Markup:
    """One row per pod, two panels: joining (Ready, then listed in the EndpointSlice, then its
    first answer through the Service) and leaving (told to stop, then out of the slice, then its
    last answer). The steps are drawn end to end from the pod's Ready (or stop); the slice bound
    is a dashed line, the routing-lag bound a red tick on each row where it ends for that pod (the
    slice change plus the bound). A last answer before the pod left the slice goes left."""
    labels = labels or {}
    pods = sorted(lags, key=lambda pod: (labels.get(pod, pod), pod))
    starts = [float(row.get(a) or 0.0) for row in lags.values() for _, a, _ in ROUTING_SIDES]
    ends = [
        float(row.get(a) or 0.0) + float(row.get(b) or 0.0)
        for row in lags.values()
        for _, a, b in ROUTING_SIDES
    ]
    lo = min([0.0, *ends]) * 1.12
    reach = max([0.0, *starts]) + (routing_bound or 0.0)
    hi = max([0.1, reach, *ends, slice_bound or 0.0]) * 1.08
    row_h, gap, top = 20, 7, 40
    rows_bottom = top + len(pods) * (row_h + gap)
    legend_top = rows_bottom + AXIS_H + 8
    height = int(legend_top + 40)
    slice_worst, answer_worst = worst_lags(
        lags, slice_bound=slice_bound, routing_bound=routing_bound
    )
    summary = "; ".join(
        f"worst {ROUTING_STEP_WORDS[lag.step]} {lag.seconds:.3f} s ({lag.pod})"
        for lag in (slice_worst, answer_worst)
        if lag is not None
    )
    svg = Svg(WIDTH, height, prefix=prefix, label=f"Routing lag per pod: {summary}", kind="chart")
    panel_w = (WIDTH - LABEL_W - RIGHT - 24) / 2
    for side, (title, first, second) in enumerate(ROUTING_SIDES):
        left = LABEL_W + side * (panel_w + 24)
        x = Scale(lo, hi, left, left + panel_w)
        group = svg.group(cls="routing-panel")
        svg.text(group, left, top - 24, title, cls="panel-title")
        axis = svg.group(cls="axis")
        for value in ticks(lo, hi, 5):
            svg.el(
                axis, "line", x1=x(value), y1=top - 6, x2=x(value), y2=rows_bottom, cls="gridline"
            )
            svg.text(axis, x(value), rows_bottom + 14, f"{tick_label(value)} s", anchor="middle")
        svg.el(axis, "line", x1=x(0.0), y1=top - 6, x2=x(0.0), y2=rows_bottom)
        svg.el(axis, "line", x1=left, y1=rows_bottom, x2=left + panel_w, y2=rows_bottom)
        if slice_bound is not None:
            bx = x(slice_bound)
            svg.el(svg.root, "line", x1=bx, y1=top - 10, x2=bx, y2=rows_bottom, **LIMIT.attrs())
            svg.text(
                svg.root,
                bx,
                top - 12,
                f"slice bound {slice_bound:g} s",
                anchor="middle",
                cls="bound-label",
            )
        for index, pod in enumerate(pods):
            y = top + index * (row_h + gap)
            row = lags[pod]
            if side == 0:
                label = labels.get(pod, pod)
                svg.tip(svg.text(group, LABEL_W - 8, y + 14, _short(label), anchor="end"), label)
            a, b = row.get(first), row.get(second)
            if a is None and b is None:
                words = "not told to stop: still serving" if side else "never listed in the slice"
                svg.text(group, x(0.0) + 4, y + 14, words, cls="row-note")
                continue
            start = float(a or 0.0)
            if a is not None:
                rect = svg.el(
                    group,
                    "rect",
                    x=x(0.0),
                    y=y,
                    width=max(1.5, x(start) - x(0.0)),
                    height=row_h,
                    fill=svg.fill(SLICE_STEP),
                    cls="bar",
                )
                svg.tip(rect, f"{pod}: {ROUTING_STEP_WORDS[first]} {start:.3f} s")
            if b is not None:
                end = start + float(b)
                x0, x1 = sorted((x(start), x(end)))
                rect = svg.el(
                    group,
                    "rect",
                    x=x0,
                    y=y + 4,
                    width=max(1.5, x1 - x0),
                    height=row_h - 8,
                    fill=svg.fill(ANSWER_STEP),
                    cls="bar",
                )
                svg.tip(
                    rect,
                    f"{pod}: {ROUTING_STEP_WORDS[second]} {float(b):.3f} s"
                    + (" (it stopped answering before it left the slice)" if b < 0 else ""),
                )
            if routing_bound is not None:
                tx = x(start + routing_bound)
                item = svg.group(group, cls="bound")
                svg.tip(
                    item,
                    f"{pod}: routing-lag bound, {routing_bound:g} s after "
                    f"{'the slice change' if a is not None else 'the start'}",
                )
                svg.el(item, "line", x1=tx, y1=y - 2, x2=tx, y2=y + row_h + 2, **BOUND_TICK.attrs())
            over = [
                (key, float(v), bound)
                for key, v, bound in ((first, a, slice_bound), (second, b, routing_bound))
                if v is not None and bound is not None and float(v) > bound
            ]
            for key, value, bound in over:
                item = svg.group(group, cls="violation")
                svg.tip(
                    item,
                    f"{pod}: {ROUTING_STEP_WORDS[key]} {value:.3f} s, over its "
                    f"bound of {bound:g} s",
                )
                _cross(svg, item, x(start + (value if key == second else 0.0)), y + row_h / 2, 5)
    svg.text(
        svg.root,
        WIDTH - RIGHT,
        rows_bottom + 28,
        "seconds from the pod's Ready (left) or from its being told to stop (right)",
        anchor="end",
        cls="caption",
    )
    entries: list[tuple[Look | Stroke, str]] = [
        (SLICE_STEP, "the EndpointSlice follows (Ready / stop)"),
        (ANSWER_STEP, "the answers follow (first / last answer)"),
    ]
    if slice_bound is not None:
        entries.append((LIMIT, f"slice bound {slice_bound:g} s"))
    if routing_bound is not None:
        entries.append(
            (BOUND_TICK, f"routing-lag bound: {routing_bound:g} s after the slice change")
        )
    svg.legend(LABEL_W, legend_top, entries, width=WIDTH - LABEL_W - RIGHT)
    return svg.markup()


def answer_gap_bars(
    gaps: Mapping[str, float],
    *,
    prefix: str,
    sick: str | None,
    out_s: float | None,
) -> Markup:
    """Per pod its longest stretch without an answer through the Service, as bars; the infected
    pod's time out of service (NotReady to Ready again) marked for comparison."""
    pods = sorted(gaps, key=lambda pod: (pod != sick, pod))
    bar_h, gap, top = 20, 8, 22
    bottom = top + len(pods) * (bar_h + gap)
    height = bottom + AXIS_H + 12
    peak = max([*(float(v) for v in gaps.values()), out_s or 0.0, 0.5]) * 1.12
    x = Scale(0.0, peak, LABEL_W, WIDTH - RIGHT - 90)
    svg = Svg(
        WIDTH,
        int(height),
        prefix=prefix,
        label="Longest stretch without an answer, per pod: "
        + ", ".join(f"{pod} {float(gaps[pod]):g} s" for pod in pods),
        kind="chart",
    )
    group = svg.group(cls="bars")
    for index, pod in enumerate(pods):
        y = top + index * (bar_h + gap)
        value = float(gaps[pod])
        role = "infected" if pod == sick else "healthy" if sick else ""
        label = f"{pod} ({role})" if role else pod
        svg.tip(svg.text(group, LABEL_W - 8, y + 14, _short(pod), anchor="end"), label)
        look = SERIES[0] if pod == sick else SERIES[1]
        rect = svg.el(
            group,
            "rect",
            x=LABEL_W,
            y=y,
            width=max(1.5, x(value) - LABEL_W),
            height=bar_h,
            fill=svg.fill(look),
            cls="bar",
        )
        svg.tip(rect, f"{label}: no answer for {value:g} s at most")
        words = f"{value:g} s" + (f" ({role} pod)" if role else "")
        svg.text(group, x(value) + 6, y + 14, words, cls="bar-label")
    if out_s is not None:
        ox = x(out_s)
        svg.el(svg.root, "line", x1=ox, y1=top - 8, x2=ox, y2=bottom, **TARGET.attrs())
        svg.text(
            svg.root,
            ox,
            top - 11,
            f"infected pod NotReady \u2192 Ready again: {out_s:g} s",
            anchor="middle",
            cls="bound-label",
        )
    axis = svg.group(cls="axis")
    svg.el(axis, "line", x1=LABEL_W, y1=bottom, x2=WIDTH - RIGHT - 90, y2=bottom)
    for value in ticks(0.0, peak, 6):
        svg.el(axis, "line", x1=x(value), y1=bottom, x2=x(value), y2=bottom + 4)
        svg.text(axis, x(value), bottom + 16, f"{tick_label(value)} s", anchor="middle")
    svg.text(
        axis,
        WIDTH - RIGHT - 90,
        bottom + 30,
        "longest time between two answers from the pod, while traffic ran",
        anchor="end",
        cls="caption",
    )
    return svg.markup()

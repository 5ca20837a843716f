"""Self-healing in the report: its headlines (infected, killed, deleted), its charts (the
requests around the infection, each pod's longest gap) and its figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import (
    AXIS_H,
    LABEL_W,
    RIGHT,
    TARGET,
    WIDTH,
    requests_by_pod,
    short_label,
)
from suite.report.data import Mark, Record, mark_detail
from suite.report.svg import SERIES, TIMES, Scale, Svg, tick_label, ticks
from suite.report.words import bound, num, secs


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
        svg.tip(svg.text(group, LABEL_W - 8, y + 14, short_label(pod), anchor="end"), label)
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


def infected_headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """The infected pod's story: out, restarted, back, and the requests meanwhile."""
    del recording
    if "failed_while_out" in f:
        text = (
            f"NotReady {secs(f.get('not_ready_after_s') or 0)} s after infection, restarted after "
            f"{secs(f['restarted_after_s'])} s, "
            f"Ready again after {secs(f.get('ready_again_after_s') or 0)} s"
        )
        if f.get("answering_again_after_s") is not None:
            text += f", answering through the Service {secs(f['answering_again_after_s'])} s later"
        if f.get("requests") is not None:
            text += (
                f"; {num(f['failed_while_out'])} of {num(f['requests'])} requests failed while "
                f"the Service routed around it ({num(f.get('failed_before_routed_around') or 0)} "
                "before)"
            )
        return text
    if "floor_s" not in f and "failed_while_leaving_endpoints" not in f:
        return None
    text = f"restarted {secs(f['restarted_after_s'])} s after infection"
    if f.get("floor_s") is not None:
        text += f" (floor {secs(f['floor_s'])} s)"
    if f.get("ready_again_after_s") is not None:
        text += f", Ready again after {secs(f['ready_again_after_s'])} s"
    if f.get("requests") is not None:
        leaving = f.get("failed_while_leaving_endpoints") or 0
        other = f.get("failed_otherwise") or 0
        text += f"; {num(leaving + other)} of {num(f['requests'])} requests failed"
        if other:
            text += f", {num(other)} of them outside the window in which the sick pod left"
        elif leaving:
            text += ", all while the sick pod was leaving the Service"
    return text


def killed_headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """The killed process: its exit and restart."""
    del recording
    if "exit_code" not in f:
        return None
    text = (
        f"killed process (exit {f['exit_code']}) restarted after {secs(f['restarted_after_s'])} s"
    )
    if f.get("ready_again_after_s") is not None:
        text += f", Ready after {secs(f['ready_again_after_s'])} s"
    return text


def deleted_headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """The deleted pod: replaced and Ready."""
    del recording
    if "replaced_and_ready_after_s" not in f:
        return None
    return f"deleted pod replaced, Ready after {secs(f['replaced_and_ready_after_s'])} s"


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests through the Service around the infection, by the pod that answered."""
    del end
    return requests_by_pod(
        test,
        marks,
        prefix=prefix,
        mark="infect",
        role="infected",
        title="Requests around the infection",
    )


def more_charts(test: Mapping[str, Any], end: float, prefix: str) -> list[tuple[Markup, str]]:
    """The longest time each pod went without answering, the infected one's against its time
    out of service."""
    del end
    figures = test.get("figures") or {}
    gaps = figures.get("answer_gap_s")
    if not isinstance(gaps, Mapping) or not gaps:
        return []
    sick = mark_detail(test.get("recording"), "infect", "pod")
    not_ready = bound(figures.get("not_ready_after_s"))
    ready = bound(figures.get("ready_again_after_s"))
    out_s = round(ready - not_ready, 2) if ready is not None and not_ready is not None else None
    chart = answer_gap_bars(
        {str(pod): float(gap) for pod, gap in gaps.items()},
        prefix=f"{prefix}-gap",
        sick=sick,
        out_s=out_s,
    )
    caption = (
        "The longest time each pod went without answering through the Service while traffic "
        "ran. For the infected pod that is its time out of service, from its last answer "
        "before the Service routed around it to its first answer after it came back"
        + (f" (it was NotReady for {out_s:g} s, the dashed line)" if out_s is not None else "")
        + "; the healthy pod's shows that it kept answering."
    )
    return [(chart, caption)]


#: Its figures' words on the page.
FIGURE_WORDS = {
    "restarted_after_s": "restarted after (s)",
    "floor_s": f"floor: probe period {TIMES} threshold (s)",
    "not_ready_after_s": "not Ready after (s)",
    "ready_again_after_s": "Ready again after (s)",
    "failed_while_leaving_endpoints": "failed while the pod left the Service",
    "failed_otherwise": "failed at other times",
    "exit_code": "exit code",
    "reason": "reason",
    "deleted": "deleted pod",
    "replacement": "replacement pod",
    "replaced_and_ready_after_s": "replaced and Ready after (s)",
    "restart_earliest_s": "restart no earlier than (s)",
    "routing_bound_s": "routed around within (s)",
    "sick_out_s": "sick pod out of the Service for (s)",
    "restart_deadline_s": "restart deadline, from the admitted liveness probe (s)",
    "slice_out_after_not_ready_s": "out of the EndpointSlice after NotReady (s)",
    "answering_again_after_s": "answering through the Service again after Ready (s)",
    "answer_gap_s": "longest stretch without an answer, per pod (s)",
    "failed_before_routed_around": "failed before the Service routed around",
    "failed_while_out": "failed while routed around",
}

"""Load balancing in the report: its headline, its chart (answers per pod against an even
share) and its figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import AXIS_H, LABEL_W, RIGHT, TARGET, WIDTH, short_label
from suite.report.data import Mark, Record
from suite.report.svg import SERIES, Scale, Svg, fmt_number, tick_label, ticks
from suite.report.words import num


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
        svg.tip(svg.text(group, LABEL_W - 8, y + 15, short_label(pod), anchor="end"), pod)
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


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """'4/4 replicas answered 2,400 requests, shares within ...'."""
    if "requests" not in f or "by_pod" not in f:
        return None
    replicas = f.get("replicas") or len(f["by_pod"])
    text = (
        f"{len(f['by_pod'])}/{replicas} replicas answered {num(f.get('answered', f['requests']))} "
        f"requests"
    )
    if f.get("failed"):
        text += f", {num(f['failed'])} failed"
    shares = f.get("share_pct") or {}
    if shares and f.get("share_bound_pp") is not None:
        fair = 100.0 / max(1, len(shares))
        worst = max(abs(float(share) - fair) for share in shares.values())
        text += f", shares within {worst:.1f} points of {fair:.0f} % (bound {f['share_bound_pp']})"
    elif f.get("p_value") is not None:
        text += f", spread p = {f['p_value']:.2f}"
    if f.get("by_node"):
        text += f", on {len(f['by_node'])} node(s)"
    paths = f.get("paths") or {}
    if isinstance(paths, Mapping) and paths:
        text += (
            f"; reached from {len(paths)} node(s) through the ClusterIP and the DNS name, "
            "every replica from each"
        )
    return text


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Answers per pod, against an even share."""
    del marks, end
    probes = test.get("probes") or []
    figures = test.get("figures") or {}
    counts = figures.get("by_pod") or (probes[0].get("by_pod") if probes else None)
    if not counts:
        return None
    failed = sum(int(p.get("failed") or 0) for p in probes)
    return per_pod_bars(counts, prefix=prefix, replicas=figures.get("replicas"), failed=failed)


#: Its figures' words on the page.
FIGURE_WORDS = {
    "chi_square": "chi-square statistic",
    "p_value": "p-value (uniform spread)",
    "by_node": "answers per node",
    "share_pct": "share per pod (%)",
    "share_bound_pp": "share bound (points from fair)",
    "schedulable_nodes": "schedulable nodes",
    "paths": "from each node's client, per path: answered, failed, replicas answering",
    "node_of_pod": "node of each pod",
}

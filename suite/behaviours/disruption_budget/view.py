"""The drain in the report: its headline (evictions tried and refused, the fewest Ready pods
against minAvailable, the drain's time, the requests), its chart (requests by pod over the Ready
pods against the budget) and its figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import (
    LIMIT,
    READY,
    Below,
    Panel,
    TimeFrame,
    draw_hline,
    draw_lines,
    draw_y_axis,
    traffic_chart,
)
from suite.report.data import Answer, Mark, Record, answers_of, pod_counts, probe_window
from suite.report.svg import Look, Stroke, Svg
from suite.report.words import num, secs


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """Evictions refused by the budget, the fewest Ready pods, the drain's time, the requests."""
    del recording
    if "evictions_tried" not in f:
        return None
    text = f"node drained in {secs(f['drain_s'])} s" if f.get("drain_s") is not None else "drain"
    text += (
        f"; {num(f['evictions_refused'])} of {num(f['evictions_tried'])} evictions refused by "
        "the budget (429)"
    )
    if f.get("min_ready_seen") is not None and f.get("min_available") is not None:
        text += (
            f", never fewer than {num(f['min_ready_seen'])} Ready "
            f"(minAvailable {num(f['min_available'])})"
        )
    if f.get("requests") is not None:
        text += f"; {num(f.get('failed') or 0)} of {num(f['requests'])} requests failed"
    return text


def pod_nodes(recording: Record | None) -> dict[str, str]:
    """Each recorded pod's node (the last one its states name)."""
    found: dict[str, str] = {}
    for entry in (recording or {}).get("pods") or []:
        node = (entry.get("state") or {}).get("node")
        if node:
            found[str(entry["name"])] = str(node)
    return found


def ready_panel(recording: Record | None, app: str, floor: int | None) -> tuple[float, Below]:
    """Ready pods of the app over time (the recorder's pod states) against minAvailable."""
    height = 110.0
    counts = pod_counts(recording, app)

    def draw(svg: Svg, frame: TimeFrame, top: float) -> list[tuple[Look | Stroke, str]]:
        panel = Panel(top, height, max([c.ready for c in counts] + [floor or 0, 1]) + 1.0, "Ready")
        draw_y_axis(svg, frame, panel)
        if floor is not None:
            draw_hline(svg, frame, panel, floor, LIMIT, f"minAvailable {floor}")
        # The count in force when the frame opens, then every change inside it.
        before = [c.ready for c in counts if c.t <= frame.t0][-1:]
        points = [(frame.t0, n) for n in before] + [
            (c.t, c.ready) for c in counts if c.t > frame.t0
        ]
        draw_lines(svg, frame, panel, [(READY, "Ready pods", points)])
        return [(READY, "Ready pods")]

    return height, draw


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests through the Service by the node of the pod that answered; beneath, Ready pods
    against the budget's minAvailable."""
    del end
    recording = test.get("recording")
    probes = test.get("probes") or []
    figures = test.get("figures") or {}
    if not probes:
        return None
    window = probe_window(probes[0], recording)
    if window is None:
        return None
    floor = figures.get("min_available")
    drained = str(figures.get("drained_node") or "")
    nodes = pod_nodes(recording)

    def by_node(answer: Answer) -> str:
        return nodes.get(answer.pod or "", "?")

    def label(node: str) -> str:
        return node + (" (drained)" if node == drained else "")

    return traffic_chart(
        answers_of(probes[0], recording),
        marks,
        window,
        prefix=prefix,
        series_of=by_node,
        order=[drained] if drained else [],
        label_of=label,
        title="Requests through the drain, by the node that answered",
        below=ready_panel(
            recording,
            str(probes[0].get("label") or "incver"),
            floor if isinstance(floor, int) else None,
        ),
    )


#: Its figures' words on the page.
FIGURE_WORDS = {
    "replicas": "replicas",
    "min_available": "minAvailable, as admitted",
    "disruptions_allowed": "disruptionsAllowed before the drain",
    "drained_node": "the drained node",
    "pods_on_node": "pods on it before the drain",
    "drain_deadline_s": "drain bound (s)",
    "evictions_tried": "evictions tried",
    "evictions_refused": "evictions refused by the budget (429)",
    "evictions_accepted": "evictions accepted",
    "refusal_certain": "a refusal was certain",
    "min_ready_seen": "fewest Ready pods (recorded)",
    "drain_s": "cordon \u2192 node drained (s)",
    "restored_s": "cordon \u2192 every replica Ready again (s)",
    "largest_traffic_gap_s": "largest gap between requests (s)",
    "traffic_rate_per_s": "requests per second",
}

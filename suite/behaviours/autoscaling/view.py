"""CPU autoscaling in the report: its headline, its chart (CPU use against the target,
replicas wanted and Ready) and its figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import (
    AXIS_H,
    BADGE,
    DESIRED,
    LABEL_W,
    LIMIT,
    LOAD_LOOK,
    MEASURED,
    READY,
    RIGHT,
    TARGET,
    WIDTH,
    Panel,
    TimeFrame,
    draw_hline,
    draw_lines,
    draw_y_axis,
)
from suite.report.data import Mark, Record, mark_t, samples_of
from suite.report.svg import ARROW, Svg
from suite.report.words import secs


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
        draw_y_axis(svg, frame, panel, " %" if panel is cpu_panel else "")
    if target is not None:
        draw_hline(svg, frame, cpu_panel, float(target), TARGET, f"target {target} %")
    draw_lines(svg, frame, cpu_panel, [(MEASURED, "CPU % of request (HPA)", cpu)])
    if high is not None:
        draw_hline(svg, frame, replica_panel, float(high), LIMIT, f"max {high}")
    draw_hline(svg, frame, replica_panel, float(low), LIMIT, f"min {low}")
    draw_lines(
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


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """'1 -> 4 replicas 40 s after load began, back to 1 ...'."""
    if "scaled_out_after_s" not in f:
        return None
    hpas = samples_of(recording, "hpas")
    low = next((s.get("min_replicas") for s in hpas if s.get("min_replicas")), 1)
    high = (
        f.get("max_replicas_seen") or f.get("ready_at_scale_out") or f.get("replicas_at_scale_out")
    )
    text = f"{low} {ARROW} {high} replicas {secs(f['scaled_out_after_s'], 0)} s after load began"
    if f.get("scaled_in_after_s") is not None:
        text += f", back to {low} {secs(f['scaled_in_after_s'], 0)} s after it stopped"
    if f.get("peak_cpu_percent") is not None:
        target = next(
            (s.get("target_utilization") for s in hpas if s.get("target_utilization")), None
        )
        text += f" (CPU peak {f['peak_cpu_percent']} %" + (
            f", target {target} %)" if target else ")"
        )
    return text


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """CPU use against the target, and the replicas wanted and Ready, with the load's window."""
    recording = test.get("recording")
    hpas = samples_of(recording, "hpas")
    if not recording or not hpas:
        return None
    load = None
    start, stop = mark_t(marks, "load start"), mark_t(marks, "load stopped")
    if start is not None:
        load = (start, stop if stop is not None else end)
    return autoscaling_chart(
        recording, marks, end, prefix=prefix, hpa_name=str(hpas[0]["name"]), load=load
    )


#: Its figures' words on the page.
FIGURE_WORDS = {
    "scaled_out_after_s": "scaled out after (s)",
    "scale_out_deadline_s": "scale-out deadline (s)",
    "replicas_at_scale_out": "replicas at scale-out",
    "max_replicas_seen": "most replicas wanted",
    "peak_cpu_percent": "peak CPU (% of request)",
    "load_requests": "load requests",
    "scaled_in_after_s": "back in after (s)",
    "scale_in_deadline_s": "scale-in deadline (s)",
    "ready_at_scale_out": "Ready replicas at scale-out",
    "first_above_target_after_s": "first reading above target after (s)",
    "rescale_asked_after_s": "HPA asked for more after (s)",
    "scale_in_after_last_above_target_s": "scale-in after last reading above target (s)",
    "hpa_rules": "HPA rules, as stored",
    "rescales": "rescales, checked against the HPA formula",
}

"""Rolling update in the report: its headline, its charts (requests by version over pods
against the bounds; routing lag per pod) and its figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from suite.report.charts import (
    AXIS_H,
    FORBIDDEN,
    LABEL_W,
    LIMIT,
    MEASURED,
    READY,
    RIGHT,
    WIDTH,
    Below,
    Panel,
    TimeFrame,
    draw_cross,
    draw_lines,
    draw_y_axis,
    short_label,
    traffic_chart,
)
from suite.report.data import (
    Answer,
    Count,
    Mark,
    Record,
    answers_of,
    lanes_of,
    pod_counts,
    probe_window,
    samples_of,
)
from suite.report.svg import (
    ARROW,
    BLUE,
    MINUS,
    SKY,
    VERMILION,
    Look,
    Scale,
    Stroke,
    Svg,
    tick_label,
    ticks,
)
from suite.report.words import bound, num, secs


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
        draw_y_axis(svg, frame, panel)
        draw_lines(
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
            draw_cross(svg, item, frame.clamp(count.t), panel.y(count.pods), 5)
        return [(MEASURED, "pods (not terminating)"), (READY, "Ready pods"), *entries]

    return height, draw


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
                svg.tip(
                    svg.text(group, LABEL_W - 8, y + 14, short_label(label), anchor="end"), label
                )
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
                (key, float(v), limit)
                for key, v, limit in ((first, a, slice_bound), (second, b, routing_bound))
                if v is not None and limit is not None and float(v) > limit
            ]
            for key, value, limit in over:
                item = svg.group(group, cls="violation")
                svg.tip(
                    item,
                    f"{pod}: {ROUTING_STEP_WORDS[key]} {value:.3f} s, over its "
                    f"bound of {limit:g} s",
                )
                draw_cross(
                    svg, item, x(start + (value if key == second else 0.0)), y + row_h / 2, 5
                )
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


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """'v1 -> v2 in 12 s, 0 of 373 requests failed; ...'."""
    del recording
    if "rollout_s" not in f:
        return None
    versions = sorted((f.get("by_version") or {}).keys())
    move = f" {ARROW} ".join(versions) if versions else "new version"
    text = f"{move} in {secs(f['rollout_s'])} s"
    if f.get("requests") is not None:
        text += f", {num(f.get('failed') or 0)} of {num(f['requests'])} requests failed"
    if f.get("max_pods") is not None and f.get("min_ready") is not None:
        text += f"; at most {f['max_pods']} pods, at least {f['min_ready']} Ready"
    return text


def routing_caption(figures: Mapping[str, Any], *, early: bool = False) -> str:
    """The routing-lag chart's caption: the bounds and the worst lag of each kind."""
    slice_bound = bound(figures.get("slice_lag_bound_s"))
    routing_bound = bound(figures.get("routing_lag_bound_s"))
    worst = worst_lags(
        figures.get("routing_lags_s") or {}, slice_bound=slice_bound, routing_bound=routing_bound
    )
    parts = []
    for lag, what in zip(worst, ("The EndpointSlice's", "The answers'"), strict=True):
        if lag is None:
            continue
        limit = f"its bound of {lag.bound:g} s" if lag.bound is not None else "no bound stated"
        verdict = "within" if lag.within else "OVER"
        parts.append(
            f"{what} worst lag: {lag.seconds:.3f} s ({ROUTING_STEP_WORDS[lag.step]}, "
            f"{lag.pod}), {verdict} {limit}."
        )
    return (
        "Routing lag per pod: bars start at the pod's Ready (left) or its being told to stop "
        "(right); the dotted part is the EndpointSlice catching up, the solid part the answers "
        "through the Service (a last answer before the pod left the slice points left). "
        + " ".join(parts)
        + (
            " * Ready before the traffic began: its first answer is counted from the traffic's "
            "start."
            if early
            else ""
        )
    )


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests by the version that answered; beneath, pods against the rolling-update bounds."""
    del end
    recording = test.get("recording")
    probes = test.get("probes") or []
    figures = test.get("figures") or {}
    if not probes:
        return None
    probe = probes[0]
    answers = answers_of(probe, recording)
    window = probe_window(probe, recording)
    if window is None:
        return None
    deployments = samples_of(recording, "deployments")
    app = next(
        (str(s["name"]) for s in deployments if s.get("name") != "prober"),
        str(probe.get("label") or ""),
    )
    replicas = figures.get("replicas") or next(
        (s.get("spec_replicas") for s in deployments if s.get("name") == app), None
    )
    below = pod_count_panel(
        pod_counts(recording, app),
        replicas=replicas,
        max_surge=figures.get("max_surge"),
        max_unavailable=figures.get("max_unavailable"),
    )

    def by_version(answer: Answer) -> str:
        return answer.version or "?"

    versions = sorted({a.version or "?" for a in answers if a.ok})
    return traffic_chart(
        answers,
        marks,
        window,
        prefix=prefix,
        series_of=by_version,
        order=versions,
        label_of=lambda version: f"version {version}",
        title="Requests during the rollout",
        below=below,
    )


def more_charts(test: Mapping[str, Any], end: float, prefix: str) -> list[tuple[Markup, str]]:
    """Routing lag per pod: Ready to the slice to its first answer, stop to out to its last."""
    figures = test.get("figures") or {}
    recording = test.get("recording")
    lags = figures.get("routing_lags_s")
    if not isinstance(lags, Mapping) or not lags:
        return []
    probes = test.get("probes") or []
    window = probe_window(probes[0], recording) if probes else None
    labels = {}
    for lane in lanes_of(recording, end):
        if lane.name not in lags:
            continue
        ready = min((s.start for s in lane.spans if s.status == "Ready"), default=None)
        early = window is not None and ready is not None and ready < window[0]
        labels[lane.name] = (
            lane.name + (f" ({lane.tag})" if lane.tag else "") + (" *" if early else "")
        )
    chart = routing_lag_chart(
        lags,
        prefix=f"{prefix}-rl",
        slice_bound=bound(figures.get("slice_lag_bound_s")),
        routing_bound=bound(figures.get("routing_lag_bound_s")),
        labels=labels,
    )
    early = any(label.endswith(" *") for label in labels.values())
    return [(chart, routing_caption(figures, early=early))]


#: Its figures' words on the page.
FIGURE_WORDS = {
    "rollout_s": "rollout took (s)",
    "rollout_deadline_s": "rollout deadline (s)",
    "by_version": "answers per version",
    "max_pods": "most pods (not terminating)",
    "max_pods_with_terminating": "most pods, terminating too",
    "min_ready": "fewest Ready pods",
    "moments": "pod changes observed",
    "max_surge": "maxSurge",
    "max_unavailable": "maxUnavailable",
    "largest_traffic_gap_s": "largest gap between requests (s)",
    "traffic_rate_per_s": "requests per second",
    "routing_lag_bound_s": "routing-lag bound: left the slice to last answer (s)",
    "join_lag_bound_s": "routing-lag bound: listed in the slice to first answer (s)",
    "slice_lag_bound_s": "slice bound: Ready or stop to the EndpointSlice (s)",
    "drain_s": "preStop drain (s)",
    "answers_while_terminating": "answers from pods told to stop (draining)",
    "answers_before_ready": "answers from pods not yet Ready",
    "answers_after_leaving": "answers later than the routing-lag bound after leaving the slice",
    "max_ready_to_slice_s": "worst Ready to in the slice (s)",
    "max_slice_to_first_answer_s": "worst in the slice to first answer (s)",
    "max_terminating_to_out_s": "worst told to stop to out of the slice (s)",
    "max_out_to_last_answer_s": "worst out of the slice to last answer (s)",
    "routing_lags_s": "routing lags per pod",
    "service_routed_s": "Service first answered after traffic began (s)",
    "failed_before_routed": (
        "failed while the fresh Service started up (until every v1 pod answered)"
    ),
}

"""Out of memory and the restart back-off in the report: its headline (the kills, each restart's
delay against the back-off, the requests), its chart (requests through the Service by pod; under
them the killed container's state over time and each restart's delay against its window) and its
figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import LABEL_W, LANE_H, TimeFrame, short_label, traffic_chart
from suite.report.data import Answer, Mark, Record, answers_of, mark_detail, probe_window
from suite.report.svg import FAILED, GREEN, GREY, VERMILION, Look, Stroke, Svg
from suite.report.words import num, secs

#: The container's states, as the lane draws them.
STATE_LOOKS = {
    "running": Look(GREEN),
    "OOMKilled": FAILED,
    "CrashLoopBackOff": Look(GREY, "hatch"),
    "other": Look("#d4d4d4", "dots"),
}
STATE_WORDS = {
    "running": "running",
    "OOMKilled": "OOMKilled",
    "CrashLoopBackOff": "CrashLoopBackOff",
    "other": "other state",
}
WINDOW_LOOK = Look("#f6e7c1", "horizontal", ink="#b08000")
DELAY_STROKE = Stroke(VERMILION, None, 3.0)
#: The panel under the requests: the container lane, then the delays lane.
PANEL_H = 2 * LANE_H + 16


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """'3 OOM kills (OOMKilled x3); restarts after 1 s, 15 s, 33 s (back-off 0, 10, 20 s); ...'"""
    del recording
    delays = f.get("restart_delays_s")
    if not isinstance(delays, Sequence) or "kills" not in f:
        return None
    reasons = [str(r) for r in f.get("reasons") or []]
    oom = sum(r == "OOMKilled" for r in reasons)
    text = f"{num(f['kills'])} OOM kills asked, {num(oom)} reported OOMKilled"
    shown = ", ".join("?" if d is None else f"{secs(d)}" for d in delays)
    text += f"; restarts after {shown} s"
    expected = f.get("expected_backoff_s")
    if isinstance(expected, Sequence):
        text += f" (back-off {', '.join(f'{secs(e)}' for e in expected)} s)"
    if f.get("requests") is not None:
        text += (
            f"; {num(f.get('failed') or 0)} of {num(f['requests'])} requests through the Service "
            "failed, all while the dead pod was still routed to"
            if f.get("failed")
            else f"; 0 of {num(f['requests'])} requests through the Service failed"
        )
    if f.get("serving_again_after_s") is not None:
        text += f"; serving again {secs(f['serving_again_after_s'])} s after the OOM"
    return text


def _state_key(container: Mapping[str, Any]) -> str:
    state, reason = container.get("state"), container.get("reason")
    if state == "running":
        return "running"
    if state == "terminated" and reason == "OOMKilled":
        return "OOMKilled"
    if state == "waiting" and reason == "CrashLoopBackOff":
        return "CrashLoopBackOff"
    return "other"


def container_spans(
    recording: Mapping[str, Any] | None, pod: str, end: float
) -> list[tuple[float, float, str]]:
    """(start, end, state) of the pod's first container, from the recorded pod states."""
    entries = [
        p
        for p in (recording or {}).get("pods") or []
        if p.get("name") == pod and (p.get("state") or {}).get("containers")
    ]
    spans: list[tuple[float, float, str]] = []
    for index, entry in enumerate(entries):
        after = entries[index + 1] if index + 1 < len(entries) else None
        start = float(entry["t"])
        stop = float(after["t"]) if after is not None else end
        key = _state_key(entry["state"]["containers"][0])
        if spans and spans[-1][2] == key and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], stop, key)
        else:
            spans.append((start, stop, key))
    return spans


def _delays_panel(
    spans: Sequence[tuple[float, float, str]],
    figures: Mapping[str, Any],
    origin: float,
    pod: str,
) -> tuple[float, Any]:
    """The container lane and the delays lane, for traffic_chart's `below`."""
    runs = [r for r in figures.get("runs") or [] if isinstance(r, Mapping)]
    delays = list(figures.get("restart_delays_s") or [])
    windows = list(figures.get("delay_windows_s") or [])
    expected = list(figures.get("expected_backoff_s") or [])

    def draw(svg: Svg, frame: TimeFrame, top: float) -> list[tuple[Look | Stroke, str]]:
        group = svg.group(cls="container-lane")
        svg.text(group, LABEL_W - 8, top + 14, short_label(f"{pod} container"), anchor="end")
        for start, stop, key in spans:
            x0, x1 = frame.clamp(start), frame.clamp(stop)
            rect = svg.el(
                group,
                "rect",
                x=x0,
                y=top,
                width=max(1.0, x1 - x0),
                height=LANE_H,
                fill=svg.fill(STATE_LOOKS[key]),
            )
            svg.tip(rect, f"{STATE_WORDS[key]} from {start:.1f} s to {stop:.1f} s")
        y = top + LANE_H + 8
        lane = svg.group(cls="delays-lane")
        svg.text(lane, LABEL_W - 8, y + 14, "restart delays vs back-off", anchor="end")
        for index, delay in enumerate(delays):
            before = runs[index] if index < len(runs) else {}
            finished = before.get("finished")
            if finished is None or delay is None:
                continue
            t_end = float(finished) - origin
            if index < len(windows):
                low, high = windows[index]
                x0, x1 = frame.clamp(t_end + low), frame.clamp(t_end + high)
                band = svg.el(
                    lane,
                    "rect",
                    x=x0,
                    y=y + 2,
                    width=max(1.0, x1 - x0),
                    height=LANE_H - 4,
                    fill=svg.fill(WINDOW_LOOK),
                )
                svg.tip(
                    band,
                    f"restart {index + 1}: allowed {low:g} s to {high:g} s after the kill "
                    f"(back-off {expected[index] if index < len(expected) else '?'} s)",
                )
            x0, x1 = frame.clamp(t_end), frame.clamp(t_end + float(delay))
            mid = y + LANE_H / 2
            bracket = svg.group(lane, cls="delay")
            for x in (x0, x1):
                svg.el(bracket, "line", x1=x, y1=mid - 5, x2=x, y2=mid + 5, **DELAY_STROKE.attrs())
            svg.el(bracket, "line", x1=x0, y1=mid, x2=x1, y2=mid, **DELAY_STROKE.attrs())
            svg.tip(bracket, f"restart {index + 1}: {float(delay):g} s after the OOM kill")
            svg.text(lane, x1 + 3, y + 4, f"{float(delay):g} s", cls="band-label")
        shown = {key for _, _, key in spans} | {"running", "OOMKilled", "CrashLoopBackOff"}
        return [
            *((STATE_LOOKS[key], STATE_WORDS[key]) for key in STATE_LOOKS if key in shown),
            (WINDOW_LOOK, "back-off window"),
            (DELAY_STROKE, "restart delay"),
        ]

    return PANEL_H, draw


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests through the Service by the pod that answered; beneath, the killed container's
    state over time and each restart's delay against its back-off window."""
    recording = test.get("recording")
    probes = test.get("probes") or []
    figures = test.get("figures") or {}
    if not probes or not recording:
        return None
    window = probe_window(probes[0], recording)
    if window is None:
        return None
    victim = mark_detail(recording, "oom", "pod")
    origin = float(recording.get("started_wall") or 0.0)
    below = (
        _delays_panel(container_spans(recording, victim, end), figures, origin, victim)
        if victim
        else None
    )

    def by_pod(answer: Answer) -> str:
        return answer.pod or "?"

    return traffic_chart(
        answers_of(probes[0], recording),
        marks,
        window,
        prefix=prefix,
        series_of=by_pod,
        order=[victim] if victim else [],
        label_of=lambda pod: f"{pod} (run out of memory)" if pod == victim else pod,
        title="Requests through the Service around the OOM kills",
        below=below,
    )


#: Its figures' words on the page.
FIGURE_WORDS = {
    "kills": "OOM kills asked (POST /oom and the failing starts)",
    "reasons": "each run's end, as the kubelet reported it",
    "restart_delays_s": "restart delays: a run's end to the next start (s)",
    "expected_backoff_s": "the kubelet's back-off before each restart (s)",
    "delay_windows_s": "each restart's allowed window (s)",
    "backoff_source": "the back-off read from",
    "runs": "the container's runs (start, end, reason)",
    "not_ready_after_s": "POST /oom \u2192 NotReady (s)",
    "slice_out_after_not_ready_s": "NotReady \u2192 out of the EndpointSlice (s)",
    "last_failure_after_slice_out_s": "out of the EndpointSlice \u2192 last failed request (s)",
    "serving_again_after_s": "POST /oom \u2192 Ready again after the restarts (s)",
    "first_answer_after_slice_in_s": "listed ready again \u2192 first answer (s)",
    "requests": "requests through the Service",
    "failed": "failed requests",
    "failed_after_oom": "failed requests after the OOM (while the dead pod was routed to)",
    "answered_by": "answers per pod",
    "other_gap_s": "other replica's longest stretch without an answer (s)",
    "restart_count": "restartCount at the end",
    "clock_skew_s": "prober clock skew bound (s)",
}

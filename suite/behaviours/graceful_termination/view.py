"""Graceful termination in the report: its headline (the failed requests of each half side by
side), its chart (the two rollouts' requests on one time axis, one above the other) and its
figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import traffic_chart
from suite.report.data import Answer, Mark, Record, answers_of, probe_window
from suite.report.words import num

#: The two halves, by the label of their traffic, and how the chart titles them.
HALVES = {
    "incver": "Graceful (preStop drain, then SIGTERM lets requests finish)",
    "incver-abrupt": "Abrupt (no preStop, exits on SIGTERM)",
}


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """Both halves' failed requests, next to each other."""
    del recording
    if "graceful_failed" not in f or "abrupt_failed" not in f:
        return None
    text = (
        f"same rollout side by side: graceful {num(f['graceful_failed'])} of "
        f"{num(f.get('graceful_requests') or 0)} requests failed, abrupt "
        f"{num(f['abrupt_failed'])} of {num(f.get('abrupt_requests') or 0)}"
    )
    draining = f.get("graceful_answers_while_terminating")
    if draining is not None:
        text += f"; {num(draining)} answers from graceful pods while they drained"
    return text


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests through each half's Service by the version that answered, on one time axis."""
    del end
    recording = test.get("recording")
    probes = {str(p.get("label")): p for p in test.get("probes") or [] if p.get("label") in HALVES}
    windows = [probe_window(p, recording) for p in probes.values()]
    spans = [w for w in windows if w is not None]
    if not spans:
        return None
    window = (min(w[0] for w in spans), max(w[1] for w in spans))

    def by_version(answer: Answer) -> str:
        return answer.version or "?"

    parts = [
        traffic_chart(
            answers_of(probe, recording),
            marks,
            window,
            prefix=f"{prefix}-{label}",
            series_of=by_version,
            order=["v1", "v2"],
            label_of=lambda version: version,
            title=HALVES[label],
        )
        for label, probe in sorted(probes.items(), key=lambda item: list(HALVES).index(item[0]))
    ]
    return Markup("").join(parts)


#: Its figures' words on the page.
FIGURE_WORDS = {
    "replicas": "replicas of each half",
    "drain_s": "graceful half's preStop drain (s)",
    "routing_lag_bound_s": "routing lag bound (s)",
    "rollout_s": "both rollouts, image change \u2192 complete (s)",
    "graceful_requests": "graceful half: requests",
    "graceful_failed": "graceful half: failed requests",
    "graceful_answers_while_terminating": "graceful half: answers from pods told to stop",
    "graceful_stop_to_gone_s": "graceful half: told to stop \u2192 gone, least and most (s)",
    "abrupt_requests": "abrupt half: requests",
    "abrupt_failed": "abrupt half: failed requests",
    "abrupt_failed_as": "abrupt half: failed requests by kind",
    "abrupt_answers_while_terminating": "abrupt half: answers from pods told to stop",
    "abrupt_stop_to_gone_s": "abrupt half: told to stop \u2192 gone, least and most (s)",
    "abrupt_failures_placed": "abrupt half: where its failures fell",
    "failed_before_routed": "failed while the fresh Services started up (not judged)",
    "clock_skew_s": "prober clock skew bound (s)",
}

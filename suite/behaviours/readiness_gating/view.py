"""Readiness gating in the report: its headline (out and back, the lags, the requests), its chart
(the requests around the flips, by the pod that answered) and its figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import requests_by_pod
from suite.report.data import Mark, Record
from suite.report.words import num, secs


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """The flipped pod's way out of the Service and back, and the requests meanwhile."""
    del recording
    if "answers_while_out" not in f:
        return None
    text = "not-ready pod out of the EndpointSlice"
    if f.get("out_of_slice_after_s") is not None:
        text += f" {secs(f['out_of_slice_after_s'])} s after the flip"
    if f.get("last_answer_after_s") is not None:
        text += f" (last answer {secs(f['last_answer_after_s'])} s)"
    if f.get("first_answer_after_s") is not None:
        text += f", answering again {secs(f['first_answer_after_s'])} s after the flip back"
    text += f"; {num(f['answers_while_out'])} answers from it while out"
    if f.get("requests") is not None:
        text += f", {num(f.get('failed') or 0)} of {num(f['requests'])} requests failed"
    restarts = f.get("restarts")
    if isinstance(restarts, Mapping):
        text += f", {num(sum(int(v) for v in restarts.values()))} restarts"
    return text


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests through the Service around the flips, by the pod that answered."""
    del end
    return requests_by_pod(
        test,
        marks,
        prefix=prefix,
        mark="unready",
        role="flipped not-ready",
        title="Requests around the readiness flips",
    )


#: Its figures' words on the page.
FIGURE_WORDS = {
    "not_ready_after_s": "POST /unready \u2192 NotReady (s)",
    "slice_out_after_not_ready_s": "NotReady \u2192 out of the EndpointSlice (s)",
    "last_answer_after_slice_out_s": "out of the EndpointSlice \u2192 last answer (s)",
    "out_of_slice_after_s": "POST /unready \u2192 out of the EndpointSlice (s)",
    "last_answer_after_s": "POST /unready \u2192 last answer through the Service (s)",
    "ready_after_s": "POST /ready \u2192 Ready (s)",
    "slice_in_after_ready_s": "Ready \u2192 listed ready in the EndpointSlice (s)",
    "first_answer_after_slice_in_s": "listed ready \u2192 first answer (s)",
    "first_answer_after_s": "POST /ready \u2192 first answer through the Service (s)",
    "not_ready_deadline_s": "NotReady deadline, from the admitted readiness probe (s)",
    "ready_deadline_s": "Ready deadline, from the admitted readiness probe (s)",
    "slice_bound_s": "EndpointSlice bound (s)",
    "proxy_bound_s": "service proxy bound (s)",
    "join_bound_s": "bound: listed ready again to its first answer (s)",
    "out_s": "judged out of the Service for (s)",
    "answers_while_out": "answers from the pod while out",
    "other_gap_s": "other replica's longest stretch without an answer (s)",
    "restarts": "restarts during the run, per pod",
}

"""The node failure in the report: its headline (NotReady, taint, eviction, replacements, the
failed requests and their window, the rejoin), its chart (requests by the node that answered) and
its figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.charts import traffic_chart
from suite.report.data import Answer, Mark, Record, answers_of, probe_window
from suite.report.words import num, secs


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """NotReady, tainted, evicted, replaced after so long; the failed requests; the rejoin."""
    del recording
    if "not_ready_after_s" not in f:
        return None
    node = f.get("stopped_node", "?")
    text = f"node {node} NotReady {secs(f['not_ready_after_s'])} s after it stopped"
    if f.get("grace_period_s") is not None:
        text += f" (grace period {secs(f['grace_period_s'])} s)"
    if f.get("evicted_after_taint_s") is not None:
        text += f", pods evicted {secs(f['evicted_after_taint_s'])} s after the taint"
    if f.get("replaced_after_s") is not None:
        text += f", replaced at +{secs(f['replaced_after_s'])} s"
    if f.get("requests") is not None:
        text += f"; {num(f.get('failed') or 0)} of {num(f['requests'])} requests failed"
        if f.get("failed"):
            text += f" within {secs(f.get('failed_window_s') or 0)} s"
    if f.get("rejoined_after_s") is not None:
        text += f"; rejoined {secs(f['rejoined_after_s'])} s after its restart"
    return text


def _nodes_of(recording: Record | None) -> dict[str, str]:
    """Pod name -> node, from the recorder's pod states."""
    found: dict[str, str] = {}
    for entry in (recording or {}).get("pods") or []:
        state = entry.get("state") or {}
        if state.get("node"):
            found[str(entry.get("name"))] = str(state["node"])
    return found


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """Requests through the Service by the node that answered, with the failure's marks."""
    del end
    recording = test.get("recording")
    probes = test.get("probes") or []
    if not probes:
        return None
    probe = probes[0]
    window = probe_window(probe, recording)
    if window is None:
        return None
    nodes = _nodes_of(recording)

    def by_node(answer: Answer) -> str:
        return nodes.get(answer.pod or "", "?")

    answers = answers_of(probe, recording)
    return traffic_chart(
        answers,
        marks,
        window,
        prefix=prefix,
        series_of=by_node,
        order=sorted({by_node(a) for a in answers if a.ok}),
        label_of=lambda node: f"a pod on {node}",
        title="Requests through the node failure",
    )


#: Its figures' words on the page.
FIGURE_WORDS = {
    "grace_period_s": "node-monitor-grace-period (s)",
    "grace_period_from": "grace period read from",
    "not_ready_bound_s": "stop \u2192 NotReady bound (s)",
    "toleration_s": "tolerationSeconds, as admitted (s)",
    "placement": "pods per node before the stop",
    "stopped_node": "the stopped node",
    "prober_node": "the prober's node",
    "stopped_pods": "pods on the stopped node",
    "failed_window_s": "first to last failed request (s)",
    "first_failed_after_s": "stop \u2192 first failed request (s)",
    "last_failed_after_s": "stop \u2192 last failed request ends (s)",
    "not_ready_after_s": "stop \u2192 NotReady (s)",
    "tainted_after_s": "stop \u2192 NoExecute taint (s)",
    "evicted_after_s": "stop \u2192 last pod evicted (s)",
    "evicted_after_taint_s": "taint \u2192 last pod evicted (s)",
    "out_of_service_after_s": "stop \u2192 its pods out of the EndpointSlices (s)",
    "replaced_after_s": "stop \u2192 replacements Ready (s)",
    "stopped_for_s": "node stopped for (s)",
    "pause_attempts": "docker pause attempts (the freezer may give up)",
    "rejoined_after_s": "restart \u2192 Ready and untainted (s)",
    "largest_traffic_gap_s": "largest gap between requests (s)",
    "traffic_rate_per_s": "requests per second",
}

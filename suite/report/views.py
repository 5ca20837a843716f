"""From report.json to what the page shows: cluster facts, one line per behaviour with its verdict
and headline figures, and per behaviour its tests with their timeline, chart, figures and (on
failure) evidence.

Headlines are written from the figures each scenario records (`figures.update(...)` in
`suite/scenarios/`); a test that failed before recording them shows its assertion instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from suite import floors
from suite.report import charts
from suite.report.data import (
    Answer,
    Mark,
    Record,
    answers_of,
    end_of,
    lanes_of,
    mark_detail,
    mark_t,
    marks_of,
    pod_counts,
    probe_window,
    samples_of,
)
from suite.report.svg import ARROW, TIMES, fmt_number


@dataclass(frozen=True)
class Behaviour:
    """One of the four behaviours: which scenario module proves it, and how to say it."""

    key: str
    title: str
    module: str
    what: str
    chart_caption: str


BEHAVIOURS = (
    Behaviour(
        "load-balancing",
        "Load balancing",
        "test_load_balancing.py",
        "A Service spreads new connections over every ready replica. Four replicas of a small "
        "web app answer requests sent through one Service name, each on a new connection; every "
        "replica answers, and the counts are tested against an even spread (chi-square).",
        "Requests answered by each pod; the dashed line is an even share.",
    ),
    Behaviour(
        "self-healing",
        "Self-healing",
        "test_self_healing.py",
        "Kubernetes restarts a sick or crashed container and replaces a lost pod, while the "
        "Service keeps answering from the healthy replica. One of two replicas is infected (its "
        "health check fails), one has its process killed, one pod is deleted.",
        "Requests through the Service around the infection, by the pod that answered; failed "
        "requests are crossed on the strip beneath.",
    ),
    Behaviour(
        "autoscaling",
        "CPU autoscaling",
        "test_autoscaling.py",
        "A HorizontalPodAutoscaler adds replicas when CPU use passes its target and removes them "
        "after the load is gone. CPU-heavy requests are sent for a bounded time; the replica "
        "count follows.",
        "Top: CPU use (the HPA's average, in % of the pods' CPU request) against the target. "
        "Bottom: the replicas the HPA asked for, and the pods that were Ready.",
    ),
    Behaviour(
        "rolling-update",
        "Rolling update",
        "test_rolling_update.py",
        "A new version replaces the old one pod by pod under continuous traffic, without a "
        "single failed request, never running more pods than allowed (maxSurge) nor fewer ready "
        "ones than required (maxUnavailable).",
        "Top: requests through the Service by the version that answered; failed requests are "
        "crossed on the strip. Bottom: pods against the rolling-update bounds.",
    ),
)

VERDICT_WORDS = {
    "passed": "✓ passed",
    "failed": "✗ FAILED",
    "error": "✗ ERROR",
    "skipped": "\u2013 skipped",
    "missing": "? not run",
    "unknown": "? unknown",
}


def _s(value: Any, digits: int = 1) -> str:
    """Seconds, without a needless `.0`."""
    number = float(value)
    text = f"{number:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _n(value: Any) -> str:
    return fmt_number(float(value))


def _first_line(text: str, limit: int = 160) -> str:
    """The assertion's own words: pytest's first `E` line, or the last line of the text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = next((line[1:].strip() for line in lines if line.startswith("E ")), None)
    found = found or (lines[-1] if lines else "")
    for prefix in ("AssertionError: ", "Failed: "):
        found = found.removeprefix(prefix)
    if len(found) <= limit:
        return found
    return found[:limit].rsplit(" ", 1)[0] + " \u2026"


ACRONYMS = {"cpu": "CPU", "hpa": "HPA", "http": "HTTP", "api": "API", "dns": "DNS"}


def _sentence(name: str) -> str:
    words = [ACRONYMS.get(word, word) for word in name.removeprefix("test_").split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


# -- headlines, from each scenario's figures -------------------------------------------------------


def _lb_headline(f: Mapping[str, Any]) -> str | None:
    if "requests" not in f or "by_pod" not in f:
        return None
    replicas = f.get("replicas") or len(f["by_pod"])
    text = (
        f"{len(f['by_pod'])}/{replicas} replicas answered {_n(f.get('answered', f['requests']))} "
        f"requests"
    )
    if f.get("failed"):
        text += f", {_n(f['failed'])} failed"
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


def _infected_headline(f: Mapping[str, Any]) -> str | None:
    if "failed_while_out" in f:
        text = (
            f"NotReady {_s(f.get('not_ready_after_s') or 0)} s after infection, restarted after "
            f"{_s(f['restarted_after_s'])} s, "
            f"Ready again after {_s(f.get('ready_again_after_s') or 0)} s"
        )
        if f.get("answering_again_after_s") is not None:
            text += f", answering through the Service {_s(f['answering_again_after_s'])} s later"
        if f.get("requests") is not None:
            text += (
                f"; {_n(f['failed_while_out'])} of {_n(f['requests'])} requests failed while "
                f"the Service routed around it ({_n(f.get('failed_before_routed_around') or 0)} "
                "before)"
            )
        return text
    if "floor_s" not in f and "failed_while_leaving_endpoints" not in f:
        return None
    text = f"restarted {_s(f['restarted_after_s'])} s after infection"
    if f.get("floor_s") is not None:
        text += f" (floor {_s(f['floor_s'])} s)"
    if f.get("ready_again_after_s") is not None:
        text += f", Ready again after {_s(f['ready_again_after_s'])} s"
    if f.get("requests") is not None:
        leaving = f.get("failed_while_leaving_endpoints") or 0
        other = f.get("failed_otherwise") or 0
        text += f"; {_n(leaving + other)} of {_n(f['requests'])} requests failed"
        if other:
            text += f", {_n(other)} of them outside the window in which the sick pod left"
        elif leaving:
            text += ", all while the sick pod was leaving the Service"
    return text


def _killed_headline(f: Mapping[str, Any]) -> str | None:
    if "exit_code" not in f:
        return None
    text = f"killed process (exit {f['exit_code']}) restarted after {_s(f['restarted_after_s'])} s"
    if f.get("ready_again_after_s") is not None:
        text += f", Ready after {_s(f['ready_again_after_s'])} s"
    return text


def _deleted_headline(f: Mapping[str, Any]) -> str | None:
    if "replaced_and_ready_after_s" not in f:
        return None
    return f"deleted pod replaced, Ready after {_s(f['replaced_and_ready_after_s'])} s"


def _autoscaling_headline(f: Mapping[str, Any], recording: Record | None) -> str | None:
    if "scaled_out_after_s" not in f:
        return None
    hpas = samples_of(recording, "hpas")
    low = next((s.get("min_replicas") for s in hpas if s.get("min_replicas")), 1)
    high = (
        f.get("max_replicas_seen") or f.get("ready_at_scale_out") or f.get("replicas_at_scale_out")
    )
    text = f"{low} {ARROW} {high} replicas {_s(f['scaled_out_after_s'], 0)} s after load began"
    if f.get("scaled_in_after_s") is not None:
        text += f", back to {low} {_s(f['scaled_in_after_s'], 0)} s after it stopped"
    if f.get("peak_cpu_percent") is not None:
        target = next(
            (s.get("target_utilization") for s in hpas if s.get("target_utilization")), None
        )
        text += f" (CPU peak {f['peak_cpu_percent']} %" + (
            f", target {target} %)" if target else ")"
        )
    return text


def _rolling_headline(f: Mapping[str, Any]) -> str | None:
    if "rollout_s" not in f:
        return None
    versions = sorted((f.get("by_version") or {}).keys())
    move = f" {ARROW} ".join(versions) if versions else "new version"
    text = f"{move} in {_s(f['rollout_s'])} s"
    if f.get("requests") is not None:
        text += f", {_n(f.get('failed') or 0)} of {_n(f['requests'])} requests failed"
    if f.get("max_pods") is not None and f.get("min_ready") is not None:
        text += f"; at most {f['max_pods']} pods, at least {f['min_ready']} Ready"
    return text


HEADLINES: dict[str, Sequence[Callable[[Mapping[str, Any]], str | None]]] = {
    "load-balancing": (_lb_headline,),
    "self-healing": (_infected_headline, _killed_headline, _deleted_headline),
    "rolling-update": (_rolling_headline,),
}

#: Figures that say how a test went, with the words for them (others are shown by their key).
FIGURE_WORDS = {
    "replicas": "replicas",
    "requests": "requests sent",
    "answered": "answered",
    "failed": "failed requests",
    "by_pod": "answers per pod",
    "answered_by": "answers per pod",
    "chi_square": "chi-square statistic",
    "p_value": "p-value (uniform spread)",
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
    "scaled_out_after_s": "scaled out after (s)",
    "scale_out_deadline_s": "scale-out deadline (s)",
    "replicas_at_scale_out": "replicas at scale-out",
    "max_replicas_seen": "most replicas wanted",
    "peak_cpu_percent": "peak CPU (% of request)",
    "load_requests": "load requests",
    "scaled_in_after_s": "back in after (s)",
    "scale_in_deadline_s": "scale-in deadline (s)",
    "rollout_s": "rollout took (s)",
    "rollout_deadline_s": "rollout deadline (s)",
    "by_version": "answers per version",
    "max_pods": "most pods (not terminating)",
    "max_pods_with_terminating": "most pods, terminating too",
    "min_ready": "fewest Ready pods",
    "moments": "pod changes observed",
    "max_surge": "maxSurge",
    "max_unavailable": "maxUnavailable",
    "node_of_pod": "node of each pod",
    "by_node": "answers per node",
    "share_pct": "share per pod (%)",
    "share_bound_pp": "share bound (points from fair)",
    "schedulable_nodes": "schedulable nodes",
    "paths": "from each node's client, per path: answered, failed, replicas answering",
    "service_converged_s": "Service converged after (s)",
    "restart_earliest_s": "restart no earlier than (s)",
    "routing_bound_s": "routed around within (s)",
    "sick_out_s": "sick pod out of the Service for (s)",
    "restart_deadline_s": "restart deadline, from the admitted liveness probe (s)",
    "slice_out_after_not_ready_s": "out of the EndpointSlice after NotReady (s)",
    "answering_again_after_s": "answering through the Service again after Ready (s)",
    "answer_gap_s": "longest stretch without an answer, per pod (s)",
    "failed_before_routed_around": "failed before the Service routed around",
    "failed_while_out": "failed while routed around",
    "clock_skew_s": "clock skew bound, measured (s)",
    "ready_at_scale_out": "Ready replicas at scale-out",
    "first_above_target_after_s": "first reading above target after (s)",
    "rescale_asked_after_s": "HPA asked for more after (s)",
    "scale_in_after_last_above_target_s": "scale-in after last reading above target (s)",
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
    "failed_before_routed": "failed before the Service first answered",
    "cluster_timing": "cluster clocks",
    "hpa_rules": "HPA rules, as stored",
    "rescales": "rescales, checked against the HPA formula",
}


def _figure_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_figure_value(v)}" for key, v in sorted(value.items()))
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return _n(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _figure_text(key: str, value: Any) -> str:
    """A figure as the list under a test shows it; a per-pod table that is charted is only
    counted there (the chart has it all, and report.json every number)."""
    if key == "routing_lags_s" and isinstance(value, Mapping) and value:
        return f"{len(value)} pods, charted above (every number in report.json)"
    return _figure_value(value)


# -- the page model --------------------------------------------------------------------------------


@dataclass
class TestView:
    """One test as the page shows it."""

    nodeid: str
    name: str
    title: str
    outcome: str
    verdict: str
    headline: str
    duration_s: float
    namespace: str | None
    figures: list[tuple[str, str]]
    message: str
    skip_reason: str
    evidence: list[tuple[str, str]]
    marks: list[Mark] = field(default_factory=list)
    timeline: Markup | None = None
    chart: Markup | None = None
    chart_caption: str = ""
    traffic: list[str] = field(default_factory=list)
    events: list[Record] = field(default_factory=list)
    events_left_out: int = 0
    lanes_left_out: int = 0
    raw_figures: Mapping[str, Any] = field(default_factory=dict)
    #: Charts of per-pod figures under the behaviour's chart: (chart, its caption).
    more_charts: list[tuple[Markup, str]] = field(default_factory=list)
    #: "took 53 s, 1.2x its physical floor of 44 s = ..." when the scenario states a floor.
    floor_line: str = ""

    @property
    def failed(self) -> bool:
        """Failed or errored."""
        return self.outcome in ("failed", "error")


@dataclass
class BehaviourView:
    """One behaviour: its verdict over its tests, a line of headline figures, the tests."""

    key: str
    title: str
    what: str
    verdict: str
    outcome: str
    headlines: list[str]
    tests: list[TestView]


@dataclass
class Page:
    """Everything the template needs."""

    run_id: str
    when: str
    duration: str
    counts: list[tuple[str, int]]
    cluster: Record | None
    facts: Record
    behaviours: list[BehaviourView]
    other_e2e: list[TestView]
    others: list[TestView]
    others_counts: list[tuple[str, int]]
    exitstatus: int


MAX_EVENTS = 150
MAX_LANES = 40
#: The page stays small (the issue's bound is 3 MB for a full run) however much a failing run
#: has to say: each text keeps its end (where logs and tracebacks say what went wrong), and the
#: page stops inlining evidence past a total; report.json always has all of it.
MAX_TEXT_CHARS = 12_000
EVIDENCE_BUDGET_CHARS = 1_200_000


class Budget:
    """Characters of evidence (messages, logs, events) the page may still inline."""

    def __init__(self, total: int = EVIDENCE_BUDGET_CHARS) -> None:
        self.left = total

    def clip(self, text: str, limit: int = MAX_TEXT_CHARS) -> str:
        """The end of `text`, within the per-text limit and what is left of the page's budget."""
        if self.left <= 0:
            return f"({len(text)} characters left out to keep this page small: see report.json)"
        keep = min(limit, self.left)
        self.left -= min(len(text), keep)
        if len(text) <= keep:
            return text
        return f"... ({len(text) - keep} characters left out: see report.json) ...\n" + text[-keep:]


def _outcome_of(outcomes: Sequence[str]) -> str:
    if not outcomes:
        return "missing"
    for worst in ("error", "failed"):
        if worst in outcomes:
            return "failed"
    if all(outcome == "skipped" for outcome in outcomes):
        return "skipped"
    if "passed" in outcomes:
        return "passed"
    return outcomes[0]


def _headline(behaviour: str, test: Mapping[str, Any]) -> str:
    figures = test.get("figures") or {}
    recording = test.get("recording")
    found: str | None = None
    if behaviour == "autoscaling":
        found = _autoscaling_headline(figures, recording)
    for make in HEADLINES.get(behaviour, ()):
        found = found or make(figures)
    if test.get("outcome") == "skipped":
        return f"skipped: {test.get('skip_reason') or ''}".strip()
    if test.get("outcome") in ("failed", "error"):
        why = _first_line(str(test.get("message") or ""))
        return f"{found}. Failed: {why}" if found and why else found or why or "failed"
    return found or ", ".join(f"{k} {_figure_value(v)}" for k, v in sorted(figures.items()))


def _traffic_lines(test: Mapping[str, Any]) -> list[str]:
    lines = []
    for probe in test.get("probes") or []:
        request = probe.get("request") or {}
        text = (
            f"{probe.get('label') or 'traffic'}: {_n(probe.get('sent', 0))} sent, "
            f"{_n(probe.get('ok', 0))} answered, {_n(probe.get('failed', 0))} failed; to "
            f"{request.get('url', '?')}, {request.get('concurrency', 1)} at a time, each on a new "
            "connection"
        )
        if probe.get("errors"):
            text += f"; prober errors: {probe['errors'][-1]}"
        lines.append(text)
    return lines


def _chart(
    behaviour: str, test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str
) -> Markup | None:
    recording = test.get("recording")
    probes = test.get("probes") or []
    figures = test.get("figures") or {}
    if behaviour == "load-balancing":
        counts = figures.get("by_pod") or (probes[0].get("by_pod") if probes else None)
        if not counts:
            return None
        failed = sum(int(p.get("failed") or 0) for p in probes)
        return charts.per_pod_bars(
            counts, prefix=prefix, replicas=figures.get("replicas"), failed=failed
        )
    if behaviour == "autoscaling":
        hpas = samples_of(recording, "hpas")
        if not recording or not hpas:
            return None
        load = None
        start, stop = mark_t(marks, "load start"), mark_t(marks, "load stopped")
        if start is not None:
            load = (start, stop if stop is not None else end)
        return charts.autoscaling_chart(
            recording, marks, end, prefix=prefix, hpa_name=str(hpas[0]["name"]), load=load
        )
    if not probes:
        return None
    probe = probes[0]
    answers = answers_of(probe, recording)
    window = probe_window(probe, recording)
    if window is None:
        return None
    if behaviour == "self-healing":
        sick = mark_detail(recording, "infect", "pod")

        def by_pod(answer: Answer) -> str:
            return answer.pod or "?"

        def pod_label(pod: str) -> str:
            return f"{pod} (infected)" if pod == sick else pod

        return charts.traffic_chart(
            answers,
            marks,
            window,
            prefix=prefix,
            series_of=by_pod,
            order=[sick] if sick else [],
            label_of=pod_label,
            title="Requests around the infection",
        )
    if behaviour == "rolling-update":
        deployments = samples_of(recording, "deployments")
        app = next(
            (str(s["name"]) for s in deployments if s.get("name") != "prober"),
            str(probe.get("label") or ""),
        )
        replicas = figures.get("replicas") or next(
            (s.get("spec_replicas") for s in deployments if s.get("name") == app), None
        )
        below = charts.pod_count_panel(
            pod_counts(recording, app),
            replicas=replicas,
            max_surge=figures.get("max_surge"),
            max_unavailable=figures.get("max_unavailable"),
        )

        def by_version(answer: Answer) -> str:
            return answer.version or "?"

        versions = sorted({a.version or "?" for a in answers if a.ok})
        return charts.traffic_chart(
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
    return None


def _bound(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def routing_caption(figures: Mapping[str, Any], *, early: bool = False) -> str:
    """The routing-lag chart's caption: the bounds and the worst lag of each kind."""
    slice_bound = _bound(figures.get("slice_lag_bound_s"))
    routing_bound = _bound(figures.get("routing_lag_bound_s"))
    worst = charts.worst_lags(
        figures.get("routing_lags_s") or {}, slice_bound=slice_bound, routing_bound=routing_bound
    )
    parts = []
    for lag, what in zip(worst, ("The EndpointSlice's", "The answers'"), strict=True):
        if lag is None:
            continue
        bound = f"its bound of {lag.bound:g} s" if lag.bound is not None else "no bound stated"
        verdict = "within" if lag.within else "OVER"
        parts.append(
            f"{what} worst lag: {lag.seconds:.3f} s ({charts.ROUTING_STEP_WORDS[lag.step]}, "
            f"{lag.pod}), {verdict} {bound}."
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


def _per_pod_charts(
    behaviour: str | None, test: Mapping[str, Any], end: float, prefix: str
) -> list[tuple[Markup, str]]:
    figures = test.get("figures") or {}
    recording = test.get("recording")
    found: list[tuple[Markup, str]] = []
    lags = figures.get("routing_lags_s")
    if behaviour == "rolling-update" and isinstance(lags, Mapping) and lags:
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
        chart = charts.routing_lag_chart(
            lags,
            prefix=f"{prefix}-rl",
            slice_bound=_bound(figures.get("slice_lag_bound_s")),
            routing_bound=_bound(figures.get("routing_lag_bound_s")),
            labels=labels,
        )
        early = any(label.endswith(" *") for label in labels.values())
        found.append((chart, routing_caption(figures, early=early)))
    gaps = figures.get("answer_gap_s")
    if behaviour == "self-healing" and isinstance(gaps, Mapping) and gaps:
        sick = mark_detail(recording, "infect", "pod")
        not_ready = _bound(figures.get("not_ready_after_s"))
        ready = _bound(figures.get("ready_again_after_s"))
        out_s = round(ready - not_ready, 2) if ready is not None and not_ready is not None else None
        chart = charts.answer_gap_bars(
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
        found.append((chart, caption))
    return found


def _body_s(test: Mapping[str, Any]) -> float:
    """The test body's time (report.json's call_s), else its whole time (older reports)."""
    call = test.get("call_s")
    return float(call if call is not None else test.get("duration_s") or 0.0)


def _floor_line(figures: Mapping[str, Any], body_s: float) -> str:
    floor = floors.floor_of(figures)
    if floor is None:
        return ""
    times = floors.multiple(body_s, floor)
    return (
        f"its body took {body_s:.0f} s, {times:.1f}x its physical floor of {floor.describe()}"
        if times is not None
        else ""
    )


def view_of_test(
    test: Mapping[str, Any], behaviour: str | None, index: int, budget: Budget | None = None
) -> TestView:
    """The page's view of one test of report.json."""
    budget = budget or Budget()
    nodeid = str(test.get("nodeid", ""))
    name = nodeid.rsplit("::", 1)[-1]
    recording = test.get("recording")
    probes = test.get("probes") or []
    figures = test.get("figures") or {}
    outcome = str(test.get("outcome") or "unknown")
    view = TestView(
        nodeid=nodeid,
        name=name,
        title=_sentence(name.split("[", 1)[0]),
        outcome=outcome,
        verdict=VERDICT_WORDS.get(outcome, outcome),
        headline=_headline(behaviour, test) if behaviour else "",
        duration_s=float(test.get("duration_s") or 0.0),
        namespace=test.get("namespace"),
        figures=[
            (FIGURE_WORDS.get(key, key), _figure_text(key, value))
            for key, value in figures.items()
            if key != floors.FIGURE_KEY
        ],
        message=budget.clip(str(test.get("message") or "")),
        skip_reason=str(test.get("skip_reason") or ""),
        evidence=[
            (str(title), budget.clip(str(text))) for title, text in test.get("evidence") or []
        ],
        traffic=_traffic_lines(test),
        raw_figures=figures,
        floor_line=_floor_line(figures, _body_s(test)),
    )
    if not recording and not probes:
        return view
    marks = marks_of(recording)
    end = end_of(recording, probes) + 0.5
    view.marks = marks
    prefix = f"t{index}"
    if recording:
        traffic = []
        for probe in probes:
            window = probe_window(probe, recording)
            if window is not None:
                failures = [a.t for a in answers_of(probe, recording) if not a.ok]
                label = f"traffic: {probe.get('label') or 'prober'}"
                traffic.append((label, window[0], window[1], failures))
        lanes = lanes_of(recording, end)
        view.lanes_left_out = max(0, len(lanes) - MAX_LANES)
        view.timeline = charts.timeline(
            lanes[:MAX_LANES], marks, end, prefix=f"{prefix}-tl", traffic=traffic
        )
        events = list(recording.get("events") or [])
        view.events = events[:MAX_EVENTS]
        view.events_left_out = max(0, len(events) - MAX_EVENTS)
    if behaviour:
        view.chart = _chart(behaviour, test, marks, end, f"{prefix}-ch")
        view.chart_caption = next(b.chart_caption for b in BEHAVIOURS if b.key == behaviour)
    view.more_charts = _per_pod_charts(behaviour, test, end, prefix)
    return view


def _rank(behaviour: str, view: TestView) -> int:
    """Tests of a behaviour in the order its story is told (infect, kill, delete)."""
    figures = dict(view.raw_figures)
    for rank, make in enumerate(HEADLINES.get(behaviour, ())):
        if make(figures) is not None:
            return rank
    return len(HEADLINES.get(behaviour, ()))


def _behaviour_of(nodeid: str) -> Behaviour | None:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return next((b for b in BEHAVIOURS if b.module == module), None)


def _is_e2e(test: Mapping[str, Any]) -> bool:
    return "/scenarios/" in f"/{test.get('nodeid', '')}" or bool(test.get("namespace"))


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def page(document: Mapping[str, Any]) -> Page:
    """The page model of a report.json document."""
    tests = list(document.get("tests") or [])
    budget = Budget()
    grouped: dict[str, list[TestView]] = {b.key: [] for b in BEHAVIOURS}
    other_e2e: list[TestView] = []
    others: list[TestView] = []
    kinds = [_behaviour_of(str(test.get("nodeid", ""))) for test in tests]
    # Scenarios first: they get the evidence budget before unit tests do.
    order = sorted(range(len(tests)), key=lambda i: (kinds[i] is None, not _is_e2e(tests[i]), i))
    for index in order:
        test, behaviour = tests[index], kinds[index]
        if behaviour is not None:
            grouped[behaviour.key].append(view_of_test(test, behaviour.key, index, budget))
        elif _is_e2e(test):
            other_e2e.append(view_of_test(test, None, index, budget))
        else:
            others.append(view_of_test(test, None, index, budget))
    behaviours = []
    for behaviour in BEHAVIOURS:
        views = sorted(grouped[behaviour.key], key=lambda view: _rank(behaviour.key, view))
        outcome = _outcome_of([view.outcome for view in views])
        headlines = [view.headline for view in views if view.headline]
        behaviours.append(
            BehaviourView(
                key=behaviour.key,
                title=behaviour.title,
                what=behaviour.what,
                verdict=VERDICT_WORDS[outcome],
                outcome=outcome,
                headlines=headlines or ["not part of this run"],
                tests=views,
            )
        )
    counts: dict[str, int] = {}
    for test in tests:
        counts[str(test.get("outcome"))] = counts.get(str(test.get("outcome")), 0) + 1
    others_counts: dict[str, int] = {}
    for view in others:
        others_counts[view.outcome] = others_counts.get(view.outcome, 0) + 1
    cluster = document.get("cluster")
    return Page(
        run_id=str(document.get("run_id", "")),
        when=_when(float(document.get("started") or 0.0)),
        duration=_duration(float(document.get("duration_s") or 0.0)),
        counts=sorted(counts.items()),
        cluster=cluster,
        facts=(cluster or {}).get("facts") or {},
        behaviours=behaviours,
        other_e2e=other_e2e,
        others=others,
        others_counts=sorted(others_counts.items()),
        exitstatus=int(document.get("exitstatus") or 0),
    )

"""From report.json to what the page shows: cluster facts, one line per behaviour with its verdict
and headline figures, and per behaviour its tests with their timeline, chart, figures and (on
failure) evidence.

What a behaviour's tests show (headlines from the figures its scenario records, its charts, its
figures' words) is its own `view.py` in `suite/behaviours/`, declared in its `Behaviour`; this
module is the page around them. A test that failed before recording figures shows its assertion
instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from suite import behaviours, floors
from suite.behaviours.base import Behaviour
from suite.evidence import CLUSTER_LOGS_DIR, is_evidence_path
from suite.evidence import DIR as EVIDENCE_DIR
from suite.report import charts
from suite.report.data import (
    Mark,
    Record,
    answers_of,
    end_of,
    lanes_of,
    marks_of,
    probe_window,
)
from suite.report.words import num

VERDICT_WORDS = {
    "passed": "✓ passed",
    "failed": "✗ FAILED",
    "error": "✗ ERROR",
    "skipped": "\u2013 skipped",
    "missing": "? not run",
    "unknown": "? unknown",
}


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


#: Figures any test may record, with the words for them (others are shown by their key); each
#: behaviour adds its own (`figure_words()`).
FIGURE_WORDS = {
    "service_converged_s": "Service converged after (s)",
    "replicas": "replicas",
    "requests": "requests sent",
    "answered": "answered",
    "failed": "failed requests",
    "by_pod": "answers per pod",
    "answered_by": "answers per pod",
    "clock_skew_s": "clock skew bound, measured (s)",
    "cluster_timing": "cluster clocks",
}


def figure_words() -> dict[str, str]:
    """Every figure's words: the common ones and each behaviour's."""
    words = dict(FIGURE_WORDS)
    for behaviour in behaviours.ALL:
        words.update(behaviour.figure_words)
    return words


def _figure_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_figure_value(v)}" for key, v in sorted(value.items()))
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return num(value)
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
    #: Its evidence folder beside the page (a relative link), when one was kept.
    evidence_dir: str | None = None
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
    #: The cluster's own logs beside the page (kind, after a failure), a relative link.
    cluster_logs: str | None = None


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


def _headline(behaviour: Behaviour, test: Mapping[str, Any]) -> str:
    figures = test.get("figures") or {}
    recording = test.get("recording")
    found: str | None = None
    for make in behaviour.headlines:
        found = found or make(figures, recording)
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
            f"{probe.get('label') or 'traffic'}: {num(probe.get('sent', 0))} sent, "
            f"{num(probe.get('ok', 0))} answered, {num(probe.get('failed', 0))} failed; to "
            f"{request.get('url', '?')}, {request.get('concurrency', 1)} at a time, each on a new "
            "connection"
        )
        if probe.get("errors"):
            text += f"; prober errors: {probe['errors'][-1]}"
        lines.append(text)
    return lines


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
    test: Mapping[str, Any],
    behaviour: Behaviour | str | None,
    index: int,
    budget: Budget | None = None,
) -> TestView:
    """The page's view of one test of report.json (`behaviour`: the one it proves, or its key)."""
    if isinstance(behaviour, str):
        behaviour = behaviours.by_key(behaviour)
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
            (figure_words().get(key, key), _figure_text(key, value))
            for key, value in figures.items()
            if key != floors.FIGURE_KEY
        ],
        message=budget.clip(str(test.get("message") or "")),
        skip_reason=str(test.get("skip_reason") or ""),
        evidence=[
            (str(title), budget.clip(str(text))) for title, text in test.get("evidence") or []
        ],
        evidence_dir=(
            str(test["evidence_dir"]) if is_evidence_path(test.get("evidence_dir")) else None
        ),
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
        view.chart = behaviour.chart(test, marks, end, f"{prefix}-ch")
        view.chart_caption = behaviour.chart_caption
        view.more_charts = behaviour.more_charts(test, end, prefix)
    return view


def _rank(behaviour: Behaviour, view: TestView) -> int:
    """Tests of a behaviour in the order its story is told (infect, kill, delete)."""
    figures = dict(view.raw_figures)
    for rank, make in enumerate(behaviour.headlines):
        if make(figures, None) is not None:
            return rank
    return len(behaviour.headlines)


def _behaviour_of(nodeid: str) -> Behaviour | None:
    return behaviours.of_nodeid(nodeid)


def _is_e2e(test: Mapping[str, Any]) -> bool:
    nodeid = f"/{test.get('nodeid', '')}"
    return "/scenarios/" in nodeid or "/behaviours/" in nodeid or bool(test.get("namespace"))


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
    grouped: dict[str, list[TestView]] = {b.key: [] for b in behaviours.ALL}
    other_e2e: list[TestView] = []
    others: list[TestView] = []
    kinds = [_behaviour_of(str(test.get("nodeid", ""))) for test in tests]
    # Scenarios first: they get the evidence budget before unit tests do.
    order = sorted(range(len(tests)), key=lambda i: (kinds[i] is None, not _is_e2e(tests[i]), i))
    for index in order:
        test, behaviour = tests[index], kinds[index]
        if behaviour is not None:
            grouped[behaviour.key].append(view_of_test(test, behaviour, index, budget))
        elif _is_e2e(test):
            other_e2e.append(view_of_test(test, None, index, budget))
        else:
            others.append(view_of_test(test, None, index, budget))
    shown = []
    for behaviour in behaviours.ALL:
        views = sorted(grouped[behaviour.key], key=lambda view: _rank(behaviour, view))
        outcome = _outcome_of([view.outcome for view in views])
        headlines = [view.headline for view in views if view.headline]
        shown.append(
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
        behaviours=shown,
        other_e2e=other_e2e,
        others=others,
        others_counts=sorted(others_counts.items()),
        exitstatus=int(document.get("exitstatus") or 0),
        cluster_logs=(
            str(document["cluster_logs"])
            if document.get("cluster_logs") == f"{EVIDENCE_DIR}/{CLUSTER_LOGS_DIR}"
            else None
        ),
    )

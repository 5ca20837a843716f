"""report.json (the raw recordings and figures, for tools) and report.html (the demo: one
self-contained page that shows each behaviour happening, with the figures that prove it), written
once per run by the controller (or the only process).

The page is rendered from the report.json document alone (`render_html`), so it can be rebuilt
from a saved report.json, and tested without a cluster. Layers: `data` reads recordings, `svg`
and `charts` draw, `views` decides what the page says, the template lays it out.
"""

from __future__ import annotations

import json
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from suite import evidence
from suite.files import write_atomic
from suite.report import verdict, views
from suite.session import SessionState, TestOutcome

TEMPLATE = "report.html.j2"
FALLBACK_TEMPLATE = "fallback.html.j2"
SCHEMA_VERSION = 1


def build(
    *,
    run_id: str,
    started: float,
    ended: float,
    exitstatus: int,
    cluster: Mapping[str, Any] | None,
    outcomes: Mapping[str, TestOutcome],
    records: Mapping[str, Mapping[str, Any]],
    cluster_error: Mapping[str, Any] | None = None,
    cluster_logs: str | None = None,
) -> dict[str, Any]:
    """The report.json document."""
    tests = []
    for nodeid in sorted(set(outcomes) | set(records)):
        outcome = outcomes.get(nodeid, TestOutcome(nodeid, outcome="unknown"))
        record = dict(records.get(nodeid, {}))
        tests.append(
            {
                "nodeid": nodeid,
                "outcome": outcome.outcome,
                "duration_s": round(outcome.duration, 3),
                "call_s": (
                    round(outcome.call_duration, 3) if outcome.call_duration is not None else None
                ),
                "message": outcome.longrepr,
                "failure": outcome.failure,
                "skip_reason": outcome.skip_reason,
                "evidence": [list(section) for section in outcome.sections]
                or record.pop("evidence", []),
                "namespace": record.get("namespace"),
                # Its evidence folder, relative to report.json (a failed test that had one).
                "evidence_dir": record.get("evidence_dir"),
                "figures": record.get("figures", {}),
                "probes": record.get("probes", []),
                "recording": record.get("recording"),
            }
        )
    counts = Counter(test["outcome"] for test in tests)
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "started": started,
        "ended": ended,
        "duration_s": round(ended - started, 3),
        "exitstatus": int(exitstatus),
        "cluster": dict(cluster) if cluster else None,
        "cluster_error": dict(cluster_error) if cluster_error else None,
        "cluster_logs": cluster_logs,
        "counts": dict(counts),
        "tests": tests,
    }


def environment() -> jinja2.Environment:
    """The report templates' Jinja environment (autoescaping on)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("suite.report", "."),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(document: Mapping[str, Any]) -> str:
    """report.html from the report.json document: styles and charts inline, nothing fetched."""
    return (
        environment()
        .get_template(TEMPLATE)
        .render(page=views.page(document), run_verdict=verdict.summarize(document))
    )


def render_html_or_fallback(document: Mapping[str, Any]) -> str:
    """render_html, or (should a recording hold something the page cannot draw) a plain page
    that says so, with the error, the outcomes and where the data is: the run's results are
    never lost to a drawing bug."""
    try:
        return render_html(document)
    except Exception:
        return (
            environment()
            .get_template(FALLBACK_TEMPLATE)
            .render(report=document, error=traceback.format_exc())
        )


def write(
    state: SessionState,
    cluster: Mapping[str, Any] | None,
    exitstatus: int,
    cluster_error: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write report.json and report.html into the report directory; return their paths."""
    directory = state.settings.report_dir
    # Cleared when the run started: present, it is this run's export (kind, after a failure).
    cluster_logs = f"{evidence.DIR}/{evidence.CLUSTER_LOGS_DIR}"
    document = build(
        run_id=state.run_id,
        started=state.started_wall,
        ended=time.time(),
        exitstatus=exitstatus,
        cluster=cluster,
        outcomes=state.outcomes,
        records=state.read_records(),
        cluster_error=cluster_error,
        cluster_logs=cluster_logs if (directory / cluster_logs).is_dir() else None,
    )
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    write_atomic(json_path, json.dumps(document, default=str, indent=1))
    html_path = directory / "report.html"
    write_atomic(html_path, render_html_or_fallback(document))
    return [json_path, html_path]

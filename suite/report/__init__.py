"""report.json (the raw recordings and figures, for tools) and a simple, self-contained
report.html, written once per run by the controller (or the only process)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from suite.session import SessionState, TestOutcome

TEMPLATE = "report.html.j2"
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
                "message": outcome.longrepr,
                "skip_reason": outcome.skip_reason,
                "evidence": [list(section) for section in outcome.sections]
                or record.pop("evidence", []),
                "namespace": record.get("namespace"),
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
        "counts": dict(counts),
        "tests": tests,
    }


def render_html(document: Mapping[str, Any]) -> str:
    """report.html from the report.json document (no external resources)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("suite.report", "."),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = lambda epoch: time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(float(epoch))
    )
    return environment.get_template(TEMPLATE).render(report=document)


def write(state: SessionState, cluster: Mapping[str, Any] | None, exitstatus: int) -> list[Path]:
    """Write report.json and report.html into the report directory; return their paths."""
    document = build(
        run_id=state.run_id,
        started=state.started_wall,
        ended=time.time(),
        exitstatus=exitstatus,
        cluster=cluster,
        outcomes=state.outcomes,
        records=state.read_records(),
    )
    directory = state.settings.report_dir
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(json.dumps(document, default=str, indent=1))
    html_path = directory / "report.html"
    html_path.write_text(render_html(document))
    return [json_path, html_path]

"""The fault matrix's page, "what this suite catches" (`python -m suite.tools.faultmatrix`).

The matrix is a run of its own: it writes `fault-matrix.json` and this page, `fault-matrix.html`,
into the report directory, and no other run's report shows it. The page says which run it was
(its id, when, the cluster its pytest runs reported, and those runs' ids), and has two tables:
the faults (one row per fault and scenario: caught, stopped by a precondition, missed or not run,
with the line it was judged on, and the scenario's outcome on the restored cluster of the same
matrix run), and the healthy variants (one row per variant and scenario, which must pass).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.evidence import is_evidence_path
from suite.report import environment

FILE = "fault-matrix.json"
PAGE = "fault-matrix.html"
TEMPLATE = "catches.html.j2"

#: A fault's status per scenario. Only CAUGHT counts: the scenario failed in its behaviour
#: assertion and that assertion's message named the broken part.
CAUGHT = "caught"
#: The scenario failed before it looked at the behaviour (a precondition or its setup).
STOPPED = "stopped by a precondition"
#: It passed, or failed without naming the broken part.
MISSED = "missed"
#: The fault could not be applied here.
NOT_RUN = "not run"
STATUSES = (CAUGHT, STOPPED, MISSED, NOT_RUN)
NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class CatchRow:
    """One fault x one scenario."""

    fault: str
    broken: str
    how: str
    scenario: str
    nodeid: str
    status: str  # one of STATUSES
    kind: str  # behaviour | precondition | setup | "" (no failure record)
    line: str
    restored: str  # passed | failed | error | not checked
    restored_line: str
    report: str  # the pytest run's report.html, relative to this page ("" without one)
    #: The test's evidence folder, relative to this page ("" without one), and, for a catch
    #: that left none, why (the matrix fails on it).
    evidence: str = ""
    evidence_problem: str = ""

    @property
    def css(self) -> str:
        """The row's class: the status without spaces."""
        return "c-" + self.status.replace(" ", "-")


def _evidence_link(value: object) -> str:
    """A fault run's evidence folder as fault-matrix.json records it
    (`faults/<fault>/evidence/<test>`), else "" (nothing else becomes a link)."""
    if not isinstance(value, str):
        return ""
    head, _, rest = value.partition("/")
    fault, _, folder = rest.partition("/")
    fine = head == "faults" and re.fullmatch(r"[a-z0-9-]+", fault) and is_evidence_path(folder)
    return value if fine else ""


@dataclass(frozen=True)
class VariantRow:
    """One healthy variant x one scenario."""

    variant: str
    differs: str
    scenario: str
    nodeid: str
    outcome: str  # passed | failed | error | skipped | not run
    line: str
    report: str

    @property
    def css(self) -> str:
        """The row's class: passed or not."""
        return "c-passed" if self.outcome == "passed" else "c-not-passed"


@dataclass(frozen=True)
class Catches:
    """The matrix run as its page shows it."""

    run_id: str
    when: str
    ended: str
    duration: str
    cluster: str
    kubernetes: str
    nodes: str
    pytest_runs: list[dict[str, Any]]
    rows: list[CatchRow]
    variants: list[VariantRow]
    summary: str
    variant_summary: str
    restored_summary: str
    problems: list[str]
    #: Which cluster's faults: "local" (`localcluster fault`) or "kind" (`localcluster kind-fault`).
    provider: str = "local"

    @property
    def passed(self) -> bool:
        """Every fault caught, every variant passed, the restored cluster passed."""
        return not self.problems


def load(path: Path) -> dict[str, Any] | None:
    """A fault-matrix.json (a file, or the directory it is in); None when missing or unreadable."""
    if path.is_dir():
        path = path / FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "faults" in data else None


def _scenario(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1].removeprefix("test_").replace("_", " ")


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float) or not epoch:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _cluster(cluster: Any) -> tuple[str, str, str]:
    """(which cluster, Kubernetes version, nodes) from a report.json's `cluster`."""
    if not isinstance(cluster, Mapping):
        return "unknown (no pytest run of this matrix wrote a report)", "?", "?"
    facts = cluster.get("facts") or {}
    nodes = facts.get("nodes") or []
    described = ", ".join(
        f"{n.get('name')} {'Ready' if n.get('ready') else 'NOT Ready'}" for n in nodes
    )
    return (
        str(cluster.get("describe") or cluster.get("provider") or "?"),
        str(facts.get("server_version") or "?"),
        f"{len(nodes)}: {described}" if nodes else "?",
    )


def view(matrix: Mapping[str, Any]) -> Catches:
    """The page of one matrix run, from its fault-matrix.json alone: the restored-cluster
    column comes from that run's own healthy run, else it says "not checked"."""
    healthy: Mapping[str, Any] = matrix.get("healthy") or {}
    rows = []
    for fault in matrix.get("faults") or []:
        for result in fault.get("results") or []:
            nodeid = str(result.get("nodeid", ""))
            restored = healthy.get(nodeid)
            if not isinstance(restored, Mapping):
                restored = {"outcome": NOT_CHECKED, "line": ""}
            rows.append(
                CatchRow(
                    fault=str(fault.get("fault", "?")),
                    broken=str(fault.get("broken", "")),
                    how=str(fault.get("how", "")),
                    scenario=_scenario(nodeid),
                    nodeid=nodeid,
                    status=str(result.get("status", NOT_RUN)),
                    kind=str(result.get("kind") or ""),
                    line=str(result.get("line", "")),
                    restored=str(restored.get("outcome", NOT_CHECKED)),
                    restored_line=str(restored.get("line") or ""),
                    report=str(result.get("report") or ""),
                    evidence=_evidence_link(result.get("evidence")),
                    evidence_problem=str(result.get("evidence_problem") or ""),
                )
            )
    variants = []
    for variant in matrix.get("variants") or []:
        for result in variant.get("results") or []:
            nodeid = str(result.get("nodeid", ""))
            variants.append(
                VariantRow(
                    variant=str(variant.get("variant", "?")),
                    differs=str(variant.get("differs", "")),
                    scenario=_scenario(nodeid),
                    nodeid=nodeid,
                    outcome=str(result.get("outcome", NOT_RUN)),
                    line=str(result.get("line", "")),
                    report=str(result.get("report") or ""),
                )
            )
    counts = {status: sum(row.status == status for row in rows) for status in STATUSES}
    summary = (
        f"{counts[CAUGHT]} of {len(rows)} fault/scenario pairs caught by the behaviour's own "
        "assertion"
    )
    others = [f"{counts[s]} {s}" for s in STATUSES[1:] if counts[s]]
    if others:
        summary += " (" + ", ".join(others) + ")"
    passed = sum(row.outcome == "passed" for row in variants)
    variant_summary = (
        f"{passed} of {len(variants)} variant/scenario pairs passed."
        if variants
        else "No healthy variant ran in this matrix run."
    )
    if matrix.get("healthy_checked") and healthy:
        good = sum(
            isinstance(r, Mapping) and r.get("outcome") == "passed" for r in healthy.values()
        )
        restored_summary = (
            f"On the restored cluster, {good} of {len(healthy)} of the faults' scenarios passed."
        )
    else:
        restored_summary = "The restored cluster was not checked in this matrix run."
    cluster, kubernetes, nodes = _cluster(matrix.get("cluster"))
    return Catches(
        provider=str(matrix.get("provider") or "local"),
        run_id=str(matrix.get("run_id") or "?"),
        when=_when(matrix.get("started")),
        ended=_when(matrix.get("ended")),
        duration=_duration(float(matrix.get("duration_s") or 0.0)),
        cluster=cluster,
        kubernetes=kubernetes,
        nodes=nodes,
        pytest_runs=[dict(r) for r in matrix.get("pytest_runs") or [] if isinstance(r, Mapping)],
        rows=rows,
        variants=variants,
        summary=summary,
        variant_summary=variant_summary,
        restored_summary=restored_summary,
        problems=(
            [str(p) for p in matrix.get("problems") or []]
            if "problems" in matrix
            else ["this fault-matrix.json records no verdict (an older matrix)"]
        ),
    )


def render(matrix: Mapping[str, Any]) -> str:
    """fault-matrix.html: the report's styles inline, nothing fetched."""
    return environment().get_template(TEMPLATE).render(page=view(matrix))

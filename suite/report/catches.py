"""The "what this suite catches" table: the fault matrix (`python -m suite.faultmatrix`) as the
report shows it. The matrix writes `fault-matrix.json` into the report directory; the report
document carries it as `catches`, and this module turns it into rows: one per fault and scenario,
caught or not, with the line the scenario failed with, and whether the scenario passed again on
the restored cluster."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE = "fault-matrix.json"


@dataclass(frozen=True)
class CatchRow:
    """One fault x one scenario."""

    fault: str
    broken: str
    how: str
    scenario: str
    status: str  # caught | missed | not run
    line: str
    restored: str  # passed | failed | not checked


@dataclass(frozen=True)
class Catches:
    """The table and a line about the run that made it."""

    rows: list[CatchRow]
    summary: str


def load(directory: Path) -> dict[str, Any] | None:
    """The fault matrix written into `directory`, if any (an unreadable one is left out)."""
    path = directory / FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _scenario(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1].removeprefix("test_").replace("_", " ")


def view(document: Mapping[str, Any]) -> Catches | None:
    """The rows of the document's fault matrix; None when the run had none."""
    matrix = document.get("catches")
    if not isinstance(matrix, Mapping):
        return None
    outcomes = {str(t.get("nodeid")): str(t.get("outcome")) for t in document.get("tests") or []}
    healthy = {str(k): str(v) for k, v in (matrix.get("healthy") or {}).items()}
    rows = []
    for fault in matrix.get("faults") or []:
        for result in fault.get("results") or []:
            nodeid = str(result.get("nodeid", ""))
            restored = healthy.get(nodeid) or outcomes.get(nodeid) or "not checked"
            rows.append(
                CatchRow(
                    fault=str(fault.get("fault", "?")),
                    broken=str(fault.get("broken", "")),
                    how=str(fault.get("how", "")),
                    scenario=_scenario(nodeid),
                    status=str(result.get("status", "not run")),
                    line=str(result.get("line", "")),
                    restored=restored,
                )
            )
    caught = sum(row.status == "caught" for row in rows)
    summary = (
        f"{caught} of {len(rows)} fault/scenario pairs caught; the matrix took "
        f"{float(matrix.get('duration_s') or 0):.0f} s"
    )
    return Catches(rows, summary)

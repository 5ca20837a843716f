"""What one test collects while it runs: its namespace, recorder, traffic, figures, evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from suite.kube import Kube
from suite.recorder import Recorder
from suite.traffic import ProbeResult


@dataclass
class TestContext:
    """Stored on the test item (CONTEXT_KEY) so the report hooks find it."""

    __test__ = False  # not a test class, despite the name

    kube: Kube
    namespace: str
    recorder: Recorder | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: list[tuple[str, str]] = field(default_factory=list)
    #: The folder its evidence was kept in, relative to the report directory (failed tests).
    evidence_dir: str | None = None

    def recording(self) -> dict[str, Any] | None:
        """The recorder's data, if a recorder ran."""
        return self.recorder.to_dict() if self.recorder is not None else None

    def record(self, nodeid: str) -> dict[str, Any]:
        """Everything about this test for report.json."""
        return {
            "nodeid": nodeid,
            "namespace": self.namespace,
            "figures": self.figures,
            "probes": [probe.to_dict() for probe in self.probes],
            "recording": self.recording(),
            "evidence": [list(section) for section in self.evidence],
            "evidence_dir": self.evidence_dir,
        }


CONTEXT_KEY = pytest.StashKey[TestContext]()

"""Per-run state shared by the hooks, the fixtures and (under pytest-xdist) the workers.

The controller (or the only process) picks the run id and a private directory; xdist workers get
both through `workerinput`. Workers write what the controller needs later into that directory:
how to reach the cluster (for the final sweep) and each test's recording (for report.json).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from suite import naming
from suite.files import write_atomic
from suite.settings import Settings

RUN_ID_INPUT = "kube_alive_run_id"
SHARED_DIR_INPUT = "kube_alive_shared_dir"
CLUSTER_FILE = "cluster.json"
CLUSTER_ERROR_FILE = "cluster-error.json"
RECORDS_DIR = "records"


@dataclass
class TestOutcome:
    """What the controller learned about one test from its reports."""

    __test__ = False  # not a test class, despite the name

    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    longrepr: str = ""
    sections: list[tuple[str, str]] = field(default_factory=list)
    skip_reason: str = ""
    #: The test body alone (no fixture setup: on kind the first test's setup creates the cluster).
    call_duration: float | None = None
    #: Why it failed (`claims.Failure.to_dict()`): behaviour, precondition or setup, and the
    #: exception's own message.
    failure: dict[str, str] | None = None


@dataclass
class SessionState:
    """Run id, worker name, the shared directory and the controller's collected outcomes."""

    settings: Settings
    run_id: str
    worker: str
    is_worker: bool
    started_wall: float = field(default_factory=time.time)
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    #: Failed tests of this process whose evidence was gathered (the cluster's own logs are
    #: exported at the end when there is any).
    evidence_kept: int = 0
    _shared_dir: Path | None = None

    @classmethod
    def from_config(cls, config: pytest.Config, settings: Settings) -> SessionState:
        """Controller: a new run id; worker: the controller's."""
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        if workerinput is not None and RUN_ID_INPUT in workerinput:
            state = cls(
                settings=settings,
                run_id=str(workerinput[RUN_ID_INPUT]),
                worker=str(workerinput.get("workerid", "worker")),
                is_worker=True,
            )
            state._shared_dir = Path(workerinput[SHARED_DIR_INPUT])
            return state
        try:
            run_id = naming.new_run_id()
        except naming.RunIdError as error:
            raise pytest.UsageError(f"kube-alive: {error}") from None
        return cls(settings=settings, run_id=run_id, worker="main", is_worker=False)

    @property
    def shared_dir(self) -> Path:
        """The run's private directory (created on first use, by the controller)."""
        if self._shared_dir is None:
            self._shared_dir = Path(tempfile.mkdtemp(prefix=f"kube-alive-{self.run_id}-"))
        self._shared_dir.mkdir(parents=True, exist_ok=True)
        return self._shared_dir

    @property
    def has_shared_dir(self) -> bool:
        """True once the shared directory was created."""
        return self._shared_dir is not None and self._shared_dir.is_dir()

    def remove_shared_dir(self) -> None:
        """Controller only: remove the directory at the very end."""
        if not self.is_worker and self._shared_dir is not None:
            shutil.rmtree(self._shared_dir, ignore_errors=True)

    # -- what workers leave for the controller ---------------------------------------------------

    def write_cluster(self, data: dict[str, Any]) -> None:
        """How to reach the cluster, and what it is (first writer wins; all write the same)."""
        path = self.shared_dir / CLUSTER_FILE
        if not path.exists():
            _write_json_atomically(path, data)

    def read_cluster(self) -> dict[str, Any] | None:
        """What a worker wrote with write_cluster, if anything."""
        if not self.has_shared_dir:
            return None
        path = self.shared_dir / CLUSTER_FILE
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def write_cluster_error(self, provider: str, error: str) -> None:
        """The cluster could not be brought up or reached (first writer wins): the report says
        so, instead of "no cluster"."""
        path = self.shared_dir / CLUSTER_ERROR_FILE
        if not path.exists():
            _write_json_atomically(path, {"provider": provider, "error": error})

    def read_cluster_error(self) -> dict[str, Any] | None:
        """What write_cluster_error wrote, if anything."""
        if not self.has_shared_dir:
            return None
        path = self.shared_dir / CLUSTER_ERROR_FILE
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def write_record(self, nodeid: str, record: dict[str, Any]) -> None:
        """One test's recording."""
        directory = self.shared_dir / RECORDS_DIR
        directory.mkdir(exist_ok=True)
        _write_json_atomically(
            directory / f"{naming.short_hash(nodeid)}-{os.getpid()}.json", record
        )

    def has_records(self) -> bool:
        """True once some test (in any worker) saved a recording: it had a namespace."""
        directory = self.shared_dir / RECORDS_DIR if self.has_shared_dir else None
        return directory is not None and directory.is_dir() and any(directory.glob("*.json"))

    def read_records(self) -> dict[str, dict[str, Any]]:
        """Every test's recording, by node id."""
        if not self.has_shared_dir:
            return {}
        directory = self.shared_dir / RECORDS_DIR
        records: dict[str, dict[str, Any]] = {}
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            data = json.loads(path.read_text())
            records[str(data.get("nodeid"))] = data
        return records


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, default=str))


STATE_KEY = pytest.StashKey[SessionState]()
LOG_FILE = "kube-alive.log"
#: The previous run's log, kept once (the one before it is gone).
PREVIOUS_LOG_FILE = f"{LOG_FILE}.1"


def start_log(state: SessionState) -> None:
    """Controller (or the only process), at session start, before any xdist worker exists: this
    run's kube-alive.log starts empty; the previous run's is kept as kube-alive.log.1.

    Only the controller rotates: workers of the same run append to the file it started (their
    lines carry the run id and the worker's name), and a worker that rotated would throw away
    what the controller and the other workers wrote.
    """
    if state.is_worker:
        return
    directory = state.settings.report_dir
    # No log yet is the first run; an unwritable report directory is said by the settings check.
    with contextlib.suppress(OSError):
        os.replace(directory / LOG_FILE, directory / PREVIOUS_LOG_FILE)


def make_log(config: pytest.Config, state: SessionState) -> Callable[[str], None]:
    """A `log(message)` that appends to `<report-dir>/kube-alive.log` and, in the controller (or
    the only process), also writes a terminal line (xdist workers have no terminal)."""

    def log(message: str) -> None:
        line = f"kube-alive: {message}"
        try:
            state.settings.report_dir.mkdir(parents=True, exist_ok=True)
            with (state.settings.report_dir / LOG_FILE).open("a") as handle:
                stamp = time.strftime("%H:%M:%S")
                handle.write(f"{stamp} [{state.run_id} {state.worker}] {message}\n")
        except OSError:
            pass
        if state.is_worker:
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)

    return log

"""The fault matrix runner and its report table, with the subprocesses faked (no cluster)."""

import json
import subprocess

import pytest

from suite import faultmatrix
from suite.report import catches, render_html


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("", ""),
        ("just one line\nand another", "just one line"),
        (
            "def test():\n>   assert x\nE   AssertionError: kube-proxy late\nE   assert False\n",
            "AssertionError: kube-proxy late assert False",
        ),
        (
            "\n\nno metrics API (x): install metrics-server",
            "no metrics API (x): install metrics-server",
        ),
    ],
)
def test_failure_line(message, line):
    assert faultmatrix.failure_line(message) == line


@pytest.mark.parametrize(
    ("outcome", "message", "status"),
    [
        ("failed", "E   AssertionError: ... (kube-proxy) ...", "caught"),
        ("error", "E   WaitTimeout: ... deployment controller ...", "caught"),
        ("failed", "E   AssertionError: something unrelated", "missed"),
        ("passed", "", "missed"),
        ("skipped", "no metrics API", "missed"),  # a skip never counts as caught
    ],
)
def test_judge_requires_a_failure_that_names_the_broken_part(outcome, message, status):
    assert faultmatrix.judge(outcome, message, r"kube-proxy|deployment controller")[0] == status


def test_every_matrix_fault_is_a_known_local_cluster_fault():
    from localcluster import faults

    assert {target.fault for target in faultmatrix.MATRIX} <= set(faults.FAULTS)
    for target in faultmatrix.MATRIX:
        assert target.tests


class FakeRuns:
    """Answers `fault apply/clear` with the given status, and pytest with a written report."""

    def __init__(self, apply_status=0, outcome="failed", message="E   boom: kube-proxy"):
        self.apply_status = apply_status
        self.outcome = outcome
        self.message = message
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append(list(argv))
        if "fault" in argv:
            status = self.apply_status if "apply" in argv else 0
            err = "localcluster fault: cannot apply x: missing" if status else ""
            return subprocess.CompletedProcess(argv, status, "", err)
        report_dir = next(a.split("=", 1)[1] for a in argv if a.startswith("--report-dir="))
        tests = [a for a in argv if "::" in a]
        from pathlib import Path

        Path(report_dir).mkdir(parents=True, exist_ok=True)
        outcome = "passed" if report_dir.endswith("healthy") else self.outcome
        document = {
            "tests": [{"nodeid": t, "outcome": outcome, "message": self.message} for t in tests]
        }
        (Path(report_dir) / "report.json").write_text(json.dumps(document))
        return subprocess.CompletedProcess(argv, 1, "", "")


TARGET = faultmatrix.Target("service-routing-stopped", ("a.py::test_x",), r"kube-proxy")


def test_a_fault_is_applied_caught_and_always_cleared(tmp_path):
    runs = FakeRuns()
    entry = faultmatrix.Matrix(tmp_path, lambda _: None, runs).one(TARGET, {})
    assert entry["status"] == "ran"
    assert entry["results"][0]["status"] == "caught"
    assert [c[-2] for c in runs.calls if "fault" in c] == ["apply", "clear"]


def test_a_fault_that_cannot_be_applied_is_not_run_never_caught(tmp_path):
    runs = FakeRuns(apply_status=faultmatrix.NOT_APPLICABLE)
    entry = faultmatrix.Matrix(tmp_path, lambda _: None, runs).one(TARGET, {})
    assert entry["status"] == "not run"
    assert entry["results"][0]["status"] == "not run"
    assert "cannot apply" in entry["note"]
    assert not any("pytest" in c for c in runs.calls)
    problems = faultmatrix.verdict({"faults": [entry], "healthy": {}}, healthy_required=False)
    assert problems == ["service-routing-stopped x a.py::test_x: not run"]


def test_a_scenario_that_passes_under_the_fault_is_missed(tmp_path):
    entry = faultmatrix.Matrix(tmp_path, lambda _: None, FakeRuns(outcome="passed")).one(TARGET, {})
    assert entry["results"][0]["status"] == "missed"


def test_a_missing_report_counts_as_an_error_with_the_output_tail(tmp_path):
    def run(argv, timeout):
        status = 0 if "fault" in argv else 4
        return subprocess.CompletedProcess(argv, status, "usage: pytest ...", "")

    entry = faultmatrix.Matrix(tmp_path, lambda _: None, run).one(TARGET, {})
    assert entry["results"][0]["status"] == "missed"
    assert "no report" in entry["results"][0]["line"]


def test_verdict_needs_faults_and_a_passing_restored_cluster():
    assert faultmatrix.verdict({"faults": [], "healthy": {}}, healthy_required=False) == [
        "no fault ran"
    ]
    caught = {"fault": "f", "results": [{"nodeid": "t", "status": "caught"}]}
    assert (
        faultmatrix.verdict({"faults": [caught], "healthy": {"t": "passed"}}, healthy_required=True)
        == []
    )
    assert faultmatrix.verdict(
        {"faults": [caught], "healthy": {"t": "failed"}}, healthy_required=True
    ) == ["restored cluster: t failed"]


def test_the_report_shows_what_the_suite_catches(tmp_path):
    matrix = {
        "duration_s": 512,
        "faults": [
            {
                "fault": "service-routing-stopped",
                "broken": "Service routing (kube-proxy)",
                "how": "kube-proxy stopped",
                "results": [
                    {"nodeid": "s.py::test_spread", "status": "caught", "line": "no kube-proxy"}
                ],
            },
            {
                "fault": "metrics-api-gone",
                "broken": "metrics",
                "how": "stopped",
                "results": [{"nodeid": "s.py::test_scale", "status": "not run", "line": "x"}],
            },
        ],
        "healthy": {"s.py::test_spread": "passed"},
    }
    document = {"run_id": "r", "tests": [], "catches": matrix}
    table = catches.view(document)
    assert table is not None
    assert [(r.fault, r.status, r.restored) for r in table.rows] == [
        ("service-routing-stopped", "caught", "passed"),
        ("metrics-api-gone", "not run", "not checked"),
    ]
    assert "1 of 2" in table.summary
    html = render_html(document)
    assert "What this suite catches" in html
    assert "no kube-proxy" in html
    assert catches.view({"tests": []}) is None
    assert "What this suite catches" not in render_html({"run_id": "r", "tests": []})


def test_matrix_json_is_loaded_from_the_report_directory(tmp_path):
    assert catches.load(tmp_path) is None
    (tmp_path / catches.FILE).write_text("{broken")
    assert catches.load(tmp_path) is None
    (tmp_path / catches.FILE).write_text(json.dumps({"faults": []}))
    assert catches.load(tmp_path) == {"faults": []}


def test_failure_line_of_a_chained_exception_is_the_last_one_raised():
    message = (
        "E   ProbeError: 0/12 answered\n\nThe above exception was the direct cause of the "
        "following exception:\n\n>   raise\nE   ProbeError: is kube-proxy running?\n"
    )
    assert faultmatrix.failure_line(message) == "ProbeError: is kube-proxy running?"

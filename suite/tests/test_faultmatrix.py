"""The fault matrix runner, its judge and its page, with the subprocesses faked (no cluster)."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from suite import claims, evidence, parts, report
from suite.report import catches
from suite.tools import faultmatrix, reading

PROXY = parts.KUBE_PROXY


def behaviour(message):
    return {"kind": claims.BEHAVIOUR, "message": message, "exception": "ClaimFailed"}


def precondition(message):
    return {"kind": claims.PRECONDITION, "message": message, "exception": "ProbeError"}


# ---- the judge -----------------------------------------------------------------------------


def test_the_judge_accepts_a_behaviour_failure_whose_message_names_the_part():
    status, line = faultmatrix.judge(
        "failed",
        behaviour("0 of 40 answers: kube-proxy (the node's service proxy) routed none"),
        PROXY,
    )
    assert status == catches.CAUGHT
    assert line.startswith("0 of 40 answers: kube-proxy")


def test_the_judge_refuses_a_part_named_only_in_the_traceback_or_source():
    # What the old judge read: the whole longrepr, with the test's source and comments in it.
    traceback = (
        "    # kube-proxy spreads new connections\n>   assert spread\n"
        "E   ClaimFailed: 3 of 4 replicas answered; expected 4\nsuite/traffic.py:88: kube-proxy"
    )
    failure = behaviour("3 of 4 replicas answered; expected 4")
    status, line = faultmatrix.judge("failed", failure, PROXY, traceback)
    assert (status, line) == (catches.MISSED, "3 of 4 replicas answered; expected 4")
    # Without a record, the text is shown but never searched.
    status, line = faultmatrix.judge("failed", None, PROXY, traceback)
    assert status == catches.MISSED
    assert "without a failure record" in line


def test_the_judge_refuses_a_precondition_failure_that_names_the_part():
    failure = precondition("the prober never answered: is kube-proxy running?")
    status, line = faultmatrix.judge("failed", failure, PROXY)
    assert status == catches.STOPPED
    assert "kube-proxy" in line
    setup = {"kind": claims.SETUP, "message": "kube-proxy down", "exception": "ClusterError"}
    assert faultmatrix.judge("error", setup, PROXY)[0] == catches.STOPPED


def test_a_report_of_the_old_schema_is_never_caught():
    assert faultmatrix.judge("failed", None, PROXY)[0] == catches.MISSED
    assert faultmatrix.judge("error", {"message": "kube-proxy"}, PROXY)[0] == catches.MISSED


@pytest.mark.parametrize("outcome", ["passed", "skipped", "unknown"])
def test_a_scenario_that_did_not_fail_is_missed_whatever_its_record_says(outcome):
    status, line = faultmatrix.judge(outcome, behaviour("kube-proxy"), PROXY)
    assert status == catches.MISSED
    assert line.startswith(outcome)


def test_the_line_is_the_message_cut_short_but_keeps_the_words_that_matched():
    short = faultmatrix.judge("failed", behaviour("kube-proxy\nlate"), PROXY)[1]
    assert short == "kube-proxy late"
    long = "x" * 500 + " then kube-proxy dropped it " + "y" * 200
    status, line = faultmatrix.judge("failed", behaviour(long), PROXY)
    assert status == catches.CAUGHT
    assert line.startswith("x" * faultmatrix.LINE_CHARS)
    assert "kube-proxy dropped it" in line
    assert len(line) < faultmatrix.LINE_CHARS + 200
    unmatched = faultmatrix.judge("failed", behaviour("z" * 1000), PROXY)[1]
    assert len(unmatched) == faultmatrix.LINE_CHARS + 1  # and an ellipsis


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
def test_failure_line_of_a_text_without_a_record(message, line):
    assert reading.failure_line(message) == line


def test_failure_line_of_a_chained_exception_is_the_last_one_raised():
    message = (
        "E   ProbeError: 0/12 answered\n\nThe above exception was the direct cause of the "
        "following exception:\n\n>   raise\nE   ProbeError: is kube-proxy running?\n"
    )
    assert reading.failure_line(message) == "ProbeError: is kube-proxy running?"


# ---- the data ------------------------------------------------------------------------------


def test_every_matrix_fault_is_a_known_fault_of_its_cluster():
    from localcluster import faults, kindfaults

    known = {"local": set(faults.FAULTS), "kind": set(kindfaults.FAULTS)}
    for target in faultmatrix.MATRIX:
        assert target.fault in known[target.cluster], target
        assert target.tests
        assert all("::test_" in test for test in target.tests)


def test_every_variant_is_known_to_the_local_cluster_and_targets_scenarios():
    from localcluster import faults

    known = getattr(faults, "VARIANTS", {}) or {}
    for variant in faultmatrix.VARIANTS:
        assert variant.name in known, f"{variant.name}: not a variant of localcluster.faults"
        assert variant.tests
    names = [t.fault for t in faultmatrix.MATRIX] + [v.name for v in faultmatrix.VARIANTS]
    assert len(names) == len(set(names)), "--only needs every name once"


# ---- the runner, faked ---------------------------------------------------------------------


class FakeRuns:
    """Answers `localcluster fault|variant apply|clear` with the given status, and pytest with a
    written report.json whose tests have `outcome` and `failure` (healthy runs pass)."""

    def __init__(
        self,
        apply_status=0,
        outcome="failed",
        failure=None,
        variant_outcome="passed",
        healthy_outcome="passed",
        keeps_evidence=True,
        cluster_logs=None,
    ):
        self.keeps_evidence = keeps_evidence
        #: kind's export after a failure: None (a provider without one), "whole" or "failed".
        self.cluster_logs = cluster_logs
        self.apply_status = apply_status
        self.outcome = outcome
        self.failure = (
            behaviour("no answer: kube-proxy did not route") if failure is None else failure
        )
        self.variant_outcome = variant_outcome
        self.healthy_outcome = healthy_outcome
        self.calls = []
        self.count = 0

    def __call__(self, argv, timeout):
        self.calls.append(list(argv))
        if "localcluster" in argv:
            status = self.apply_status if "apply" in argv else 0
            err = "localcluster: cannot apply x: missing" if status else ""
            return subprocess.CompletedProcess(argv, status, "", err)
        report_dir = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("--report-dir=")))
        tests = [a for a in argv if "::" in a]
        report_dir.mkdir(parents=True, exist_ok=True)
        if report_dir.name == "healthy":
            outcome, failure = self.healthy_outcome, None
        elif report_dir.parent.name == "variants":
            outcome = self.variant_outcome
            failure = None if outcome == "passed" else precondition("3 of 4 answered")
        else:
            outcome, failure = self.outcome, self.failure
        if outcome in ("passed", "skipped"):
            failure = None
        self.count += 1
        document = {
            "run_id": f"r{self.count}",
            "cluster": {"provider": "local", "describe": "local cluster (host processes)"},
            "tests": [
                {
                    "nodeid": t,
                    "outcome": outcome,
                    # the traceback names the part whatever happened: never read by the judge
                    "message": "E   kube-proxy (from the source)" if outcome != "passed" else None,
                    "failure": failure,
                    "evidence_dir": self._evidence(report_dir, t, outcome),
                }
                for t in tests
            ],
        }
        if self.cluster_logs and outcome != "passed":
            logs = report_dir / "evidence" / "kind-logs"
            (logs / "kube-alive-worker").mkdir(parents=True)
            (logs / "kube-alive-worker" / "kubelet.log").write_text("kubelet said why")
            if self.cluster_logs == "failed":
                (logs / "errors.txt").write_text(
                    "exporting the cluster's logs failed: crictl images: exit status 126\n"
                )
            document["cluster_logs"] = "evidence/kind-logs"
        (report_dir / "report.json").write_text(json.dumps(document))
        return subprocess.CompletedProcess(argv, 0 if outcome == "passed" else 1, "", "")

    def _evidence(self, report_dir, nodeid, outcome):
        """A failed test's folder, as the suite writes it (when this run keeps evidence)."""
        if outcome == "passed" or not self.keeps_evidence:
            return None
        found = evidence.Gathered("ka-x", events=[], objects={"Pod": []})
        return evidence.write_folder(report_dir, nodeid, found, None, "E  failed")


TARGET = faultmatrix.Target("service-routing-stopped", ("a.py::test_x",), PROXY)
VARIANT = faultmatrix.Variant("proxy-ipvs", ("a.py::test_x", "b.py::test_y"))


def matrix(tmp_path, runs):
    return faultmatrix.Matrix(tmp_path, lambda _: None, runs, run_id="fm-test")


def test_a_fault_is_applied_caught_and_always_cleared(tmp_path):
    runs = FakeRuns()
    m = matrix(tmp_path, runs)
    entry = m.one(TARGET, {})
    assert entry["status"] == "ran"
    result = entry["results"][0]
    assert (result["status"], result["kind"]) == (catches.CAUGHT, "behaviour")
    assert result["line"] == "no answer: kube-proxy did not route"
    assert result["report"] == "faults/service-routing-stopped/report.html"
    assert [c[-3:-1] for c in runs.calls if "localcluster" in c] == [
        ["fault", "apply"],
        ["fault", "clear"],
    ]
    assert m.pytest_runs == [
        {
            "purpose": "fault service-routing-stopped",
            "run_id": "r1",
            "report": "faults/service-routing-stopped/report.html",
            "exit": 1,
        }
    ]
    assert m.cluster == {"provider": "local", "describe": "local cluster (host processes)"}


def test_a_catch_records_the_evidence_its_run_left(tmp_path):
    entry = matrix(tmp_path, FakeRuns()).one(TARGET, {})
    result = entry["results"][0]
    assert result["evidence"] == (
        f"faults/service-routing-stopped/evidence/{evidence.folder_name('a.py::test_x')}"
    )
    assert (tmp_path / result["evidence"] / "events.txt").is_file()
    assert result["evidence_problem"] is None
    assert faultmatrix.verdict({"faults": [entry]}, healthy_required=False) == []
    page = catches.render({"run_id": "fm-test", "faults": [entry]})
    assert f'<a class="evidence" href="{result["evidence"]}/">' in page


def test_a_catch_whose_run_left_no_evidence_fails_the_matrix_in_one_line(tmp_path):
    entry = matrix(tmp_path, FakeRuns(keeps_evidence=False)).one(TARGET, {})
    assert entry["results"][0]["status"] == catches.CAUGHT
    problems = faultmatrix.verdict({"faults": [entry]}, healthy_required=False)
    assert problems == [
        "service-routing-stopped x a.py::test_x: caught, but its evidence is missing "
        "(report.json names no evidence folder for it)"
    ]
    page = catches.render({"run_id": "fm-test", "faults": [entry]})
    assert "evidence missing: report.json names no evidence folder for it" in page
    assert 'class="evidence"' not in page


def test_the_matrix_page_links_only_a_fault_runs_evidence_folder():
    row = {"nodeid": "a.py::test_x", "status": catches.CAUGHT}
    for bad in ("javascript:alert(1)", "faults/x/../../etc", "/etc/passwd", "faults/x/logs/y"):
        page = catches.render(
            {"run_id": "fm", "faults": [{"fault": "x", "results": [{**row, "evidence": bad}]}]}
        )
        assert 'class="evidence"' not in page


def test_a_catch_whose_evidence_folder_lost_its_events_fails_the_matrix(tmp_path):
    runs = FakeRuns()
    real = runs.__call__

    def losing_events(argv, timeout):
        done = real(argv, timeout)
        for events in tmp_path.glob("faults/*/evidence/*/events.txt"):
            events.unlink()
        return done

    entry = matrix(tmp_path, losing_events).one(TARGET, {})
    problem = entry["results"][0]["evidence_problem"]
    assert problem.endswith("events.txt missing")
    assert "\n" not in problem
    assert faultmatrix.verdict({"faults": [entry]}, healthy_required=False)


def test_a_catch_on_kind_keeps_the_clusters_logs_whole(tmp_path):
    entry = matrix(tmp_path, FakeRuns(cluster_logs="whole")).one(TARGET, {})
    assert "cluster_logs_problem" not in entry
    assert faultmatrix.verdict({"faults": [entry]}, healthy_required=False) == []


def test_a_catch_whose_cluster_log_export_failed_fails_the_matrix(tmp_path):
    entry = matrix(tmp_path, FakeRuns(cluster_logs="failed")).one(TARGET, {})
    assert entry["results"][0]["status"] == catches.CAUGHT
    problems = faultmatrix.verdict({"faults": [entry]}, healthy_required=False)
    assert len(problems) == 1
    assert problems[0].startswith("service-routing-stopped: caught, but the cluster's logs")
    assert "crictl images: exit status 126" in problems[0]


def test_cluster_logs_without_a_node_folder_are_missing(tmp_path):
    (tmp_path / "evidence" / "kind-logs").mkdir(parents=True)
    problem = evidence.cluster_logs_missing(tmp_path, "evidence/kind-logs")
    assert problem.endswith("no node's kubelet.log (kind export logs wrote no node folder)")
    assert evidence.cluster_logs_missing(tmp_path, None) is None


def test_a_precondition_failure_under_a_fault_is_stopped_not_caught(tmp_path):
    runs = FakeRuns(failure=precondition("prober never ready: kube-proxy?"))
    entry = matrix(tmp_path, runs).one(TARGET, {})
    assert entry["results"][0]["status"] == catches.STOPPED
    problems = faultmatrix.verdict({"faults": [entry]}, healthy_required=False)
    assert problems == [f"service-routing-stopped x a.py::test_x: {catches.STOPPED}"]


def test_a_stale_report_is_never_read_as_this_runs(tmp_path):
    stale = tmp_path / "faults" / TARGET.fault
    stale.mkdir(parents=True)
    (stale / "report.json").write_text(
        json.dumps(
            {
                "run_id": "old",
                "tests": [
                    {
                        "nodeid": "a.py::test_x",
                        "outcome": "failed",
                        "failure": behaviour("kube-proxy"),
                    }
                ],
            }
        )
    )

    def run(argv, timeout):  # pytest writes nothing this time
        return subprocess.CompletedProcess(argv, 0 if "localcluster" in argv else 4, "usage", "")

    entry = matrix(tmp_path, run).one(TARGET, {})
    assert entry["results"][0]["status"] == catches.MISSED
    assert "no report" in entry["results"][0]["line"]


def test_a_fault_that_cannot_be_applied_is_not_run_never_caught(tmp_path):
    runs = FakeRuns(apply_status=faultmatrix.NOT_APPLICABLE)
    entry = matrix(tmp_path, runs).one(TARGET, {})
    assert entry["status"] == catches.NOT_RUN
    assert entry["results"][0]["status"] == catches.NOT_RUN
    assert "cannot apply" in entry["note"]
    assert not any("pytest" in c for c in runs.calls)
    problems = faultmatrix.verdict({"faults": [entry], "healthy": {}}, healthy_required=False)
    assert problems == ["service-routing-stopped x a.py::test_x: not run"]


def test_a_scenario_that_passes_under_the_fault_is_missed(tmp_path):
    entry = matrix(tmp_path, FakeRuns(outcome="passed")).one(TARGET, {})
    assert entry["results"][0]["status"] == catches.MISSED


def test_a_variant_passes_only_when_every_targeted_test_passed(tmp_path):
    runs = FakeRuns()
    entry = matrix(tmp_path, runs).variant(VARIANT, {"proxy-ipvs": "kube-proxy in IPVS mode"})
    assert entry["status"] == "passed"
    assert entry["differs"] == "kube-proxy in IPVS mode"
    assert [r["outcome"] for r in entry["results"]] == ["passed", "passed"]
    assert [c[-3:-1] for c in runs.calls if "localcluster" in c] == [
        ["variant", "apply"],
        ["variant", "clear"],
    ]
    assert faultmatrix.verdict({"faults": [], "variants": [entry]}, healthy_required=True) == []

    failed = matrix(tmp_path, FakeRuns(variant_outcome="failed")).variant(VARIANT, {})
    assert failed["status"] == "failed"
    assert failed["results"][0]["line"] == "3 of 4 answered"
    assert faultmatrix.verdict({"variants": [failed]}, healthy_required=False) == [
        "variant proxy-ipvs x a.py::test_x: failed",
        "variant proxy-ipvs x b.py::test_y: failed",
    ]


def test_a_variant_that_cannot_be_applied_does_not_pass(tmp_path):
    runs = FakeRuns(apply_status=faultmatrix.NOT_APPLICABLE)
    entry = matrix(tmp_path, runs).variant(VARIANT, {})
    assert entry["status"] == catches.NOT_RUN
    assert len(faultmatrix.verdict({"variants": [entry]}, healthy_required=False)) == 2


def test_verdict_needs_something_run_and_a_passing_restored_cluster():
    assert faultmatrix.verdict({"faults": [], "healthy": {}}, healthy_required=False) == [
        "no fault or variant ran"
    ]
    caught = {"fault": "f", "results": [{"nodeid": "t", "status": "caught"}]}
    passed = {"t": {"outcome": "passed", "line": ""}}
    assert faultmatrix.verdict({"faults": [caught], "healthy": passed}, healthy_required=True) == []
    failed = {"t": {"outcome": "failed", "line": "x"}}
    assert faultmatrix.verdict({"faults": [caught], "healthy": failed}, healthy_required=True) == [
        "restored cluster: t failed"
    ]


# ---- a whole run, faked --------------------------------------------------------------------


@pytest.fixture
def no_localcluster(monkeypatch):
    """Descriptions without importing the local cluster's state."""
    monkeypatch.setattr(
        faultmatrix,
        "_describe",
        lambda: (
            {"service-routing-stopped": ("Service routing (kube-proxy)", "kube-proxy stopped")},
            {"proxy-ipvs": "kube-proxy in IPVS mode"},
        ),
    )
    monkeypatch.setattr(faultmatrix, "MATRIX", (TARGET,))
    monkeypatch.setattr(faultmatrix, "VARIANTS", (VARIANT,))


def test_a_run_writes_its_own_json_and_page_bound_to_its_run(tmp_path, no_localcluster, capsys):
    (tmp_path / "report.html").write_text("another run's report")
    runs = FakeRuns()
    status = faultmatrix.main(["--report-dir", str(tmp_path)], run=runs)
    assert status == 0, capsys.readouterr().out
    assert (tmp_path / "report.html").read_text() == "another run's report"
    data = json.loads((tmp_path / catches.FILE).read_text())
    assert data["run_id"].startswith("fm-")
    assert data["started"] <= data["ended"]
    assert data["cluster"]["describe"] == "local cluster (host processes)"
    assert [r["run_id"] for r in data["pytest_runs"]] == ["r1", "r2", "r3"]
    assert [r["purpose"] for r in data["pytest_runs"]] == [
        "fault service-routing-stopped",
        "variant proxy-ipvs",
        "restored cluster",
    ]
    assert data["healthy"] == {"a.py::test_x": {"outcome": "passed", "line": ""}}
    assert data["problems"] == []
    page = (tmp_path / catches.PAGE).read_text()
    assert data["run_id"] in page
    assert "local cluster (host processes)" in page
    assert "no answer: kube-proxy did not route" in page
    assert "kube-proxy in IPVS mode" in page


def test_only_selects_faults_and_variants_by_name(tmp_path, no_localcluster):
    runs = FakeRuns()
    assert faultmatrix.main(["--report-dir", str(tmp_path), "--only", "proxy-ipvs"], run=runs) == 0
    data = json.loads((tmp_path / catches.FILE).read_text())
    assert (data["faults"], [v["variant"] for v in data["variants"]]) == ([], ["proxy-ipvs"])
    assert not any("fault" in c for c in runs.calls if "localcluster" in c)
    assert faultmatrix.main(["--report-dir", str(tmp_path), "--only", "nope"], run=runs) == 2


def test_the_exit_status_fails_on_a_stopped_fault_or_a_failing_variant(tmp_path, no_localcluster):
    stopped = FakeRuns(failure=precondition("kube-proxy?"))
    assert faultmatrix.main(["--report-dir", str(tmp_path)], run=stopped) == 1
    failing = FakeRuns(variant_outcome="failed")
    assert faultmatrix.main(["--report-dir", str(tmp_path)], run=failing) == 1
    data = json.loads((tmp_path / catches.FILE).read_text())
    assert "variant proxy-ipvs x b.py::test_y: failed" in data["problems"]


def test_the_restored_column_is_this_runs_or_not_checked(tmp_path, no_localcluster):
    assert (
        faultmatrix.main(["--report-dir", str(tmp_path), "--healthy", "skip"], run=FakeRuns()) == 0
    )
    data = json.loads((tmp_path / catches.FILE).read_text())
    assert data["healthy"] == {}
    assert [r.restored for r in catches.view(data).rows] == [catches.NOT_CHECKED]
    assert (
        faultmatrix.main(["--report-dir", str(tmp_path)], run=FakeRuns(healthy_outcome="failed"))
        == 1
    )
    rows = catches.view(json.loads((tmp_path / catches.FILE).read_text())).rows
    assert [r.restored for r in rows] == ["failed"]


def test_an_interrupted_run_still_writes_its_matrix_and_clears_the_fault(tmp_path, no_localcluster):
    runs = FakeRuns()

    def interrupted(argv, timeout):
        if "pytest" in argv:
            raise KeyboardInterrupt
        return runs(argv, timeout)

    with pytest.raises(KeyboardInterrupt):
        faultmatrix.main(["--report-dir", str(tmp_path)], run=interrupted)
    assert [c[-3:-1] for c in runs.calls] == [["fault", "apply"], ["fault", "clear"]]
    data = json.loads((tmp_path / catches.FILE).read_text())
    assert "the matrix stopped before its end (see its log)" in data["problems"]


def test_redraw_draws_the_page_from_its_json(tmp_path, no_localcluster, capsys):
    faultmatrix.main(["--report-dir", str(tmp_path)], run=FakeRuns())
    (tmp_path / catches.PAGE).unlink()
    assert faultmatrix.main(["--redraw", str(tmp_path / catches.FILE)]) == 0
    assert "fm-" in (tmp_path / catches.PAGE).read_text()
    assert faultmatrix.main(["--redraw", str(tmp_path / "missing.json")]) == 2


# ---- the page and the report ---------------------------------------------------------------


MATRIX_DOCUMENT = {
    "run_id": "fm-20261204T170000Z-ab12",
    "started": 1_764_867_600.0,
    "ended": 1_764_868_100.0,
    "duration_s": 500,
    "healthy_checked": True,
    "cluster": {
        "provider": "local",
        "describe": "local cluster",
        "facts": {"server_version": "v1.34.4", "nodes": [{"name": "ka-node-1", "ready": True}]},
    },
    "pytest_runs": [
        {
            "purpose": "fault service-routing-stopped",
            "run_id": "abc123",
            "report": "faults/service-routing-stopped/report.html",
            "exit": 1,
        }
    ],
    "faults": [
        {
            "fault": "service-routing-stopped",
            "broken": "Service routing (kube-proxy)",
            "how": "kube-proxy stopped",
            "results": [
                {
                    "nodeid": "s.py::test_spread",
                    "status": "caught",
                    "kind": "behaviour",
                    "line": "no kube-proxy",
                    "report": "faults/service-routing-stopped/report.html",
                }
            ],
        },
        {
            "fault": "metrics-api-gone",
            "broken": "metrics",
            "how": "stopped",
            "results": [
                {
                    "nodeid": "s.py::test_scale",
                    "status": catches.STOPPED,
                    "kind": "precondition",
                    "line": "no metrics API",
                }
            ],
        },
    ],
    "variants": [
        {
            "variant": "proxy-ipvs",
            "differs": "IPVS",
            "status": "failed",
            "results": [{"nodeid": "s.py::test_spread", "outcome": "failed", "line": "3 of 4"}],
        }
    ],
    "healthy": {"s.py::test_spread": {"outcome": "passed", "line": ""}},
    "problems": ["metrics-api-gone x s.py::test_scale: stopped by a precondition"],
}


def test_the_page_shows_the_run_both_tables_and_the_lines_judged():
    table = catches.view(MATRIX_DOCUMENT)
    assert [(r.fault, r.status, r.restored) for r in table.rows] == [
        ("service-routing-stopped", "caught", "passed"),
        ("metrics-api-gone", catches.STOPPED, catches.NOT_CHECKED),
    ]
    assert table.summary.startswith("1 of 2 fault/scenario pairs caught")
    assert "1 stopped by a precondition" in table.summary
    assert [(v.variant, v.outcome) for v in table.variants] == [("proxy-ipvs", "failed")]
    assert not table.passed
    html = catches.render(MATRIX_DOCUMENT)
    for text in (
        "fm-20261204T170000Z-ab12",
        "2025-12-04 17:00:00 UTC",
        "local cluster",
        "v1.34.4",
        "no kube-proxy",
        "stopped by a precondition",
        "Healthy variants",
        "NOT PROVEN",
        'href="faults/service-routing-stopped/report.html"',
    ):
        assert text in html, text
    # the report's CSS, inline
    assert "<style>" in html
    assert "--pass" in html


def test_a_matrix_without_a_verdict_is_not_shown_as_proven():
    old = {"faults": [], "healthy": {"t": "passed"}}
    page = catches.view(old)
    assert not page.passed
    assert "not checked" in page.restored_summary
    catches.render(old)


def test_the_pytest_report_never_shows_a_matrix():
    # Neither one lying in its directory (report.write does not read it) nor one inside an
    # older report.json being redrawn.
    assert "catches" not in report.build(
        run_id="r", started=0.0, ended=1.0, exitstatus=0, cluster=None, outcomes={}, records={}
    )
    html = report.render_html({"run_id": "r", "tests": [], "catches": MATRIX_DOCUMENT})
    assert "What this suite catches" not in html
    assert "no kube-proxy" not in html


def test_the_report_written_beside_a_matrix_does_not_take_it_in(tmp_path):
    (tmp_path / catches.FILE).write_text(json.dumps(MATRIX_DOCUMENT))
    state = SimpleNamespace(
        run_id="r",
        started_wall=0.0,
        outcomes={},
        read_records=dict,
        settings=SimpleNamespace(report_dir=tmp_path),
    )
    json_path, html_path = report.write(state, None, 0)
    assert "catches" not in json.loads(json_path.read_text())
    assert "no kube-proxy" not in html_path.read_text()


def test_matrix_json_is_loaded_from_a_file_or_its_directory(tmp_path):
    assert catches.load(tmp_path) is None
    (tmp_path / catches.FILE).write_text("{broken")
    assert catches.load(tmp_path) is None
    (tmp_path / catches.FILE).write_text(json.dumps({"faults": []}))
    assert catches.load(tmp_path) == {"faults": []}
    assert catches.load(tmp_path / catches.FILE) == {"faults": []}
    (tmp_path / catches.FILE).write_text(json.dumps({"tests": []}))
    assert catches.load(tmp_path) is None


def test_the_module_runs_as_a_script_for_help():
    done = subprocess.run(
        [sys.executable, "-m", "suite.tools.faultmatrix", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "--only NAME" in done.stdout


def test_on_kind_only_the_kind_faults_run_through_kind_fault_and_pytest_on_kind(tmp_path):
    calls = []

    def run(argv, timeout):
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    status = faultmatrix.main(["--cluster=kind", f"--report-dir={tmp_path}"], run=run)
    assert status == 1  # the fake runner writes no report: nothing is caught
    applied = [c[3:] for c in calls if c[1:3] == ["-m", "localcluster"]]
    assert applied[0] == ["kind-fault", "apply", "node-service-routing-dropped"]
    assert all(c[0] == "kind-fault" for c in applied)
    pytests = [c for c in calls if c[1:3] == ["-m", "pytest"]]
    assert pytests
    assert all("--cluster=kind" in c and "--keep-cluster" in c for c in pytests)
    matrix = json.loads((tmp_path / "fault-matrix.json").read_text())
    assert matrix["provider"] == "kind"
    kind_faults = [t.fault for t in faultmatrix.MATRIX if t.cluster == "kind"]
    assert "node-service-routing-dropped" in kind_faults
    assert [f["fault"] for f in matrix["faults"]] == kind_faults

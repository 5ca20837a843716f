"""The soak's table and its run loop, with pytest processes and the cluster faked (no cluster)."""

import fnmatch
import json
import signal
import subprocess
from pathlib import Path

import pytest

from suite.tools import soak

LB = (
    "suite/behaviours/load_balancing/test_load_balancing.py::"
    "test_service_spreads_new_connections_over_every_replica"
)
HEAL = (
    "suite/behaviours/self_healing/test_self_healing.py::"
    "test_deleted_pod_is_replaced_by_its_replicaset"
)


@pytest.fixture(autouse=True)
def signal_handlers():
    """The soak installs SIGINT/SIGTERM handlers when interrupted; the test run keeps its own."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def report(*tests):
    return {"exitstatus": 0, "tests": [dict(t) for t in tests]}


def a_test(nodeid, outcome="passed", duration=10.0, message="", **figures):
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "duration_s": duration,
        "message": message,
        "figures": figures,
    }


def test_scalar_figures_keep_numbers_and_nested_numbers_named_like_figures():
    figures = {
        "replicas": 4,
        "p_value": 0.59,
        "by_pod": {"getip-54cf8bf894-czhjg": 614},
        "by_node": {"kube-alive": 2400},
        "by_version": {"v1": 463},
        "floor": {"total_s": 3.0, "terms": [{"what": "x", "s": 1.0}]},
        "ok": True,
        "reason": "Error",
    }
    assert soak.scalar_figures(figures) == {
        "replicas": 4.0,
        "p_value": 0.59,
        "floor.total_s": 3.0,
    }
    assert soak.scalar_figures(None) == {}


def test_table_has_pass_fail_per_run_failures_and_the_spread_of_figures():
    runs = [
        soak.run_entry(
            number=1,
            run_id="abcdr1",
            report=report(a_test(LB, duration=17.0, chi_square=1.9), a_test(HEAL, duration=5.0)),
            exitstatus=0,
            interrupted=False,
            duration_s=30.0,
            report_dir="r1",
        ),
        soak.run_entry(
            number=2,
            run_id="abcdr2",
            report=report(
                a_test(LB, "failed", 19.5, "E   AssertionError: pod a took 33 %", chi_square=7.5),
                a_test(HEAL, duration=6.0),
            ),
            exitstatus=1,
            interrupted=False,
            duration_s=33.0,
            report_dir="r2",
        ),
    ]
    assert soak.counts(runs) == {"passed": 3, "failed": 1, "other": 0}
    spread = {(row["nodeid"], row["figure"]): row for row in soak.spread(runs)}
    assert spread[(LB, "chi_square")] == {
        "nodeid": LB,
        "figure": "chi_square",
        "min": 1.9,
        "max": 7.5,
        "runs": 2,
    }
    assert (spread[(HEAL, "duration_s")]["min"], spread[(HEAL, "duration_s")]["max"]) == (5, 6)

    text = soak.markdown(
        {
            "soak_id": "abcd",
            "planned": 2,
            "pytest_args": ["--cluster=local"],
            "started_utc": "then",
            "elapsed_s": 63,
            "namespaces": "none",
            "runs": runs,
        }
    )
    assert (
        "| test_load_balancing.py::test_service_spreads_new_connections_over_every_replica "
        "| pass | **FAIL** | 1/2 |" in text
    )
    assert (
        "| test_self_healing.py::test_deleted_pod_is_replaced_by_its_replicaset | pass | pass "
        "| 2/2 |" in text
    )
    assert "run 2, test_load_balancing.py::" in text
    assert "AssertionError: pod a took 33 %" in text
    assert "| chi_square | 1.9 | 7.5 | 2 |" in text
    assert "namespaces of this soak left on the cluster: none" in text


def test_an_interrupted_run_is_marked_and_its_unfinished_tests_say_so():
    run = soak.run_entry(
        number=1,
        run_id="x",
        report=report(a_test(LB, "unknown")),
        exitstatus=2,
        interrupted=True,
        duration_s=5.0,
        report_dir="r",
    )
    text = soak.markdown(
        {
            "soak_id": "x",
            "planned": 3,
            "pytest_args": [],
            "started_utc": "then",
            "elapsed_s": 5,
            "interrupted": True,
            "runs": [run],
        }
    )
    assert "| test | 1 (interrupted) | passed |" in text
    assert soak.spread([run]) == []  # its 2 s of setup are no duration of the scenario
    assert "| interrupted | 0/1 |" in text
    assert "0 of 3 run(s) complete, then interrupted" in text


def test_pytest_args_use_the_set_unless_a_path_or_node_id_is_given():
    assert soak.pytest_args("behaviours", []) == list(soak.SETS["behaviours"])
    assert soak.pytest_args("behaviours", ["-k", "infected"]) == [
        *soak.SETS["behaviours"],
        "-k",
        "infected",
    ]
    lb = "suite/behaviours/load_balancing/test_load_balancing.py"
    assert soak.pytest_args("behaviours", [lb, "-x"]) == [lb, "-x"]
    assert soak.pytest_args("e2e", [LB]) == [LB]
    assert soak.pytest_args("e2e", []) == [*soak.SETS["behaviours"], "suite/scenarios"]


def test_every_file_of_the_behaviour_set_exists():
    for path in soak.SETS["behaviours"]:
        assert (soak.REPO / path).is_file()


def test_soak_selector_names_every_run():
    assert soak.soak_selector(["ab2", "ab1"]) == (
        "app.kubernetes.io/part-of=kube-alive,kube-alive/run-id in (ab1,ab2)"
    )


class FakeChild:
    """A pytest that has written its report when it is waited for; `interrupt_on` makes the
    first wait raise KeyboardInterrupt (Ctrl-C arriving mid-run)."""

    def __init__(self, run_dir, outcome, *, interrupt=False, hang_after_sigint=False):
        self.run_dir = run_dir
        self.outcome = outcome
        self.interrupt = interrupt
        self.hang = hang_after_sigint
        self.signals = []
        self.killed = False

    def _finish(self, status, outcome):
        (self.run_dir / "report.json").write_text(
            json.dumps(report(a_test(LB, outcome, chi_square=2.0)) | {"exitstatus": status})
        )
        return status

    def wait(self, timeout=None):
        if self.killed:
            return -9
        if self.signals:
            if self.hang:
                raise subprocess.TimeoutExpired("pytest", timeout)
            return self._finish(2, "unknown")
        if self.interrupt:
            raise KeyboardInterrupt
        return self._finish(0 if self.outcome == "passed" else 1, self.outcome)

    def send_signal(self, sig):
        self.signals.append(sig)

    def kill(self):
        self.killed = True


class Launcher:
    def __init__(self, outcomes, **child_options):
        self.outcomes = list(outcomes)
        self.child_options = child_options
        self.children = []
        self.envs = []

    def __call__(self, argv, env, log_path):
        run_dir = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("--report-dir=")))
        log_path.write_text("collected 1 item\n")
        self.envs.append(env)
        outcome = self.outcomes.pop(0)
        interrupt = outcome == "interrupt"
        child = FakeChild(run_dir, outcome, interrupt=interrupt, **self.child_options)
        self.children.append(child)
        return child


def make_soak(tmp_path, planned, launcher, checked):
    def check(run_ids, runs):
        checked.append(list(run_ids))
        return True, "none"

    return soak.Soak(
        planned,
        ["--cluster=local", "suite/behaviours/load_balancing/test_load_balancing.py"],
        tmp_path / "soak",
        lambda text: None,
        launch=launcher,
        check_namespaces=check,
        soak_id="ab12",
    )


def test_every_run_gets_its_own_run_id_and_the_table_is_written(tmp_path):
    launcher = Launcher(["passed", "failed", "passed"])
    checked = []
    status = make_soak(tmp_path, 3, launcher, checked).all()

    assert status == 1  # run 2 failed
    assert [env["KUBE_ALIVE_RUN_ID"] for env in launcher.envs] == ["ab12r1", "ab12r2", "ab12r3"]
    assert checked == [["ab12r1", "ab12r2", "ab12r3"]]
    document = json.loads((tmp_path / "soak" / "soak.json").read_text())
    assert [run["tests"][LB]["outcome"] for run in document["runs"]] == [
        "passed",
        "failed",
        "passed",
    ]
    assert document["counts"] == {"passed": 2, "failed": 1, "other": 0}
    assert document["namespaces"] == "none"
    assert "| pass | **FAIL** | pass | 2/3 |" in (tmp_path / "soak" / "soak.md").read_text()


def test_ctrl_c_mid_run_stops_pytest_once_writes_the_table_so_far_and_checks_namespaces(tmp_path):
    launcher = Launcher(["passed", "interrupt", "passed"])
    checked = []
    status = make_soak(tmp_path, 3, launcher, checked).all()

    assert status == soak.INTERRUPTED
    assert len(launcher.children) == 2  # run 3 never started
    assert launcher.children[1].signals == [signal.SIGINT]
    assert checked == [["ab12r1", "ab12r2"]]
    document = json.loads((tmp_path / "soak" / "soak.json").read_text())
    assert document["interrupted"] is True
    assert [run["interrupted"] for run in document["runs"]] == [False, True]
    assert document["runs"][1]["exitstatus"] == 2
    table = (tmp_path / "soak" / "soak.md").read_text()
    assert "| 1 | 2 (interrupted) | passed |" in table
    assert "| pass | interrupted | 1/2 |" in table


def test_a_pytest_that_does_not_stop_after_sigint_is_killed_and_the_run_says_so(tmp_path):
    launcher = Launcher(["interrupt"], hang_after_sigint=True)
    run = make_soak(tmp_path, 1, launcher, [])
    run.exit_deadline_s = 0.01
    assert run.all() == soak.INTERRUPTED
    assert launcher.children[0].killed
    entry = run.document["runs"][0]
    assert "did not exit within" in entry["note"]
    assert "no report.json" in entry["note"]


def test_a_failed_namespace_check_fails_the_soak(tmp_path):
    run = make_soak(tmp_path, 1, Launcher(["passed"]), [])
    run.check_namespaces = lambda run_ids, runs: (False, "STILL THERE: ka-ab12r1-x")
    assert run.all() == 1
    assert "STILL THERE" in (tmp_path / "soak" / "soak.md").read_text()


def test_a_check_that_raises_is_reported_not_lost(tmp_path):
    def broken(run_ids, runs):
        raise OSError("no kubeconfig")

    run = make_soak(tmp_path, 1, Launcher(["passed"]), [])
    run.check_namespaces = broken
    assert run.all() == 1
    assert "could not check: OSError: no kubeconfig" in run.document["namespaces"]


def test_n_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        soak.main(["0"])
    assert "N must be at least 1" in capsys.readouterr().err


def test_an_unknown_cluster_is_refused_up_front_listing_the_choices(capsys, monkeypatch):
    monkeypatch.setattr(soak.Soak, "all", lambda self: pytest.fail("a run started"))
    with pytest.raises(SystemExit) as exit_:
        soak.main(["1", "--cluster=bogus"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == (
        "scripts/soak: error: argument --cluster: invalid choice: 'bogus' "
        "(choose from 'existing', 'kind', 'local')"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--report-dir=/proc/kube-alive-soak"],
            # As root the write is tried (no such file); as a user the parent is not writable.
            "--report-dir=/proc/kube-alive-soak: cannot * /proc*; name * directory*",
        ),
        (
            ["--report-dir="],
            "--report-dir= is empty: give a directory, or leave the option out for reports/soak/",
        ),
    ],
    ids=["report-dir-unwritable", "report-dir-empty"],
)
def test_a_report_dir_it_cannot_write_is_one_line_before_any_run(
    capsys, monkeypatch, args, message
):
    monkeypatch.setattr(soak.Soak, "all", lambda self: pytest.fail("a run started"))
    with pytest.raises(SystemExit) as exit_:
        soak.main(["1", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert fnmatch.fnmatchcase(err.splitlines()[-1], f"scripts/soak: error: {message}"), err


def test_pytest_arguments_after_dashes_are_taken_wherever_the_soaks_options_stand(
    tmp_path, monkeypatch
):
    seen = []
    monkeypatch.setattr(soak.Soak, "all", lambda self: seen.append(self) or 0)
    monkeypatch.setattr(soak.signal, "signal", lambda *args: None)
    path = "suite/behaviours/load_balancing/test_load_balancing.py"
    for argv in (
        ["2", f"--report-dir={tmp_path}", "--cluster=kind", "--", path, "-x"],
        [f"--report-dir={tmp_path}", "--cluster=kind", "2", "--", path, "-x"],
    ):
        assert soak.main(argv) == 0
    assert [run.argv for run in seen] == [["--cluster=kind", path, "-x"]] * 2


def test_ctrl_c_between_runs_still_writes_the_table_and_checks_every_started_run(tmp_path):
    launcher = Launcher(["passed", "passed"])
    real_launch = launcher.__call__

    def launch(argv, env, log_path):
        if len(launcher.children) == 1:
            raise KeyboardInterrupt  # Ctrl-C while run 2 was being started
        return real_launch(argv, env, log_path)

    checked = []
    run = make_soak(tmp_path, 2, launch, checked)
    assert run.all() == soak.INTERRUPTED
    assert checked == [["ab12r1", "ab12r2"]]
    document = json.loads((tmp_path / "soak" / "soak.json").read_text())
    assert document["interrupted"] is True
    assert len(document["runs"]) == 1

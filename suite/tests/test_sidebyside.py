"""suite.tools.sidebyside: windows, overlaps and the alone/beside comparison (no cluster)."""

from __future__ import annotations

import fnmatch
import subprocess

import pytest

from suite.floors import Floor
from suite.tools import sidebyside

LOAD_ID = "suite/behaviours/autoscaling/test_autoscaling.py::test_cpu_load"
TEST_ID = "suite/behaviours/self_healing/test_self_healing.py::test_infected"


def _marks(*pairs):
    return {"marks": [{"label": label, "wall": wall, "t": 0} for label, wall in pairs]}


def _load(start, stop, outcome="passed"):
    recording = _marks(("apply", start - 20), ("load start", start), ("load stopped", stop))
    return {"tests": [{"nodeid": LOAD_ID, "outcome": outcome, "recording": recording}]}


def _test(first, last, restarted, outcome="passed", duration=20.0):
    figures = {
        "restarted_after_s": restarted,
        "restart_earliest_s": 7,
        "routing_bound_s": 3.0,
        "by_pod": {"a": 1},
        "floor": Floor.of(("x", 10)).to_dict(),
    }
    return {
        "nodeid": TEST_ID,
        "outcome": outcome,
        "duration_s": duration,
        "figures": figures,
        "recording": _marks(("deploy", first), ("done", last)),
    }


def test_windows_and_overlaps():
    load = _load(100.0, 118.0)["tests"][0]
    assert sidebyside.window(load, "load start", "load stopped") == (100.0, 118.0)
    assert sidebyside.window(load) == (80.0, 118.0)
    assert sidebyside.window({"recording": None}) is None
    assert sidebyside.window(load, "no such mark") is None
    assert sidebyside.overlap_s((100, 118), (110, 130)) == 8
    assert sidebyside.overlap_s((100, 118), (120, 130)) == 0
    assert sidebyside.overlap_s(None, (1, 2)) == 0


def test_measured_figures_leave_out_stated_bounds_and_maps():
    found = sidebyside.measured(_test(0, 1, 8.2, duration=15.0))
    assert found == {"restarted_after_s": 8.2, "duration_s": 15.0, "x_floor": 1.5}


def test_a_pair_that_overlapped_the_load_is_a_proof():
    alone = {"tests": [_test(0, 20, 8.1)]}
    result = sidebyside.compare(alone, [(_load(100, 118), {"tests": [_test(105, 125, 8.3)]})])
    (row,) = result["rows"]
    assert row["overlap_s"] == 13.0
    assert row["load_s"] == 18.0
    assert row["figures"]["restarted_after_s"] == [8.1, 8.3]
    assert sidebyside.ok(result)
    text = sidebyside.markdown(result)
    assert "overlapped the load for 13 s of its 18 s" in text
    assert "| restarted_after_s | 8.1 | 8.3 |" in text


def test_no_overlap_or_a_failure_proves_nothing():
    alone = {"tests": [_test(0, 20, 8.1)]}
    apart = sidebyside.compare(alone, [(_load(100, 118), {"tests": [_test(130, 150, 8.0)]})])
    assert not sidebyside.ok(apart)
    assert "did NOT overlap the load: proves nothing" in sidebyside.markdown(apart)
    failed = sidebyside.compare(
        alone, [(_load(100, 118), {"tests": [_test(105, 125, 8.0, outcome="failed")]})]
    )
    assert not sidebyside.ok(failed)
    assert not sidebyside.ok({"rows": []})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cluster=bogus"],
            "argument --cluster: invalid choice: 'bogus' (choose from 'existing', 'kind', 'local')",
        ),
        (["--delay=-1"], "--delay=-1: give a number of seconds, 0 or more"),
        (["--out={file}"], "--out={file}: exists and is not a directory; name a directory"),
        (
            ["--delay=1e9"],
            "--delay=1e+09: the autoscaling run is given at most 900 s, so a test started "
            "later overlaps no load; give less (default 15)",
        ),
        (
            ["--out="],
            "--out= is empty: give a directory, or leave the option out for reports/side-by-side",
        ),
        (
            ["--out=/proc/kube-alive-side-by-side"],
            # As root the write is tried (no such file); as a user the parent is not writable.
            "--out=/proc/kube-alive-side-by-side: cannot * /proc*; name * directory*",
        ),
    ],
    ids=["cluster", "delay", "out", "delay-past-the-load", "out-empty", "out-unwritable"],
)
def test_bad_arguments_are_one_line_and_exit_2_before_any_pytest_runs(
    tmp_path, capsys, monkeypatch, args, message
):
    def no_run(*args, **kwargs):
        pytest.fail("a pytest was started")

    monkeypatch.setattr(subprocess, "run", no_run)
    monkeypatch.setattr(subprocess, "Popen", no_run)
    existing = tmp_path / "a-file"
    existing.write_text("keep me")
    argv = [arg.format(file=existing) for arg in args]
    with pytest.raises(SystemExit) as exit_:
        sidebyside.main([*argv, "suite/behaviours/self_healing/test_self_healing.py"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    expected = f"python -m suite.tools.sidebyside: error: {message.format(file=existing)}"
    assert fnmatch.fnmatchcase(error, expected), (error, expected)
    assert existing.read_text() == "keep me"

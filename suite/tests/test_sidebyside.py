"""suite.sidebyside: windows, overlaps and the alone/beside comparison (no cluster)."""

from __future__ import annotations

from suite import sidebyside
from suite.floors import Floor

LOAD_ID = "suite/scenarios/test_autoscaling.py::test_cpu_load"
TEST_ID = "suite/scenarios/test_self_healing.py::test_infected"


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

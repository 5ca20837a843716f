"""suite.floors: a scenario's physical floor, and the measured time as a multiple of it."""

from __future__ import annotations

import pytest

from suite.behaviours.autoscaling import test_autoscaling
from suite.floors import Floor, floor_of, multiple
from suite.timing import ClusterTiming, Setting


def test_a_floor_sums_its_terms_and_survives_json():
    floor = Floor.of(("probe period", 2), ("window", 10.5))
    assert floor.total_s == 12.5
    assert floor.describe() == "12 s = probe period 2 s + window 10 s"
    assert floor_of({"floor": floor.to_dict()}) == floor
    assert multiple(25.0, floor) == 2.0


def test_negative_terms_empty_floors_and_bad_records():
    with pytest.raises(ValueError, match="negative"):
        Floor.of(("x", -1))
    assert multiple(10, Floor.of()) is None
    assert floor_of({}) is None
    assert floor_of({"floor": {"terms": [{"what": "x"}]}}) is None


def _timing(sync: float, resolution: float) -> ClusterTiming:
    return ClusterTiming(Setting(sync, "test"), Setting(resolution, "test"))


def test_autoscaling_deadlines_and_floor_follow_the_clusters_settings():
    fast = test_autoscaling.deadlines(_timing(5, 10))
    upstream = test_autoscaling.deadlines(_timing(15, 15))
    assert fast.scale_in_s < upstream.scale_in_s
    assert fast.first_reading_s == 2 * 10 + 5 + test_autoscaling.MARGIN_S
    # Every deadline leaves room for its floor part: the scale-in must wait out the window.
    assert fast.scale_in_s > test_autoscaling.SCALE_DOWN_WINDOW_S + 10
    assert test_autoscaling.floor(_timing(5, 10)).total_s == 44.0
    assert test_autoscaling.floor(_timing(15, 15)).total_s == 59.0
    # The backstop covers the slowest cluster the scenario expects (60 s resolution).
    slow = test_autoscaling.deadlines(_timing(15, 60))
    assert slow.first_reading_s + slow.scale_in_s < test_autoscaling.BACKSTOP_S

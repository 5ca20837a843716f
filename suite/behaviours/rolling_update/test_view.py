"""The rolling update's report view (view.py), no cluster: its pod counts, its routing-lag chart
and caption, from recorded-looking runs (suite/tests/data)."""

import json
import re
from html import unescape

import pytest

from suite.behaviours.rolling_update import view as rolling_view
from suite.report import data
from suite.tests import pages
from suite.tests.data import runs


@pytest.fixture(scope="module")
def full():
    return runs.full_run()


@pytest.fixture(scope="module")
def html(full):
    return pages.render(full)


@pytest.fixture(scope="module")
def sample():
    return pages.sample()


def test_pod_counts_replay_a_rolling_update(full):
    rolling = next(t for t in full["tests"] if t["nodeid"] == runs.ROLL)
    counts = data.pod_counts(rolling["recording"], "incver")
    assert max(c.pods for c in counts) == 5
    assert min(c.ready for c in counts if c.t > 6.0) == 4
    assert max(c.total for c in counts) >= 6
    assert counts[-1].pods == 4


def test_rolling_update_charts_each_pods_routing_lag_with_its_bounds(sample):
    rolling = pages.section(pages.render(sample), "rolling-update")
    lags = pages.test_of(sample, "rolling")["figures"]["routing_lags_s"]
    chart = rolling[rolling.index('class="chart-figure per-pod"') :]
    chart = chart[: chart.index("</figure>")]
    for pod in lags:
        assert pod in chart
    # v1 pods were Ready before traffic began: their first answer counts from its start
    assert chart.count(" (v1) *<title>") == 4
    assert chart.count(" (v2)<title>") == 4
    assert chart.count("not told to stop: still serving") == 4
    assert "slice bound 1 s" in chart
    assert "routing-lag bound: 1.5 s after the slice change" in chart
    assert chart.count('class="bound"') == 4 + 8  # a tick per pod per side that has a lag
    assert 'class="violation"' not in chart
    caption = re.sub(r"\s+", " ", unescape(chart[chart.index("<figcaption>") :]))
    assert "The EndpointSlice's worst lag: 0.049 s (Ready → in the slice" in caption
    assert "The answers' worst lag: 1.122 s (in the slice → first answer" in caption
    assert "within its bound of 1.5 s" in caption
    assert "OVER" not in caption
    assert "routing lags per pod</dt><dd>8 pods, charted above" in rolling


def test_a_routing_lag_over_its_bound_is_crossed_and_the_caption_says_over(sample):
    document = json.loads(json.dumps(sample))
    figures = pages.test_of(document, "rolling")["figures"]
    first, second, third = list(figures["routing_lags_s"])[:3]
    figures["routing_lags_s"][first]["stop>out"] = 1.4
    figures["routing_lags_s"][second]["out>last"] = -0.3
    figures["routing_lags_s"][third].update({"ready>slice": None, "slice>first": None})
    rolling = pages.section(pages.render(document), "rolling-update")
    assert rolling.count('class="violation"') == 1
    assert f"{first}: told to stop → out of the slice 1.400 s, over its bound of 1 s" in rolling
    assert "it stopped answering before it left the slice" in rolling
    assert "never listed in the slice" in rolling
    caption = re.sub(r"\s+", " ", unescape(rolling))
    assert f"The EndpointSlice's worst lag: 1.400 s (told to stop → out of the slice, {first})" in (
        caption
    )
    assert "OVER its bound of 1 s" in caption


def test_worst_lags_take_each_kind_against_its_own_bound():
    lags = {
        "a": {"ready>slice": 0.2, "slice>first": 0.4, "stop>out": None, "out>last": None},
        "b": {"ready>slice": 0.1, "slice>first": -0.5, "stop>out": 0.3, "out>last": 2.0},
    }
    slice_lag, answer_lag = rolling_view.worst_lags(lags, slice_bound=1.0, routing_bound=1.5)
    assert slice_lag == rolling_view.Lag(0.3, "b", "stop>out", 1.0)
    assert slice_lag.within
    assert answer_lag == rolling_view.Lag(2.0, "b", "out>last", 1.5)
    assert not answer_lag.within
    assert rolling_view.worst_lags({}, slice_bound=1.0, routing_bound=None) == (None, None)

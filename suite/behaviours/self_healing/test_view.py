"""Self-healing's report view (view.py), no cluster: its tests in story order, each pod's longest
gap without an answer, from recorded-looking runs (suite/tests/data)."""

import pytest

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


def test_self_healing_tests_are_told_in_order_infect_kill_delete(html):
    part = pages.section(html, "self-healing")
    order = [part.index(word) for word in ("Infected pod", "Killed process", "Deleted pod")]
    assert order == sorted(order)


def test_self_healing_shows_each_pods_longest_gap_without_an_answer(sample):
    healing = pages.section(pages.render(sample), "self-healing")
    gaps = pages.test_of(sample, "infected")["figures"]["answer_gap_s"]
    sick = next(pod for pod, gap in gaps.items() if gap > 5)
    chart = healing[healing.index('class="chart-figure per-pod"') :]
    assert f"{sick} (infected): no answer for {gaps[sick]:g} s at most" in chart
    assert f"{gaps[sick]:g} s (infected pod)" in chart
    assert "(healthy pod)" in chart
    assert "infected pod NotReady → Ready again: 9.07 s" in chart

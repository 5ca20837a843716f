"""Table-driven tests of what answers over time show (suite.traffic_proofs), no cluster.

Every function gets its empty-window / no-data case: a claim is never proven by nothing.
"""

import pytest

from suite import traffic_proofs
from suite.tests.fakes import SERVED, answer, ready_view

# -- gaps and coverage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "start", "end", "expected"),
    [
        ([], 0.0, 10.0, (10.0, 0.0)),  # nothing at all: the whole window is one gap
        ([5.0], 0.0, 10.0, (5.0, 0.0)),
        ([1.0, 2.0, 9.0], 0.0, 10.0, (7.0, 2.0)),
        ([0.0, 10.0], 0.0, 10.0, (10.0, 0.0)),
        ([-5.0, 15.0], 0.0, 10.0, (10.0, 0.0)),  # outside the window: ignored
        ([1.0], 5.0, 5.0, (0.0, 5.0)),  # empty window
        ([1.0], 5.0, 4.0, (0.0, 5.0)),  # inverted window
    ],
)
def test_longest_gap(times, start, end, expected):
    assert traffic_proofs.longest_gap(times, start, end) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("starts", "start", "end", "problem"),
    [
        ([i * 0.05 for i in range(201)], 0.0, 10.0, None),
        ([], 0.0, 10.0, "no requests started"),
        ([i * 0.05 for i in range(201)], 10.0, 10.0, "window to cover is empty"),
        ([i * 0.05 for i in range(201)], 10.0, 0.0, "window to cover is empty"),
        (
            [*(i * 0.05 for i in range(80)), *(5.0 + i * 0.05 for i in range(101))],
            0.0,
            10.0,
            "no requests started for 1.05s",
        ),
        ([0.5 * i for i in range(21)], 0.0, 10.0, "/s (at least 20.0/s"),
        ([i * 0.05 for i in range(101)], 0.0, 10.0, "no requests started for 5.00s"),
    ],
)
def test_coverage(starts, start, end, problem):
    result = traffic_proofs.coverage(starts, start, end, max_gap_s=1.0, min_rate=20.0)
    if problem is None:
        assert result.problems == []
    else:
        assert any(problem in text for text in result.problems), result.problems


def test_coverage_rate_of_an_empty_window_is_zero():
    assert traffic_proofs.coverage([], 3.0, 3.0, max_gap_s=1, min_rate=1).rate == 0.0


# -- clock offset --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "sent", "expected"),
    [
        ([], {0: 100.0}, None),  # no answers: unmeasured
        ([answer(100.2, received=100.3)], {}, None),  # no send times
        ([answer(100.2, received=0.0)], {0: 100.0}, None),  # no receipt times
        # prober 0.1 s ahead: end 100.21 received at 100.15 -> offset >= 0.06; first start
        # 100.2 after sending at 100.05 -> offset <= 0.15
        ([answer(100.2, received=100.15)], {0: 100.05}, (0.06, 0.15)),
        (
            [answer(10.5, received=10.6, chunk=0), answer(20.4, received=20.5, chunk=1)],
            {0: 10.4, 1: 20.3},
            (-0.09, 0.1),
        ),
    ],
)
def test_clock_offset(answers, sent, expected):
    offset = traffic_proofs.clock_offset(answers, sent)
    if expected is None:
        assert offset is None
    else:
        assert (offset.lo, offset.hi) == pytest.approx(expected)


def _run(answers, *, sent=None, errors=()):
    from suite.traffic import ProbeRequest, ProbeResult

    return ProbeResult(
        ProbeRequest(url="http://x/"),
        answers=answers,
        errors=list(errors),
        chunk_sent={0: 99.95} if sent is None else sent,
    )


def test_throughout_a_steady_run_with_a_measured_skew_has_no_problem():
    answers = [answer(100.0 + i * 0.1, received=100.02 + i * 0.1) for i in range(101)]
    skew, flow, problems = traffic_proofs.throughout(
        _run(answers), 100.0, 110.0, max_skew_s=0.5, max_gap_s=0.5, min_rate=5.0
    )
    assert problems == []
    assert skew == pytest.approx(0.05)
    assert flow.start == pytest.approx(100.05)


def test_throughout_names_an_interruption_an_unmeasured_skew_and_a_gap():
    answers = [answer(100.0), answer(109.0)]
    skew, _, problems = traffic_proofs.throughout(
        _run(answers, sent={}, errors=["stream broke"]),
        100.0,
        110.0,
        max_skew_s=0.5,
        max_gap_s=1.0,
        min_rate=1.0,
    )
    assert skew == 0.5  # unmeasured: the most the windows allow
    assert problems[0] == "the traffic was interrupted: stream broke"
    assert "could not be measured" in problems[1]
    assert any(
        p.startswith("traffic did not run throughout: no requests started") for p in problems
    )


def test_throughout_of_no_answers_is_never_proven():
    _, flow, problems = traffic_proofs.throughout(
        _run([]), 100.0, 110.0, max_skew_s=0.5, max_gap_s=1.0, min_rate=1.0
    )
    assert flow.count == 0
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (None, "could not be measured"),
        (traffic_proofs.ClockOffset(-0.05, 0.1, 10), None),
        (traffic_proofs.ClockOffset(0.2, 0.7, 10), "up to 0.70s"),
        (traffic_proofs.ClockOffset(-0.9, -0.1, 10), "up to 0.90s"),
        (traffic_proofs.ClockOffset(0.4, 0.1, 10), "contradict"),
    ],
)
def test_skew_problem(offset, problem):
    found = traffic_proofs.skew_problem(offset, 0.5)
    assert (found is None) if problem is None else (problem in found)


# -- routing around a sick pod -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "start", "end", "problems"),
    [
        (SERVED, 10.0, 20.0, []),
        ([], 10.0, 20.0, ["no request started"]),
        (SERVED, 20.0, 20.0, ["window in which the sick pod is out is empty"]),
        (SERVED, 20.0, 15.0, ["window in which the sick pod is out is empty"]),
        (
            [*SERVED, answer(12.0, ok=False, pod="s")],
            10.0,
            20.0,
            ["reached the NotReady", "failed"],
        ),
        ([*SERVED, answer(12.0, pod="s")], 10.0, 20.0, ["reached the NotReady"]),
        ([*SERVED, answer(12.0, ok=False, pod=None, error="refused")], 10.0, 20.0, ["failed"]),
        ([a for a in SERVED if not 13 <= a.start <= 16], 10.0, 20.0, ["answered nothing for 3"]),
        # failures outside the window do not count
        ([*SERVED, answer(9.0, ok=False, pod="s"), answer(21.0, ok=False)], 10.0, 20.0, []),
    ],
)
def test_routing_problems(answers, start, end, problems):
    found = traffic_proofs.routing_problems(answers, "s", "h", start, end, max_gap_s=2.0)
    assert len(found) == len(problems), found
    for expected, text in zip(problems, found, strict=True):
        assert expected in text


def test_routing_problems_count_failures_until_the_pod_settled():
    settling = [*SERVED, answer(21.0, ok=False, pod="s"), answer(26.0, ok=False, pod="s")]
    found = traffic_proofs.routing_problems(
        settling, "s", "h", 10.0, 20.0, 2.0, failures_until=25.0
    )
    assert len(found) == 1
    assert "1 requests failed after the pod was first Ready again" in found[0]
    assert traffic_proofs.routing_problems(settling, "s", "h", 10.0, 20.0, 2.0) == []


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], (None, None)),  # nothing recorded
        ([(1, 101, ready_view(True))], (None, None)),  # never NotReady
        ([(1, 101, ready_view(True)), (2, 102, ready_view(False))], (102, None)),  # never back
        (
            [
                (0.5, 100.5, ready_view(False)),  # before since_t: ignored
                (1, 101, ready_view(True)),
                (2, 102, ready_view(False)),
                (8, 108, ready_view(True)),  # first Ready again ends the interval
                (9, 109, ready_view(False)),
                (10, 110, ready_view(True)),
            ],
            (102, 108),
        ),
        ([(2, 102, ready_view(False)), (3, 103, None), (4, 104, ready_view(True))], (102, 104)),
    ],
)
def test_not_ready_interval(history, expected):
    assert traffic_proofs.not_ready_interval(history, 1.0) == expected


@pytest.mark.parametrize(
    ("starts", "start", "end", "expected"),
    [
        ([1.0, 2.0, 3.0], 1.5, 3.0, [2.0, 3.0]),
        ([1.0, 2.0], 5.0, 6.0, []),
        ([], 0.0, 10.0, []),
        ([1.0], 2.0, 1.0, []),  # inverted window holds nothing
    ],
)
def test_in_window(starts, start, end, expected):
    found = traffic_proofs.in_window([answer(t) for t in starts], start, end)
    assert [a.start for a in found] == expected

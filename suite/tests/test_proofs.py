"""Table-driven tests of the scenarios' decision functions (suite.proofs), no cluster.

Every function gets its empty-window / no-data case: a claim is never proven by nothing.
"""

import pytest

from suite import proofs
from suite.recorder import Moment, PodView
from suite.scenarios import test_load_balancing as lb
from suite.stats import binomial_outside
from suite.traffic import Answer


def answer(start, *, ok=True, pod="a", end=None, received=0.0, chunk=0, status=None, error=None):
    return Answer(
        seq=0,
        start=start,
        end=start + 0.01 if end is None else end,
        status=status if status is not None else (200 if ok else 503),
        ok=ok,
        pod=pod,
        version="v1",
        error=error,
        chunk=chunk,
        received=received,
    )


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
    assert proofs.longest_gap(times, start, end) == pytest.approx(expected)


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
    result = proofs.coverage(starts, start, end, max_gap_s=1.0, min_rate=20.0)
    if problem is None:
        assert result.problems == []
    else:
        assert any(problem in text for text in result.problems), result.problems


def test_coverage_rate_of_an_empty_window_is_zero():
    assert proofs.coverage([], 3.0, 3.0, max_gap_s=1, min_rate=1).rate == 0.0


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
    offset = proofs.clock_offset(answers, sent)
    if expected is None:
        assert offset is None
    else:
        assert (offset.lo, offset.hi) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (None, "could not be measured"),
        (proofs.ClockOffset(-0.05, 0.1, 10), None),
        (proofs.ClockOffset(0.2, 0.7, 10), "up to 0.70s"),
        (proofs.ClockOffset(-0.9, -0.1, 10), "up to 0.90s"),
        (proofs.ClockOffset(0.4, 0.1, 10), "contradict"),
    ],
)
def test_skew_problem(offset, problem):
    found = proofs.skew_problem(offset, 0.5)
    assert (found is None) if problem is None else (problem in found)


# -- routing around a sick pod -------------------------------------------------------------------

HEALTHY = [answer(10.0 + 0.1 * i, pod="h") for i in range(100)]  # 10.0 .. 19.9


@pytest.mark.parametrize(
    ("answers", "start", "end", "problems"),
    [
        (HEALTHY, 10.0, 20.0, []),
        ([], 10.0, 20.0, ["no request started"]),
        (HEALTHY, 20.0, 20.0, ["window in which the sick pod is out is empty"]),
        (HEALTHY, 20.0, 15.0, ["window in which the sick pod is out is empty"]),
        (
            [*HEALTHY, answer(12.0, ok=False, pod="s")],
            10.0,
            20.0,
            ["reached the NotReady", "failed"],
        ),
        ([*HEALTHY, answer(12.0, pod="s")], 10.0, 20.0, ["reached the NotReady"]),
        ([*HEALTHY, answer(12.0, ok=False, pod=None, error="refused")], 10.0, 20.0, ["failed"]),
        ([a for a in HEALTHY if not 13 <= a.start <= 16], 10.0, 20.0, ["answered nothing for 3"]),
        # failures outside the window do not count
        ([*HEALTHY, answer(9.0, ok=False, pod="s"), answer(21.0, ok=False)], 10.0, 20.0, []),
    ],
)
def test_routing_problems(answers, start, end, problems):
    found = proofs.routing_problems(answers, "s", "h", start, end, max_gap_s=2.0)
    assert len(found) == len(problems), found
    for expected, text in zip(problems, found, strict=True):
        assert expected in text


# -- events and restarts -------------------------------------------------------------------------


def event(obj, reason, message, t=1.0):
    return {"object": obj, "reason": reason, "message": message, "t": t}


LIVENESS_EVENTS = [
    event("pod/s", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 503"),
    event("pod/s", "Killing", "Container healthcheck failed liveness probe, will be restarted"),
]


@pytest.mark.parametrize(
    ("events", "ok"),
    [
        (LIVENESS_EVENTS, True),
        ([], False),
        (LIVENESS_EVENTS[:1], False),  # failed probe, but no restart for it
        ([event("pod/s", "Killing", "Stopping container healthcheck")], False),
        ([event("pod/s", "Unhealthy", "Readiness probe failed: 503")], False),
        ([{**e, "object": "pod/other"} for e in LIVENESS_EVENTS], False),
    ],
)
def test_liveness_restart_problem(events, ok):
    assert (proofs.liveness_restart_problem(events, "s") is None) == ok


@pytest.mark.parametrize(
    ("before", "after", "problems"),
    [
        ({"s": 0, "h": 0}, {"s": 1, "h": 0}, []),
        ({"s": 0, "h": 0}, {"s": 0, "h": 0}, ["pod/s restartCount 0 -> 0, expected 1"]),
        ({"s": 0, "h": 0}, {"s": 2, "h": 0}, ["pod/s restartCount 0 -> 2, expected 1"]),
        ({"s": 0, "h": 0}, {"s": 1, "h": 1}, ["pod/h restartCount 0 -> 1, expected 0"]),
        ({"s": 0, "h": 0}, {"s": 1}, ["pod/h is gone"]),
        ({}, {}, ["pod/s was not known"]),
    ],
)
def test_restart_count_problems(before, after, problems):
    found = proofs.restart_count_problems(before, after, "s")
    assert len(found) == len(problems), found
    for want, text in zip(problems, found, strict=True):
        assert want in text


@pytest.mark.parametrize(
    ("events", "ok"),
    [
        ([event("replicaset/rs", "SuccessfulCreate", "Created pod: new-1")], True),
        ([event("replicaset/rs", "SuccessfulCreate", "Created pod: other")], False),
        ([event("replicaset/x", "SuccessfulCreate", "Created pod: new-1")], False),
        ([], False),
    ],
)
def test_created_by_problem(events, ok):
    assert (proofs.created_by_problem(events, "replicaset/rs", "new-1") is None) == ok


# -- autoscaling ---------------------------------------------------------------------------------


def hpa(t, desired, cpu, current=None):
    return {
        "t": t,
        "desired_replicas": desired,
        "current_replicas": desired if current is None else current,
        "cpu_utilization": cpu,
    }


@pytest.mark.parametrize(
    ("deployment", "sample", "ok"),
    [
        ({"ready": 1, "spec_replicas": 1}, {"current_replicas": 1}, True),
        ({"ready": 1, "spec_replicas": 1}, {"current_replicas": 0}, True),  # no status yet
        ({"ready": 0, "spec_replicas": 1}, {"current_replicas": 1}, False),
        ({"ready": 2, "spec_replicas": 2}, {"current_replicas": 2}, False),
        ({"ready": 1, "spec_replicas": 1}, {"current_replicas": 3}, False),
        (None, {"current_replicas": 1}, False),
        ({"ready": 1, "spec_replicas": 1}, None, False),
    ],
)
def test_baseline_problem(deployment, sample, ok):
    assert (proofs.baseline_problem(deployment, sample, 1) is None) == ok


@pytest.mark.parametrize(
    ("samples", "problems"),
    [
        ([hpa(5, 1, 10), hpa(20, 3, 300)], []),  # the rescale carries its reading
        ([hpa(5, 1, 80), hpa(20, 3, 300)], []),  # the reading came first
        ([], ["asked for more", "no HPA reading above"]),  # nothing observed
        ([hpa(5, 1, 10), hpa(20, 1, 30)], ["asked for more", "no HPA reading above"]),
        ([hpa(5, 1, 10), hpa(20, 1, 300)], ["asked for more"]),  # a reading, but no rescale
        ([hpa(5, 3, 10), hpa(20, 3, 300)], ["before any reading above target"]),
        ([hpa(-5, 3, 300), hpa(20, 3, 10)], ["no HPA reading above"]),  # before the load
        ([hpa(5, 2, None)], ["no HPA reading above"]),
    ],
)
def test_scale_out_evidence(samples, problems):
    found = proofs.scale_out_evidence(samples, 0.0, 50, 1).problems
    assert len(found) == len(problems), found
    for want, text in zip(problems, found, strict=True):
        assert want in text


@pytest.mark.parametrize(
    ("events", "ok"),
    [
        (
            [
                event(
                    "horizontalpodautoscaler/cpuhog",
                    "SuccessfulRescale",
                    "New size: 3; reason: cpu resource utilization (percentage of request) above"
                    " target",
                    t=30,
                )
            ],
            True,
        ),
        ([], False),
        (
            [
                event(
                    "horizontalpodautoscaler/cpuhog",
                    "SuccessfulRescale",
                    "New size: 3; reason: memory resource above target",
                    t=30,
                )
            ],
            False,
        ),
        (
            [
                event(
                    "horizontalpodautoscaler/cpuhog",
                    "SuccessfulRescale",
                    "New size: 3; reason: cpu resource utilization above target",
                    t=-1,
                )
            ],
            False,
        ),
        (
            [
                event(
                    "horizontalpodautoscaler/other",
                    "SuccessfulRescale",
                    "New size: 3; reason: cpu resource utilization above target",
                    t=30,
                )
            ],
            False,
        ),
    ],
)
def test_rescale_event_problem(events, ok):
    assert (proofs.rescale_event_problem(events, "cpuhog", 0.0) is None) == ok


@pytest.mark.parametrize(
    ("samples", "t_in", "problem"),
    [
        ([hpa(10, 3, 300), hpa(25, 3, 40), hpa(40, 3, 5), hpa(45, 1, 2)], 45.0, None),
        ([hpa(10, 3, 300), hpa(40, 3, 5), hpa(54, 1, 2)], 54.0, None),  # 14 s: within slack
        ([hpa(10, 3, 300), hpa(20, 1, 5)], 20.0, "before the 15s"),  # scaled in too early
        ([], 50.0, "no HPA CPU reading"),
        ([hpa(10, 3, None), hpa(50, 1, None)], 50.0, "no HPA CPU reading"),
        ([hpa(10, 3, 20), hpa(50, 1, 5)], 50.0, "no HPA reading above"),
        ([hpa(-10, 3, 300), hpa(50, 1, 5)], 50.0, "no HPA reading above"),  # before the load
    ],
)
def test_scale_in_problems(samples, t_in, problem):
    found = proofs.scale_in_problems(
        samples, since_t=0.0, t_scaled_in=t_in, target=50, window_s=15, slack_s=2
    )
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1, found
        assert problem in found[0]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([hpa(1, 3, 1), hpa(5, 1, 1)], 5.0),
        ([hpa(1, 1, 1), hpa(5, 1, 1)], 5.0),  # since_t excludes t=1
        ([], None),
        ([{"t": 6, "deleted": True, "desired_replicas": 1}], None),
    ],
)
def test_first_t(samples, expected):
    assert proofs.first_t(samples, 2.0, "desired_replicas", lambda n: n == 1) == expected


# -- load balancing ------------------------------------------------------------------------------


def service(**spec):
    return {"metadata": {"name": "getip"}, "spec": {"clusterIP": "10.96.0.5", **spec}}


@pytest.mark.parametrize(
    ("svc", "problems"),
    [
        (service(), []),
        (service(type="ClusterIP", sessionAffinity="None"), []),
        (service(clusterIP="None"), ["headless"]),
        (service(sessionAffinity="ClientIP"), ["sessionAffinity ClientIP"]),
        (service(type="NodePort"), ["type NodePort"]),
        ({"metadata": {"name": "x"}}, ["headless"]),  # no spec at all
    ],
)
def test_service_problems(svc, problems):
    found = proofs.service_problems(svc)
    assert len(found) == len(problems), found
    for want, text in zip(problems, found, strict=True):
        assert want in text


PODS = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("by_pod", "bad"),
    [
        ({"a": 600, "b": 600, "c": 600, "d": 600}, []),
        ({"a": 690, "b": 600, "c": 560, "d": 550}, []),  # 28.8/25/23.3/22.9 %
        ({"a": 120, "b": 120, "c": 80, "d": 80}, ["a", "b", "c", "d"]),  # 30/30/20/20 %
        ({"a": 800, "b": 534, "c": 533, "d": 533}, ["a"]),  # one takes a third
        ({"a": 800, "b": 800, "c": 800}, ["a", "b", "c", "d"]),  # d silent
    ],
)
def test_share_problems(by_pod, bad):
    found = proofs.share_problems(by_pod, PODS, 4.0)
    assert [text.split(" ", 1)[0] for text in found] == bad


@pytest.mark.parametrize("by_pod", [{}, {"a": 0, "b": 0}])
def test_share_problems_without_answers(by_pod):
    assert proofs.share_problems(by_pod, PODS, 4.0) == ["no answers to measure the spread with"]
    assert proofs.share_problems({"a": 1}, [], 4.0) == ["no answers to measure the spread with"]


@pytest.mark.parametrize(
    ("nodes", "by_pod", "problem"),
    [
        ({"a": "n1", "b": "n1"}, {"a": 5, "b": 5}, None),
        ({"a": "n1", "b": "n2"}, {"a": 5, "b": 5}, None),
        ({"a": "n1", "b": "n2"}, {"a": 5}, "node(s) n2"),
        ({"a": "n1", "b": "n2", "c": "n2"}, {"a": 5, "c": 1}, None),
        ({}, {"a": 5}, "no replica with a known node"),
    ],
)
def test_node_problems(nodes, by_pod, problem):
    found = proofs.node_problems(nodes, by_pod)
    assert (found == []) if problem is None else (problem in found[0])


@pytest.mark.parametrize(
    ("nodes", "schedulable", "ok"),
    [
        ({"a": "n1", "b": "n1"}, 1, True),  # single node: nothing to spread over
        ({"a": "n1", "b": "n2"}, 3, True),
        ({"a": "n1", "b": "n1"}, 2, False),
        ({}, 3, False),  # no replicas: nothing was spread
    ],
)
def test_spread_problem(nodes, schedulable, ok):
    assert (proofs.spread_problem(nodes, schedulable) is None) == ok


def test_load_balancing_request_count_keeps_false_alarms_below_one_in_ten_thousand():
    fair = 1.0 / lb.REPLICAS
    bound = lb.SHARE_BOUND_PP / 100.0
    per_pod = binomial_outside(lb.REQUESTS, fair, fair - bound, fair + bound)
    assert lb.REPLICAS * per_pod < lb.FALSE_ALARM_AT_MOST
    assert lb.REPLICAS * per_pod == pytest.approx(2.2e-5, rel=0.05)  # the docstring's figure
    # ... and fewer requests would not do (the docstring's 1600 and 2000).
    for fewer in (1600, 2000):
        assert lb.REPLICAS * binomial_outside(fewer, fair, fair - bound, fair + bound) > 1e-4


def test_binomial_outside_matches_a_small_exact_case():
    # n=2, p=1/2: P(X=0)+P(X=2) = 1/2 for the band [0.5, 0.5]
    assert binomial_outside(2, 0.5, 0.5, 0.5) == pytest.approx(0.5)
    assert binomial_outside(10, 0.3, 0.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="need n >= 1"):
        binomial_outside(0, 0.5, 0, 1)


# -- rolling update ------------------------------------------------------------------------------


def moment(pods, ready, t=1.0):
    return Moment(t=t, wall=t, pods=pods, terminating=0, ready=ready, cause="x")


@pytest.mark.parametrize(
    ("moments", "problems"),
    [
        ([moment(4, 4), moment(5, 4), moment(5, 5), moment(4, 4)], []),
        ([], ["observed no pod counts"]),
        ([moment(6, 4)], ["6 pods > 4 replicas + maxSurge 1"]),
        ([moment(5, 3)], ["3 ready < 4 replicas - maxUnavailable 0"]),
        ([moment(6, 3)], ["6 pods >", "3 ready <"]),
    ],
)
def test_bound_problems(moments, problems):
    found = proofs.bound_problems(moments, 4, 1, 0)
    assert len(found) == len(problems), found
    for want, text in zip(problems, found, strict=True):
        assert want in text


def view(name, image, *, ready=True, terminating=False):
    from suite.recorder import ContainerView

    return PodView(
        name=name,
        phase="Running",
        ready=ready,
        terminating=terminating,
        containers=(ContainerView(name="c", state="running", image=image),),
    )


def rollout(old_gone=2, new_ready=2):
    histories = {}
    for i in range(2):
        views = [view(f"old{i}", "v1")]
        if i < old_gone:
            views += [view(f"old{i}", "v1", ready=False, terminating=True), None]
        histories[f"old{i}"] = views
    for i in range(2):
        histories[f"new{i}"] = [view(f"new{i}", "v2", ready=False)] + (
            [view(f"new{i}", "v2")] if i < new_ready else []
        )
    return histories


@pytest.mark.parametrize(
    ("histories", "problems"),
    [
        (rollout(), []),
        ({}, ["0 pods of v2 become Ready", "0 pods of v1 go"]),
        (rollout(old_gone=1), ["1 pods of v1 go"]),
        (rollout(new_ready=0), ["0 pods of v2 become Ready"]),
    ],
)
def test_rollout_seen_problems(histories, problems):
    found = proofs.rollout_seen_problems(histories, "v1", "v2", 2)
    assert len(found) == len(problems), found
    for want, text in zip(problems, found, strict=True):
        assert want in text


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
    found = proofs.in_window([answer(t) for t in starts], start, end)
    assert [a.start for a in found] == expected


def ready_view(ready):
    return PodView(name="s", phase="Running", ready=ready, terminating=False)


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
    assert proofs.not_ready_interval(history, 1.0) == expected


def test_routing_problems_count_failures_until_the_pod_settled():
    settling = [*HEALTHY, answer(21.0, ok=False, pod="s"), answer(26.0, ok=False, pod="s")]
    found = proofs.routing_problems(settling, "s", "h", 10.0, 20.0, 2.0, failures_until=25.0)
    assert len(found) == 1
    assert "1 requests failed after the pod was first Ready again" in found[0]
    assert proofs.routing_problems(settling, "s", "h", 10.0, 20.0, 2.0) == []

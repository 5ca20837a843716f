"""Table-driven tests of load balancing's decision functions (its proofs.py), no cluster."""

import pytest

from suite.behaviours.load_balancing import proofs
from suite.behaviours.load_balancing import test_load_balancing as lb
from suite.stats import binomial_outside

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

"""The drain's decisions and its view, without a cluster: each has its no-data case."""

from __future__ import annotations

from typing import Any

from suite.behaviours.disruption_budget import proofs, view
from suite.behaviours.disruption_budget import test_disruption_budget as scenario
from suite.podcount import Moment
from suite.samples import PodView


def node(name: str, *, ready: str = "True", cordoned: bool = False, taint: str = "") -> Any:
    spec: dict[str, Any] = {"unschedulable": True} if cordoned else {}
    if taint:
        spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": taint}]
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def budget(generation: int = 1, **status: Any) -> Any:
    return {"metadata": {"name": "incver", "generation": generation}, "status": status}


def view_of(name: str, ready: bool, terminating: bool = False) -> PodView:
    return PodView(name, "Running", ready, terminating)


# -- nodes -----------------------------------------------------------------------------------------


def test_only_ready_uncordoned_untainted_nodes_can_take_the_pods():
    nodes = [
        node("worker2"),
        node("worker"),
        node("control-plane", taint="NoSchedule"),
        node("cordoned", cordoned=True),
        node("down", ready="Unknown"),
        node("prefer", taint="PreferNoSchedule"),
    ]
    assert proofs.schedulable_nodes(nodes) == ["prefer", "worker", "worker2"]
    assert proofs.schedulable_nodes([]) == []
    assert proofs.schedulable_nodes([{"metadata": {"name": "bare"}}]) == []


# -- the budget's status ---------------------------------------------------------------------------


def test_a_budget_without_status_is_not_computed_and_says_what_it_lacks():
    problem = proofs.budget_computed_problem(budget(), pods=4)
    assert problem is not None
    assert "not computed for generation 1" in problem
    assert "observedGeneration <unset>/1" in problem
    assert "disruptionsAllowed <unset>" in problem


def test_a_budget_counting_fewer_pods_is_not_ready_yet():
    partly = budget(observedGeneration=1, expectedPods=4, currentHealthy=3, disruptionsAllowed=0)
    assert "not all 4 pods" in (proofs.budget_computed_problem(partly, pods=4) or "")
    stale = budget(2, observedGeneration=1, expectedPods=4, currentHealthy=4)
    assert "generation 2" in (proofs.budget_computed_problem(stale, pods=4) or "")


def test_a_computed_budget_for_every_pod_has_no_problem():
    full = budget(
        observedGeneration=1,
        expectedPods=4,
        currentHealthy=4,
        desiredHealthy=3,
        disruptionsAllowed=1,
    )
    assert proofs.budget_computed_problem(full, pods=4) is None
    assert "disruptionsAllowed 1" in proofs.budget_status(full)


# -- refusals --------------------------------------------------------------------------------------


def test_a_refusal_is_certain_only_with_more_pods_than_allowed_and_no_replacement_ready_yet():
    assert proofs.refusal_certain(2, 1, first_pass_end=10.0, first_ready=None)
    assert proofs.refusal_certain(2, 1, first_pass_end=10.0, first_ready=12.0)
    assert not proofs.refusal_certain(2, 1, first_pass_end=10.0, first_ready=9.0)
    assert not proofs.refusal_certain(1, 1, first_pass_end=10.0, first_ready=None)
    assert not proofs.refusal_certain(0, 0, first_pass_end=10.0, first_ready=None)


def test_the_first_replacement_ready_ignores_old_pods_terminating_ones_and_earlier_states():
    history = {
        "old": [(1.0, 101.0, view_of("old", True))],
        "new": [
            (2.0, 102.0, view_of("new", False)),
            (3.0, 103.0, view_of("new", True)),
        ],
        "early": [(0.5, 99.0, view_of("early", True))],
        "leaving": [(4.0, 104.0, view_of("leaving", True, terminating=True)), (5.0, 105.0, None)],
    }
    assert proofs.first_ready_after(history, 100.0, ["old"]) == 103.0
    assert proofs.first_ready_after(history, 100.0, ["old", "new"]) is None
    assert proofs.first_ready_after({}, 0.0, []) is None


# -- the floor of Ready pods -----------------------------------------------------------------------


def test_ready_pods_below_min_available_are_named_and_no_moment_proves_nothing():
    moments = [Moment(10.0, 110.0, 4, 0, 4), Moment(11.0, 111.0, 3, 1, 3, "evicted")]
    assert proofs.ready_floor_problems(moments, 3) == []
    broken = proofs.ready_floor_problems([*moments, Moment(12.0, 112.0, 2, 2, 2, "x")], 3)
    assert broken == ["2 Ready at +2.0s (x), fewer than the budget's minAvailable 3"]
    assert proofs.ready_floor_problems([], 3) == [
        "no pod change was recorded during the drain: availability not proven"
    ]


def test_available_replicas_are_judged_from_the_sample_in_force_on():
    samples = [
        {"wall": 90.0, "available": 2},
        {"wall": 95.0, "available": 4},
        {"wall": 101.0, "available": 3},
        {"wall": 102.0, "deleted": True},
        {"wall": 150.0, "available": 1},
    ]
    assert proofs.available_floor_problems(samples, 3, since=100.0, until=120.0) == []
    late = proofs.available_floor_problems(samples[:2], 5, since=100.0, until=120.0)
    assert late == ["availableReplicas 4 at +0.0s, fewer than minAvailable 5"]
    assert proofs.available_floor_problems([], 3, since=0.0, until=1.0) == [
        "no Deployment status was recorded during the drain: availability not proven"
    ]


# -- the view --------------------------------------------------------------------------------------


def test_the_headline_tells_the_drain_or_nothing():
    assert view.headline({}) is None
    figures = {
        "evictions_tried": 3,
        "evictions_refused": 1,
        "drain_s": 6.85,
        "min_ready_seen": 3,
        "min_available": 3,
        "requests": 355,
        "failed": 0,
    }
    text = view.headline(figures) or ""
    assert "1 of 3 evictions refused" in text
    assert "never fewer than 3 Ready (minAvailable 3)" in text
    assert "0 of 355 requests failed" in text


def test_no_chart_without_traffic():
    assert view.chart({}, [], 0.0, "x") is None
    assert view.chart({"probes": [{}], "recording": None}, [], 0.0, "x") is None


def test_the_scenario_numbers_leave_the_budget_one_pod_to_let_go():
    assert scenario.REPLICAS - scenario.MIN_AVAILABLE == 1
    assert scenario.BUDGET["spec"]["minAvailable"] == scenario.MIN_AVAILABLE
    assert scenario.BUDGET_EXPECTED["spec"]["minAvailable"] == scenario.MIN_AVAILABLE

"""Table-driven tests of the scenarios' decision functions (suite.proofs), no cluster.

Every function gets its empty-window / no-data case: a claim is never proven by nothing.
"""

import copy
import re

import pytest

from suite import admitted, manifests, proofs
from suite.recorder import ContainerView, Moment, PodView
from suite.scenarios import test_autoscaling as autoscaling
from suite.scenarios import test_load_balancing as lb
from suite.scenarios import test_self_healing as sh
from suite.stats import binomial_outside
from suite.traffic import Answer
from suite.waiting import Done, Pending


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

SERVED = [answer(10.0 + 0.1 * i, pod="h") for i in range(100)]  # 10.0 .. 19.9


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


# -- autoscaling: decisions against the formula and the stored behaviour -------------------------

CPUHOG = proofs.hpa_rules(autoscaling.EXPECTED_HPA)


def rules(**behavior):
    """cpuhog's stored HPA with one direction's behaviour replaced."""
    spec = dict(autoscaling.EXPECTED_HPA["spec"])
    spec["behavior"] = {**spec["behavior"], **behavior}
    return proofs.hpa_rules({"spec": spec})


def run(*steps):
    """HPA samples from (t, current, desired, cpu) steps; a step with desired apart from current
    is a rescale (a new lastScaleTime, kept by the writes after it)."""
    samples, scaled = [], None
    for t, current, desired, cpu in steps:
        if desired != current:
            scaled = f"scaled at {t}"
        samples.append({**hpa(t, desired, cpu, current), "last_scale_time": scaled})
    return samples


#: The local cluster's usual run: readings every 10 s, sync 2 s; 1 -> 4 on the first reading
#: under load, 4 -> 1 once the window has passed since the last reading above target.
HEALTHY = [
    (1, 1, 1, 2),
    (11, 1, 1, 3),
    (21, 1, 4, 250),
    (23, 4, 4, 250),
    (31, 4, 4, 130),
    (41, 4, 4, 3),
    (51, 4, 1, 2),
    (53, 1, 1, 2),
]


def test_the_stored_hpa_is_what_the_scenario_and_the_manifest_state():
    objects = {obj["kind"]: obj for obj in manifests.load_app(autoscaling.APP)}
    hpa_manifest = objects["HorizontalPodAutoscaler"]
    template = objects["Deployment"]["spec"]["template"]
    assert admitted.problems(hpa_manifest, autoscaling.EXPECTED_HPA, kind="hpa") == []
    assert admitted.problems(template, autoscaling.EXPECTED_POD, kind="template") == []
    assert (CPUHOG.minimum, CPUHOG.maximum) == (autoscaling.MIN_REPLICAS, autoscaling.MAX_REPLICAS)
    assert CPUHOG.target == autoscaling.TARGET_CPU_PERCENT
    assert CPUHOG.down.window_s == autoscaling.SCALE_DOWN_WINDOW_S
    assert CPUHOG.up.window_s == 0
    assert CPUHOG.up.select == "Max"
    assert CPUHOG.up.tolerance == proofs.HPA_TOLERANCE


def test_hpa_rules_default_what_the_stored_behaviour_leaves_unset():
    spec = {
        "maxReplicas": 5,
        "metrics": autoscaling.EXPECTED_HPA["spec"]["metrics"],
        "behavior": {"scaleDown": {"tolerance": "50m"}},
    }
    found = proofs.hpa_rules({"spec": spec})
    assert found.minimum == 1
    assert found.up.window_s == 0
    assert [(p.kind, p.value, p.period_s) for p in found.up.policies] == [
        ("Pods", 4, 15.0),
        ("Percent", 100, 15.0),
    ]
    assert found.down.window_s == proofs.HPA_DOWNSCALE_WINDOW_S
    assert found.down.tolerance == pytest.approx(0.05)
    assert found.up.tolerance == proofs.HPA_TOLERANCE
    with pytest.raises(ValueError, match="no CPU"):
        proofs.hpa_rules({"metadata": {"name": "x"}, "spec": {"maxReplicas": 2}})


@pytest.mark.parametrize(
    ("cpu", "current", "expected"),
    [
        (55, 1, (1, 1)),  # ratio 1.1: on the tolerance's edge, inside as upstream computes it
        (45, 3, (3, 3)),  # 0.9: inside too
        (56, 1, (2, 2)),  # one pod: exactly ceil(ratio)
        (250, 1, (5, 5)),
        (2, 1, (1, 1)),
        (0, 1, (0, 0)),
        (130, 4, (3, 11)),  # up to ceil(2.6 x 4); down to ceil(2.6) with three pods unready
        (100, 2, (2, 4)),
        (20, 4, (1, 4)),  # below: one counted pod up to every pod at 100 %
    ],
)
def test_recommendation_range(cpu, current, expected):
    assert proofs.recommendation_range(cpu, current, 50, 0.1, 0.1) == expected


def test_rescale_indexes_are_the_writes_with_a_new_scale_time():
    samples = run(*HEALTHY)
    # The same decision, rewritten with a new reading (same lastScaleTime).
    samples.insert(3, {**samples[2], "t": 22, "cpu_utilization": 240})
    # A failed sync before the first reading keeps desired at 0 (seen on the local cluster).
    samples.insert(0, {**hpa(0.5, 0, None, 1), "conditions": {"ScalingActive": "False/x"}})
    assert proofs.rescale_indexes(samples) == [3, 8]
    assert proofs.rescale_indexes([{"t": 1, "desired_replicas": 2}]) == []  # no status


def check(steps, rule=CPUHOG, sync_s=2.0):
    return proofs.rescale_problems(run(*steps), rule, sync_s=sync_s, slack_s=2.0)


def test_a_healthy_run_passes_and_each_decision_shows_its_range():
    decisions, problems = check(HEALTHY)
    assert problems == []
    assert [(d.current, d.desired, d.low, d.high) for d in decisions] == [
        (1, 4, 4, 4),
        (4, 1, 1, 4),
    ]


@pytest.mark.parametrize(
    ("steps", "rule", "words"),
    [
        # More than the formula: 120 % of 50 % with one pod is ceil(2.4) = 3.
        ([(1, 1, 1, 2), (21, 1, 4, 120)], CPUHOG, "rescaled 1 -> 4 at t=21.0s, outside the 3..3"),
        # Less than the formula and the policies allow (throttled): 1 -> 2 at 250 %.
        ([(1, 1, 1, 2), (21, 1, 2, 250)], CPUHOG, "outside the 4..4"),
        # Within tolerance (54 % of 50 %): no change at all.
        ([(1, 1, 1, 2), (21, 1, 2, 54)], CPUHOG, "outside the 1..1"),
        # A stored policy of one pod a minute.
        (
            [(1, 1, 1, 2), (21, 1, 4, 250)],
            rules(
                scaleUp={
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            ),
            "outside the 2..2",
        ),
        # Doubling per 15 s only: 2 -> 4 four seconds after 1 -> 2 is too fast.
        (
            [(1, 1, 1, 2), (21, 1, 2, 250), (25, 2, 4, 250)],
            rules(
                scaleUp={
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                }
            ),
            "rescaled 2 -> 4 at t=25.0s, outside the 2..2",
        ),
        # Scaled in 4 s after the last reading above target stopped holding (window 10 s).
        (
            [(1, 1, 1, 2), (21, 1, 4, 250), (31, 4, 4, 130), (41, 4, 4, 3), (45, 4, 1, 2)],
            CPUHOG,
            "rescaled 4 -> 1 at t=45.0s, outside the 3..4",
        ),
        # A reading within tolerance inside the window holds the count.
        (
            [(1, 1, 1, 2), (21, 1, 4, 250), (31, 4, 4, 48), (41, 4, 4, 3), (45, 4, 1, 2)],
            CPUHOG,
            "outside the 4..4",
        ),
        # Scale-down disabled.
        (
            [(1, 1, 1, 2), (21, 1, 4, 250), (41, 4, 4, 3), (61, 4, 1, 2)],
            rules(scaleDown={"selectPolicy": "Disabled"}),
            "outside the 4..4",
        ),
        # Scale-down limited to one pod per 15 s.
        (
            [(1, 1, 1, 2), (21, 1, 4, 250), (41, 4, 4, 3), (61, 4, 1, 2)],
            rules(
                scaleDown={
                    "stabilizationWindowSeconds": 10,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}],
                }
            ),
            "outside the 3..4",
        ),
        # A rescale without a reading in its status.
        ([(1, 1, 1, 2), (21, 1, 3, None)], CPUHOG, "outside the 1..1"),
    ],
)
def test_a_decision_outside_its_range_names_the_hpa_controller(steps, rule, words):
    _, problems = check(steps, rule)
    assert len(problems) == 1, problems
    assert words in problems[0]
    assert problems[0].startswith(proofs.HPA_CONTROLLER)


def test_the_scale_down_window_is_judged_with_the_sync_period():
    # With a 15 s sync the last use of the 130 % reading may be 15 s before the next write: at
    # t=45 it is no longer surely inside the 10 s window.
    steps = [(1, 1, 1, 2), (21, 1, 4, 250), (31, 4, 4, 130), (41, 4, 4, 3), (45, 4, 1, 2)]
    assert check(steps, sync_s=15.0)[1] == []


def test_a_count_outside_min_max_goes_to_the_nearer_bound():
    decisions, problems = check([(1, 6, 4, None), (3, 0, 1, None)])
    assert problems == []
    assert [(d.low, d.high) for d in decisions] == [(4, 4)]
    assert check([(1, 6, 3, None)])[1]


def test_replica_bound_problems():
    deployments = [{"t": 1, "spec_replicas": 1, "replicas": 1}, {"t": 5, "spec_replicas": 4}]
    assert proofs.replica_bound_problems(run(*HEALTHY), deployments, [(1, 1), (9, 4)], CPUHOG) == []
    found = proofs.replica_bound_problems(
        run((1, 1, 5, 300)),
        [{"t": 2, "spec_replicas": 5, "replicas": 5}, {"t": 3, "spec_replicas": 0}],
        [(4, 5)],
        CPUHOG,
    )
    assert len(found) == 4, found
    assert found[0].startswith(proofs.HPA_CONTROLLER)
    assert "5 pods not terminating at t=4.0s" in found[3]


def test_before_load_problems():
    assert proofs.before_load_problems(run(*HEALTHY), 15.0, CPUHOG) == []
    found = proofs.before_load_problems(run((1, 1, 1, 60), (3, 1, 2, 60)), 15.0, CPUHOG)
    assert len(found) == 3, found
    assert "the resource metrics API (metrics-server) reported 60% CPU" in found[0]
    assert found[2].startswith(proofs.HPA_CONTROLLER + " asked for 2 replicas")


@pytest.mark.parametrize(
    ("sample", "words"),
    [
        (None, "is not there"),
        (
            {"current_replicas": 0, "desired_replicas": 0, "conditions": {}},
            "has no status at all (no conditions, no lastScaleTime, no observedGeneration): "
            "the HorizontalPodAutoscaler controller (kube-controller-manager) has never synced it",
        ),
        (
            {
                "current_replicas": 1,
                "conditions": {"ScalingActive": "False/FailedGetResourceMetric"},
            },
            "the resource metrics API (metrics-server) gave it no reading",
        ),
        (
            {"current_replicas": 1, "conditions": {"AbleToScale": "False/FailedUpdateScale"}},
            "cannot change the Deployment's scale",
        ),
    ],
)
def test_hpa_blame_names_a_part_only_on_evidence(sample, words):
    assert words in proofs.hpa_blame(sample, "cpuhog")


def test_hpa_blame_of_a_working_hpa_names_nothing():
    sample = {"current_replicas": 1, "conditions": {"ScalingActive": "True/ValidMetricFound"}}
    assert proofs.hpa_blame(sample, "cpuhog") == ""


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
    settling = [*SERVED, answer(21.0, ok=False, pod="s"), answer(26.0, ok=False, pod="s")]
    found = proofs.routing_problems(settling, "s", "h", 10.0, 20.0, 2.0, failures_until=25.0)
    assert len(found) == 1
    assert "1 requests failed after the pod was first Ready again" in found[0]
    assert proofs.routing_problems(settling, "s", "h", 10.0, 20.0, 2.0) == []


# -- self-healing: what was admitted, the endpoints, and the part each failure names --------------

PARTS = re.compile(r"kube-proxy|service proxy|kube-controller-manager|kubelet|scheduler")


def healthcheck_template_pod():
    """The pod the Deployment of manifests/healthcheck asks for, as the API server would default
    it (readinessProbe.successThreshold 1)."""
    deployment = next(o for o in manifests.load_app("healthcheck") if o["kind"] == "Deployment")
    pod = {
        "metadata": {"name": "template"},
        "spec": copy.deepcopy(deployment["spec"]["template"]["spec"]),
    }
    for container in pod["spec"]["containers"]:
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            container.get(kind, {}).setdefault("successThreshold", 1)
    return pod


def test_the_healthcheck_manifest_carries_what_the_self_healing_scenario_states():
    assert sh.admitted_problems([healthcheck_template_pod()]) == []


def test_self_healing_deadlines_come_from_the_stated_probes():
    assert sh.NOT_READY_DEADLINE_S == 1 * 1 + 1 + sh.STATUS_MARGIN_S
    assert sh.INFECTED_RESTART_DEADLINE_S == 1 * 8 + 1 + sh.RESTART_MARGIN_S
    assert sh.INFECTED_RESTART_EARLIEST_S == 7
    assert sh.READY_AGAIN_DEADLINE_S == 1 * 30 + 1 + sh.READY_MARGIN_S
    assert sh.REPLACEMENT_DEADLINE_S == sh.POD_START_S + sh.READY_AGAIN_DEADLINE_S
    assert sh.ROUTING_BOUND_S == sh.SLICE_BOUND_S + sh.PROXY_BOUND_S
    assert sh.Timers.of_pod(healthcheck_template_pod()) == sh.Timers(
        {**sh.LIVENESS, "successThreshold": 1, "httpGet": {"path": "/healthz", "port": "http"}},
        {**sh.READINESS, "httpGet": {"path": "/readyz", "port": "http"}},
        {**sh.STARTUP, "successThreshold": 1, "httpGet": {"path": "/healthz", "port": "http"}},
    )


def test_an_admitted_liveness_probe_other_than_submitted_fails_the_read_back_in_one_line():
    pod = healthcheck_template_pod()
    pod["metadata"]["name"] = "healthcheck-1"
    liveness = pod["spec"]["containers"][0]["livenessProbe"]
    liveness.update(periodSeconds=3, failureThreshold=20)
    found = sh.admitted_problems([pod])
    assert found == [
        "pod/healthcheck-1: spec.containers[healthcheck].livenessProbe.periodSeconds is 3, "
        "expected 1",
        "pod/healthcheck-1: spec.containers[healthcheck].livenessProbe.failureThreshold is 20, "
        "expected 8",
    ]
    line = admitted.rewritten(found, "the healthcheck pods")
    assert re.search(r"admission webhook or policy rewrote it.*livenessProbe", line)
    assert not PARTS.search(line)
    # Were it admitted, the deadlines would follow it: 3 x 20 + 1 + the margin.
    assert sh.Timers.of_pod(pod).restart_deadline_s == 60 + 1 + sh.RESTART_MARGIN_S
    assert sh.Timers.of_pod(pod).restart_earliest_s == 57


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda spec: spec.update(terminationGracePeriodSeconds=300), "terminationGracePeriod"),
        (lambda spec: spec.update(readinessGates=[{"conditionType": "x"}]), "readinessGates"),
        (
            lambda spec: spec["containers"][0]["readinessProbe"].update(failureThreshold=5),
            "readiness",
        ),
        (lambda spec: spec["containers"][0]["startupProbe"].update(periodSeconds=10), "startup"),
        (lambda spec: spec["containers"][0]["livenessProbe"]["httpGet"].update(path="/"), "path"),
        (lambda spec: spec["containers"][0].pop("livenessProbe"), "livenessProbe"),
    ],
)
def test_the_self_healing_read_back_names_each_field_it_depends_on(change, problem):
    pod = healthcheck_template_pod()
    change(pod["spec"])
    found = sh.admitted_problems([pod])
    assert found
    assert problem in found[0]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"type": "ClusterIP", "clusterIP": "10.96.0.9"}, None),
        ({"type": "NodePort", "clusterIP": "10.96.0.9"}, "spec.type is 'NodePort'"),
        ({"clusterIP": "10.96.0.9", "sessionAffinity": "ClientIP"}, "sessionAffinity"),
        ({"clusterIP": "10.96.0.9", "internalTrafficPolicy": "Local"}, "internalTrafficPolicy"),
        ({"clusterIP": "None"}, "expected a virtual IP"),
    ],
)
def test_the_self_healing_read_back_of_the_service(spec, problem):
    service = {
        "metadata": {"name": "healthcheck"},
        "spec": {
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            **spec,
        },
    }
    found = sh.admitted_problems([healthcheck_template_pod()], service)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1
        assert problem in found[0]


def slice_sample(wall, **ready):
    endpoints = [{"pod": pod, "ready": is_ready} for pod, is_ready in ready.items()]
    return {
        "t": wall - 100,
        "wall": wall,
        "name": "hc-x",
        "service": "healthcheck",
        "endpoints": endpoints,
    }


def test_endpoint_timeline_follows_the_services_slices():
    samples = [
        slice_sample(100.0, s=True, h=True),
        {"t": 0.5, "wall": 100.5, "name": "other-x", "service": "other", "endpoints": []},
        slice_sample(102.0, s=False, h=True),
        {"t": 3.0, "wall": 103.0, "name": "hc-x", "deleted": True},
        {"t": 3.5, "wall": 103.5, "name": "never-seen", "deleted": True},
        slice_sample(110.0, h=True, s=True),
    ]
    assert proofs.endpoint_timeline(samples, "healthcheck") == [
        (100.0, {"s": True, "h": True}),
        (102.0, {"s": False, "h": True}),
        (103.0, {}),
        (110.0, {"h": True, "s": True}),
    ]


@pytest.mark.parametrize(
    ("timeline", "expected"),
    [
        ([], (None, None)),
        ([(100.0, {"s": True})], (None, None)),
        ([(100.0, {"s": True}), (102.0, {"s": False}), (110.0, {"s": True})], (102.0, 110.0)),
        ([(100.0, {"s": True}), (102.0, {}), (110.0, {"s": True})], (102.0, 110.0)),  # dropped
        ([(99.0, {"s": False}), (110.0, {"s": True})], (101.0, 110.0)),  # out before `since`
        ([(100.0, {"s": True}), (102.0, {"s": False})], (102.0, None)),  # never back
    ],
)
def test_listed_interval(timeline, expected):
    assert proofs.listed_interval(timeline, "s", 101.0) == expected


def test_answer_gaps_measure_each_pods_time_out_of_service():
    answers = [
        *[answer(10.0 + 0.5 * i, pod="h") for i in range(21)],  # 10.0 .. 20.0
        answer(10.0, pod="s"),
        answer(11.0, pod="s"),
        answer(12.0, pod="s", ok=False),  # infected: a 503 is no answer
        answer(19.0, pod="s"),
    ]
    gaps = proofs.answer_gaps(answers, ["s", "h", "x"], 10.0, 20.0)
    assert gaps["s"] == pytest.approx((8.0, 11.0))
    assert gaps["h"][0] == pytest.approx(0.5)
    assert gaps["x"] == (10.0, 10.0)  # never answered: the whole window
    assert proofs.first_answer_from(answers, "s", 11.5).start == 19.0
    assert proofs.first_answer_from(answers, "s", 19.5) is None


@pytest.mark.parametrize(
    ("back", "problem"),
    [
        (answer(21.0, pod="s"), None),
        (answer(23.4, pod="s"), None),  # within bound + skew
        (answer(24.0, pod="s"), "answered through the Service only 4.0s later"),
        (None, "no request through the Service reached it in the 9.0s"),
    ],
)
def test_answering_again_problem(back, problem):
    found = proofs.answering_again_problem(
        back, "s", ready=20.0, last_start=29.0, bound_s=3.0, skew_s=0.5
    )
    assert (found is None) == (problem is None)
    if problem:
        assert problem in found


def routing_blame(answers, listed_out, *, not_ready=10.0, watched=True):
    return proofs.routing_blame(
        answers,
        "s",
        not_ready,
        listed_out,
        watched=watched,
        start=13.5,
        end=20.0,
        slice_bound_s=1.0,
        proxy_bound_s=2.0,
        skew_s=0.5,
    )


@pytest.mark.parametrize(
    ("answers", "listed_out", "watched", "names"),
    [
        # the slice took the pod out at once, requests still reached it 4 s later: kube-proxy
        ([*SERVED, answer(14.5, ok=False, pod="s")], 10.2, True, ["kube-proxy"]),
        # ... or went unanswered (the pod's container restarting): the data path
        ([*SERVED, answer(14.5, ok=False, pod=None, error="refused")], 10.2, True, ["kube-proxy"]),
        # the slice never took it out: the EndpointSlice controller
        ([*SERVED, answer(14.5, ok=False, pod="s")], None, True, ["kube-controller-manager"]),
        # the slice took it out late, and requests followed the slice: the controller only
        ([*SERVED, answer(14.5, ok=False, pod="s")], 13.0, True, ["kube-controller-manager"]),
        # both late
        (
            [*SERVED, answer(19.0, ok=False, pod="s")],
            13.0,
            True,
            ["kube-controller-manager", "kube-proxy"],
        ),
        # no evidence: no part named
        ([*SERVED, answer(14.5, ok=False, pod="s")], 10.2, False, []),
        # nothing to blame
        (SERVED, 10.2, True, []),
    ],
)
def test_routing_blame_names_a_part_only_on_evidence(answers, listed_out, watched, names):
    text = " ".join(routing_blame(answers, listed_out, watched=watched))
    for part in ("kube-proxy", "kube-controller-manager"):
        assert (part in text) == (part in names), text
    if not names:
        assert not PARTS.search(text), text


def test_a_breach_of_the_routing_bound_always_names_a_part():
    # ROUTING_BOUND_S = SLICE_BOUND_S + PROXY_BOUND_S: a request reaching the pod after the
    # routing bound (and the skew) is beyond one of the two, whenever the slice was watched.
    for listed_out in (10.0, 10.5, 11.0, 11.5, 13.0):
        late = answer(10.0 + sh.ROUTING_BOUND_S + 0.5 + 0.01, ok=False, pod="s")
        blame = routing_blame([*SERVED, late], listed_out)
        assert PARTS.search(" ".join(blame)), (listed_out, blame)


@pytest.mark.parametrize(
    ("listed_back", "watched", "part"),
    [
        (20.1, True, "kube-proxy"),
        (25.0, True, "kube-controller-manager"),
        (None, True, "kube-controller-manager"),
        (20.1, False, None),
    ],
)
def test_back_in_service_blame(listed_back, watched, part):
    text = proofs.back_in_service_blame("s", 20.0, listed_back, watched=watched, slice_bound_s=1.0)
    for name in ("kube-proxy", "kube-controller-manager"):
        assert (name in text) == (name == part), text
    if part is None:
        assert not PARTS.search(text), text


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ([], "reported no failed liveness probe"),
        (LIVENESS_EVENTS[:1], "did not kill the container"),
        (LIVENESS_EVENTS, "no new container was reported started"),
    ],
)
def test_restart_blame_names_the_kubelet_from_its_events(events, words):
    text = proofs.restart_blame(events, "s")
    assert words in text
    assert text.startswith("the kubelet")


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ([], "reported no failed readiness probe"),
        ([event("pod/s", "Unhealthy", "Readiness probe failed: 503")], "did not turn False"),
    ],
)
def test_not_ready_blame_names_the_kubelet_from_its_events(events, words):
    text = proofs.not_ready_blame(events, "s")
    assert words in text
    assert text.startswith("the kubelet")


def container_view(state, restarts, **kwargs):
    return ContainerView(name="healthcheck", state=state, restart_count=restarts, **kwargs)


@pytest.mark.parametrize(
    ("view", "words"),
    [
        (None, "was not seen"),
        (PodView("p", "Running", False, False), "was not seen"),
        (
            PodView("p", "Running", True, False, containers=(container_view("running", 0),)),
            "still reported running",
        ),
        (
            PodView(
                "p",
                "Running",
                False,
                False,
                containers=(container_view("terminated", 0, reason="Error", exit_code=1),),
            ),
            "the kubelet reports its container healthcheck terminated (Error) with exit code 1",
        ),
    ],
)
def test_exit_restart_blame(view, words):
    assert words in proofs.exit_restart_blame(view, "healthcheck", 0)


def pod(name, *, ready=False, node="", phase="Pending"):
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@pytest.mark.parametrize(
    ("pods", "words"),
    [
        ([pod("b", ready=True)], "the ReplicaSet controller (kube-controller-manager)"),
        ([pod("b", ready=True), pod("c")], "the scheduler has not placed it"),
        ([pod("b", ready=True), pod("c", node="n1", phase="Running")], "the kubelet there"),
    ],
)
def test_the_replacement_wait_names_the_part_that_has_not_acted(pods, words):
    verdict = sh._replacement_verdict("a", {"b"})(pods)
    assert isinstance(verdict, Pending)
    assert words in verdict.seen


def test_the_replacement_wait_is_done_with_the_new_ready_pod():
    ready = [pod("b", ready=True, node="n1"), pod("c", ready=True, node="n1", phase="Running")]
    verdict = sh._replacement_verdict("a", {"b"})(ready)
    assert isinstance(verdict, Done)
    assert verdict.value["metadata"]["name"] == "c"

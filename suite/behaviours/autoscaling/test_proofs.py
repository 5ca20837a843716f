"""Table-driven tests of autoscaling's decision functions (its proofs.py), no cluster.

Every function gets its empty-window / no-data case: a claim is never proven by nothing.
"""

import pytest

from suite import admitted, manifests
from suite.behaviours.autoscaling import proofs
from suite.behaviours.autoscaling import test_autoscaling as autoscaling
from suite.tests.fakes import recorded_event as event

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

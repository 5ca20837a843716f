"""The failed rollout's decisions, without a cluster: each has its no-data case."""

from __future__ import annotations

from typing import Any

from suite.behaviours.failed_rollout import proofs, view
from suite.behaviours.failed_rollout import test_failed_rollout as scenario
from suite.traffic import Answer


def deployment(wall: float, progressing: str = "", **fields: Any) -> dict[str, Any]:
    sample: dict[str, Any] = {
        "t": wall - 1000.0,
        "wall": wall,
        "name": "incver",
        "observed_generation": 2,
        "replicas": 3,
        "updated": 3,
        "ready": 3,
        "available": 3,
        "conditions": {"Progressing": progressing} if progressing else {},
    }
    sample.update(fields)
    return sample


def answer(seq: int, ok: bool = True, pod: str = "incver-a", error: str | None = None) -> Answer:
    return Answer(seq, 1000.0 + seq, 1000.1 + seq, 200 if ok else None, ok, pod, "v1", error)


# -- Progressing and its deadline ----------------------------------------------------------------


def test_progressing_reads_status_and_reason_or_nothing():
    assert proofs.progressing(deployment(1.0, proofs.EXCEEDED)) == proofs.EXCEEDED
    assert proofs.progressing({}) == ""


def test_the_first_exceeded_sample_of_the_rollouts_generation_counts():
    samples = [
        deployment(1000.0, proofs.EXCEEDED, observed_generation=1),  # an older generation
        deployment(1001.0, "True/ReplicaSetUpdated"),
        {"t": 0.0, "wall": 1001.5, "name": "incver", "deleted": True},
        deployment(1016.0, proofs.EXCEEDED),
        deployment(1017.0, proofs.EXCEEDED),
    ]
    assert (
        proofs.first_with_progressing(samples, proofs.EXCEEDED, since=1000.0, generation=2)
        == 1016.0
    )
    assert (
        proofs.first_with_progressing(samples, proofs.EXCEEDED, since=1020.0, generation=2) is None
    )
    assert proofs.first_with_progressing([], proofs.EXCEEDED, since=0.0, generation=1) is None


def test_the_deadline_holds_from_both_sides():
    ok = proofs.deadline_problem(1000.0, 1015.4, deadline_s=15, margin_s=5, last_seen="")
    assert ok is None
    # lastUpdateTime is stored in whole seconds: up to 1 s early is the truncation
    assert proofs.deadline_problem(1000.0, 1014.2, deadline_s=15, margin_s=5, last_seen="") is None
    early = proofs.deadline_problem(1000.0, 1010.0, deadline_s=15, margin_s=5, last_seen="")
    assert early is not None
    assert "before its progressDeadlineSeconds" in early
    late = proofs.deadline_problem(1000.0, 1021.0, deadline_s=15, margin_s=5, last_seen="")
    assert late is not None
    assert "deployment controller" in late
    assert "later than" in late


def test_no_condition_at_all_names_the_deployment_controller():
    problem = proofs.deadline_problem(
        1000.0, None, deadline_s=15, margin_s=5, last_seen="True/ReplicaSetUpdated"
    )
    assert problem is not None
    assert "deployment controller" in problem
    assert "True/ReplicaSetUpdated" in problem
    nothing = proofs.deadline_problem(1000.0, None, deadline_s=15, margin_s=5, last_seen="")
    assert nothing is not None
    assert "<none>" in nothing


# -- the broken pods and availability ------------------------------------------------------------


def test_pods_of_an_owner_from_the_recorders_entries():
    entries = [
        {"name": "incver-b-1", "state": {"owner": "incver-b"}},
        {"name": "incver-b-1", "state": None},  # deleted
        {"name": "incver-a-1", "state": {"owner": "incver-a"}},
        {"name": "incver-b-2", "state": {"owner": "incver-b"}},
    ]
    assert proofs.pods_of(entries, "incver-b") == ["incver-b-1", "incver-b-2"]
    assert proofs.pods_of(entries, "") == []
    assert proofs.pods_of([], "incver-b") == []


def test_broken_pods_within_maxsurge_plus_maxunavailable():
    samples = [{"name": "incver-b", "spec_replicas": 1}, {"name": "incver-a", "spec_replicas": 3}]
    assert (
        proofs.broken_pod_problems(
            ["incver-b-1"], samples, "incver-b", max_surge=1, max_unavailable=0
        )
        == []
    )
    too_many = proofs.broken_pod_problems(
        ["incver-b-1", "incver-b-2"],
        [{"name": "incver-b", "spec_replicas": 2}],
        "incver-b",
        max_surge=1,
        max_unavailable=0,
    )
    assert len(too_many) == 2
    assert "deployment controller" in too_many[1]


def test_no_broken_pod_means_nothing_was_rolled():
    (problem,) = proofs.broken_pod_problems([], [], "incver-b", max_surge=1, max_unavailable=0)
    assert "never rolled" in problem


def test_availability_from_the_sample_in_force_through_the_window():
    samples = [
        deployment(999.0, available=3),
        deployment(1005.0, available=3),
        deployment(1010.0, available=2),
        deployment(1030.0, available=1),  # after the window
    ]
    problems = proofs.availability_problems(
        samples, replicas=3, max_unavailable=0, since=1000.0, until=1020.0
    )
    assert len(problems) == 1
    assert "availableReplicas 2 at +10.0s" in problems[0]
    assert "deployment controller" in problems[0]
    fine = proofs.availability_problems(
        samples, replicas=3, max_unavailable=1, since=1000.0, until=1020.0
    )
    assert fine == []
    # the sample in force when the window opened counts
    assert proofs.availability_problems(
        [deployment(990.0, available=2)], replicas=3, max_unavailable=0, since=1000.0, until=1020.0
    )


def test_no_deployment_sample_proves_no_availability():
    (problem,) = proofs.availability_problems(
        [], replicas=3, max_unavailable=0, since=0.0, until=1.0
    )
    assert "not proven" in problem


# -- the undo ------------------------------------------------------------------------------------


def replicaset(name: str, revision: str | None, image: str = "img:v1") -> dict[str, Any]:
    annotations = {proofs.REVISION: revision} if revision is not None else {}
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": "incver", proofs.TEMPLATE_HASH: "abc"}
                },
                "spec": {"containers": [{"name": "incver", "image": image}]},
            }
        },
    }


def test_undo_goes_to_the_highest_revision_below_the_current():
    sets = [
        replicaset("a", "1"),
        replicaset("b", "3"),
        replicaset("c", "4", "img:v2"),
        replicaset("d", None),
        replicaset("e", "x"),
    ]
    previous = proofs.previous_replicaset(sets, 4)
    assert previous is not None
    assert previous["metadata"]["name"] == "b"
    assert proofs.previous_replicaset(sets, 1) is None
    assert proofs.previous_replicaset([], 2) is None
    assert proofs.revision_of({}) == 0


def test_the_undo_template_drops_only_the_pod_template_hash():
    original = replicaset("a", "1")
    template = proofs.undo_template(original)
    assert template["metadata"]["labels"] == {"app.kubernetes.io/name": "incver"}
    assert template["spec"]["containers"][0]["image"] == "img:v1"
    # the ReplicaSet itself is left as it was
    assert proofs.TEMPLATE_HASH in original["spec"]["template"]["metadata"]["labels"]
    bare = proofs.undo_template({"spec": {"template": {"spec": {}}}})
    assert bare == {"spec": {}}


def test_restored_needs_every_replica_and_the_broken_replicaset_at_zero():
    broken_gone = {"name": "incver-b", "spec_replicas": 0, "replicas": 0}
    whole = deployment(1.0, observed_generation=3)
    assert proofs.restored_problem(whole, broken_gone, replicas=3, generation=3) is None
    assert proofs.restored_problem(whole, None, replicas=3, generation=3) is None
    assert (
        proofs.restored_problem(
            whole, {"name": "incver-b", "deleted": True}, replicas=3, generation=3
        )
        is None
    )
    waiting = proofs.restored_problem(
        deployment(1.0, observed_generation=2, updated=1),
        {"name": "incver-b", "spec_replicas": 0, "replicas": 1},
        replicas=3,
        generation=3,
    )
    assert waiting is not None
    assert "generation 3 not observed" in waiting
    assert "updated 1/3" in waiting
    assert "replicaset/incver-b at 0 asked, 1 pods" in waiting
    assert proofs.restored_problem(None, None, replicas=3, generation=1) is not None


# -- the answers ---------------------------------------------------------------------------------


def test_failed_requests_bound_zero():
    assert proofs.failed_problem([answer(1), answer(2)]) is None
    problem = proofs.failed_problem(
        [answer(1), answer(2, ok=False, error="timeout"), answer(3, ok=False, error="timeout")]
    )
    assert problem == "2 of 3 requests failed (timeout x2), expected none"


def test_no_requests_prove_nothing():
    problem = proofs.failed_problem([])
    assert problem is not None
    assert "no request" in problem


def test_answers_from_the_broken_pods():
    answers = [answer(1), answer(2, pod="incver-b-1"), answer(3, ok=False, pod="incver-b-1")]
    assert [a.seq for a in proofs.answered_by(answers, ["incver-b-1"])] == [2]
    assert proofs.answered_by(answers, []) == []


# -- the scenario's numbers and read-back --------------------------------------------------------


def test_the_stated_strategy_bounds_the_broken_pods_by_maxsurge():
    # With maxUnavailable 0 the broken ReplicaSet may make maxSurge pods and no more.
    assert scenario.MAX_UNAVAILABLE == 0
    assert scenario.MAX_SURGE + scenario.MAX_UNAVAILABLE == scenario.MAX_SURGE
    # the short deadline keeps the scenario short, and is longer than a healthy pod's start
    assert 10 <= scenario.PROGRESS_DEADLINE_S <= 20
    assert scenario.FLOOR.total_s >= scenario.PROGRESS_DEADLINE_S


def test_the_read_back_names_a_stripped_readiness_probe_and_a_changed_deadline():
    live_deployment = {
        "metadata": {"name": "incver"},
        "spec": {
            "replicas": 3,
            "strategy": scenario.STRATEGY,
            "progressDeadlineSeconds": 600,
        },
    }
    pod = {"metadata": {"name": "incver-a"}, "spec": {"containers": [{"name": "incver"}]}}
    service = {
        "metadata": {"name": "incver"},
        "spec": {
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
        },
    }
    found = scenario.admitted_problems(live_deployment, [pod], service)
    assert any("progressDeadlineSeconds is 600, expected 15" in p for p in found)
    assert any("readinessProbe is <not set>" in p for p in found)


# -- the view ------------------------------------------------------------------------------------


def test_headline_only_for_its_own_figures():
    assert view.headline({}) is None
    text = view.headline(
        {
            "broken_pods": 1,
            "exceeded_after_s": 15.44,
            "progress_deadline_s": 15.0,
            "min_available": 3,
            "undo_to_restored_s": 0.11,
            "requests": 862,
            "failed": 0,
        }
    )
    assert text is not None
    assert "ProgressDeadlineExceeded 15.4 s" in text
    assert "0 of 862 requests failed" in text


def test_chart_needs_traffic():
    assert view.chart({}, [], 0.0, "x") is None
    assert view.chart({"probes": [{}]}, [], 0.0, "x") is None


def test_chart_draws_requests_over_the_ready_pods_of_each_replicaset():
    recording = {
        "started_wall": 1000.0,
        "marks": [],
        "replicasets": [
            {"t": 0.0, "name": "incver-a", "ready": 3, "image": "x/w:v1"},
            {"t": 4.0, "name": "incver-b", "ready": 0, "image": "x/w:v2"},
        ],
    }
    probe = {
        "label": "incver",
        "started": 1001.0,
        "ended": 1010.0,
        "answer_fields": ["start", "end", "ok", "status", "pod", "version"],
        "answers": [[1001.0 + i, 1001.1 + i, True, 200, "incver-a-1", "v1"] for i in range(8)],
    }
    svg = view.chart(
        {"recording": recording, "probes": [probe], "figures": {"replicas": 3}}, [], 10.0, "fr"
    )
    assert svg is not None
    assert "Ready pods of incver-b (v2)" in str(svg)
    assert "version v1" in str(svg)

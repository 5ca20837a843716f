"""The node failure's decision functions, each with its no-data case."""

import time

import pytest

from suite.behaviours.node_failure import freeze, proofs, view
from suite.providers.base import ProviderError
from suite.samples import PodView, node_sample
from suite.traffic import Answer

UNREACHABLE = "node.kubernetes.io/unreachable:NoExecute"


def _node(name, wall, ready="True/KubeletReady", taints=(), unschedulable=False):
    return {
        "name": name,
        "wall": wall,
        "t": wall,
        "ready": ready,
        "unschedulable": unschedulable,
        "taints": list(taints),
    }


def _answer(seq, start, ok=True, pod="p", duration=0.01):
    return Answer(
        seq,
        start,
        start + duration,
        200 if ok else None,
        ok,
        pod if ok else None,
        "v1",
        None if ok else "timeout",
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("50s", 50.0), ("1m0s", 60.0), ("500ms", 0.5), ("1h", 3600.0), ("", None), ("5x", None)],
)
def test_go_durations_are_read_and_anything_else_is_none(text, seconds):
    assert proofs.duration_s(text) == seconds


def test_the_grace_period_comes_from_the_flag_or_is_not_set():
    assert proofs.grace_period_s(["kcm", "--node-monitor-grace-period=40s"]) == 40.0
    assert proofs.grace_period_s(["kcm", "--node-monitor-grace-period", "1m0s"]) == 60.0
    assert proofs.grace_period_s(["kcm", "--controllers=*"]) is None
    assert proofs.grace_period_s([]) is None


def test_a_node_sample_keeps_ready_taints_and_when_a_taint_was_added():
    sample = node_sample(
        {
            "metadata": {"name": "w2"},
            "spec": {
                "taints": [
                    {
                        "key": "node.kubernetes.io/unreachable",
                        "effect": "NoExecute",
                        "timeAdded": "2026-12-05T15:00:00Z",
                    },
                    {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
                ]
            },
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}
                ]
            },
        }
    )
    assert sample["ready"] == "Unknown/NodeStatusUnknown"
    assert sample["taints"] == [UNREACHABLE, "node.kubernetes.io/unreachable:NoSchedule"]
    assert sample["taints_added"] == {UNREACHABLE: "2026-12-05T15:00:00Z"}
    assert node_sample({})["ready"] == "Unknown/"


def test_schedulable_nodes_are_ready_uncordoned_and_untainted():
    assert proofs.schedulable(_node("w", 0))
    assert not proofs.schedulable(_node("w", 0, ready="Unknown/NodeStatusUnknown"))
    assert not proofs.schedulable(_node("w", 0, unschedulable=True))
    assert not proofs.schedulable(
        _node("cp", 0, taints=["node-role.kubernetes.io/control-plane:NoSchedule"])
    )
    assert proofs.schedulable(_node("w", 0, taints=["x:PreferNoSchedule"]))


def test_latest_keeps_the_last_sample_of_each_node_and_drops_deleted_ones():
    samples = [
        _node("a", 1),
        _node("b", 1),
        _node("a", 2),
        {"name": "b", "wall": 3, "deleted": True},
    ]
    assert {name: s["wall"] for name, s in proofs.latest(samples).items()} == {"a": 2}
    assert proofs.latest([]) == {}


def test_first_seen_finds_the_state_after_since_and_none_without_it():
    samples = [
        _node("w", 1, ready="Unknown/x"),
        _node("w", 5),
        _node("x", 6, ready="Unknown/x"),
        _node("w", 7, ready="Unknown/NodeStatusUnknown"),
        _node("w", 8, ready="Unknown/NodeStatusUnknown", taints=[UNREACHABLE]),
    ]
    assert proofs.first_seen(samples, "w", 2, ready=False) == 7
    assert proofs.first_seen(samples, "w", 2, tainted=True) == 8
    assert proofs.first_seen(samples, "w", 9, ready=False) is None
    assert proofs.first_seen([], "w", 0, ready=False) is None
    assert proofs.state_text(None) == "never seen"
    assert "NoExecute" in proofs.state_text(samples[-1])


def _pod(name, tolerations):
    return {"metadata": {"name": name}, "spec": {"tolerations": tolerations}}


def test_tolerations_are_read_back_per_taint():
    pod = _pod(
        "p",
        [
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 10,
            },
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    )
    assert proofs.tolerations_s(pod) == {
        "node.kubernetes.io/unreachable": 10,
        "node.kubernetes.io/not-ready": 300,
    }
    found = proofs.toleration_problems([pod], 10)
    assert len(found) == 1
    assert "not-ready: expected tolerationSeconds 10, got 300" in found[0]
    assert "not tolerated" in proofs.toleration_problems([_pod("q", [])], 10)[0]
    assert proofs.toleration_problems([], 10) == ["no pod to read the tolerations of"]


def test_pods_are_grouped_by_node():
    assert proofs.by_node({"a": "w1", "b": "w2", "c": "w1"}) == {"w1": ["a", "c"], "w2": ["b"]}
    assert proofs.by_node({}) == {}


def test_first_terminating_is_the_first_terminating_or_deleted_state():
    alive = PodView("p", "Running", True, False)
    going = PodView("p", "Running", True, True)
    assert proofs.first_terminating([(0, 10, alive), (1, 11, going)]) == 11
    assert proofs.first_terminating([(0, 10, alive), (1, 12, None)]) == 12
    assert proofs.first_terminating([(0, 10, alive)]) is None
    assert proofs.first_terminating([]) is None


def test_lag_problem_bounds_both_ways_and_names_what_was_not_seen():
    assert proofs.lag_problem("x", 10, 20, low_s=9, high_s=15) is None
    assert "5.0s after, expected 9.0..15.0s" in proofs.lag_problem("x", 10, 15, low_s=9, high_s=15)
    assert "not seen" in proofs.lag_problem("x", 10, None, low_s=9, high_s=15)
    assert "never recorded" in proofs.lag_problem("x", None, 1, low_s=9, high_s=15)


def test_failed_window_and_failures_outside_it():
    answers = [
        _answer(1, 1),
        _answer(2, 2, ok=False, duration=2),
        _answer(3, 5, ok=False, duration=2),
        _answer(4, 9, ok=False),
    ]
    assert proofs.failed_window(answers) == (3, 2, 9.01)
    assert proofs.failed_window([_answer(1, 1)]) == (0, None, None)
    assert proofs.failed_window([]) == (0, None, None)
    assert [a.seq for a in proofs.failures_outside(answers, 1.5, 6)] == [4]
    assert proofs.failures_outside([], 0, 1) == []


def test_answered_by_counts_only_the_given_pods_in_the_window():
    answers = [_answer(1, 1, pod="a"), _answer(2, 2, pod="b"), _answer(3, 3, pod="a")]
    assert [a.seq for a in proofs.answered_by(answers, {"a"}, 2, 4)] == [3]
    assert proofs.answered_by([], {"a"}, 0, 9) == []


def test_the_headline_needs_the_figures_and_tells_the_story():
    assert view.headline({}) is None
    line = view.headline(
        {
            "not_ready_after_s": 48.2,
            "stopped_node": "w2",
            "grace_period_s": 50,
            "evicted_after_taint_s": 10.4,
            "replaced_after_s": 61.0,
            "requests": 900,
            "failed": 30,
            "failed_window_s": 47.5,
            "rejoined_after_s": 6.0,
        }
    )
    assert "w2 NotReady 48.2 s after it stopped" in line
    assert "30 of 900 requests failed" in line
    assert "rejoined" in line


def test_the_chart_needs_a_probe():
    assert view.chart({}, [], 0.0, "x") is None


# -- freeze: docker pause retried only when runc's freezer gave up ---------------------------------


def _pauser(errors):
    """A `docker pause` stand-in failing with each of `errors` in turn, then succeeding."""
    calls = []

    def run():
        calls.append(len(calls))
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]

    return run, calls


GAVE_UP = ProviderError(
    "docker pause kube-alive-worker2 failed with exit code 1:\nError response from daemon: "
    "Cannot pause container dd40: OCI runtime pause failed: unable to freeze: unknown"
)


def test_pause_retries_the_freezer_giving_up_and_says_which_attempt_froze():
    run, calls = _pauser([GAVE_UP, GAVE_UP])
    seen = []
    started, attempts = freeze.pause(run, lambda n, e: seen.append(n), between_s=0)
    assert attempts == 3
    assert len(calls) == 3
    assert seen == [1, 2]
    assert started <= time.time()


def test_pause_does_not_retry_other_errors():
    other = ProviderError("docker pause kube-alive-worker2 failed: No such container")
    run, calls = _pauser([other])
    with pytest.raises(ProviderError, match="No such container"):
        freeze.pause(run, lambda n, e: None, between_s=0)
    assert len(calls) == 1


def test_pause_gives_up_after_its_attempts_and_names_the_freezer():
    run, calls = _pauser([GAVE_UP] * 9)
    with pytest.raises(ProviderError, match=r"unable to freeze.*3 attempts.*cgroup freezer"):
        freeze.pause(run, lambda n, e: None, attempts=3, between_s=0)
    assert len(calls) == 3

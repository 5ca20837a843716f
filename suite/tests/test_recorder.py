import json

import pytest

from suite.kube import Latency
from suite.recorder import Recorder, timeline_text
from suite.samples import hpa_sample, pod_view
from suite.tests.fakes import deployment, pod
from suite.waiting import Pending, WaitFailed

SELECTOR = {"app.kubernetes.io/name": "web"}


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def recorder():
    clock = Clock()
    rec = Recorder(None, "ns", monotonic=clock, wall_clock=lambda: 1_700_000_000.0 + clock.t)
    return rec, clock


def web(name, **kwargs):
    return pod(name, labels={"app.kubernetes.io/name": "web"}, **kwargs)


def test_pod_view_derives_status_containers_and_last_termination():
    view = pod_view(
        pod("a", ready=False, waiting="CrashLoopBackOff", restarts=2, last=("Error", 1))
    )
    assert view.status == "Running"
    assert not view.ready
    assert view.restarts == 2
    container = view.containers[0]
    assert (container.state, container.reason) == ("waiting", "CrashLoopBackOff")
    assert (container.last_reason, container.last_exit_code) == ("Error", 1)
    assert pod_view(pod("b")).status == "Ready"
    assert pod_view(pod("c", deleting=True)).status == "Terminating"
    assert pod_view(pod("d", ready=False, phase="Pending")).status == "Pending"
    done = pod_view(pod("e", ready=False, terminated=("Completed", 0)))
    assert (done.containers[0].state, done.containers[0].exit_code) == ("terminated", 0)


def test_unchanged_pods_are_not_recorded_twice():
    rec, clock = recorder()
    rec.observe_sync("Pod", [web("a")])
    clock.t = 1
    rec.observe("Pod", "MODIFIED", web("a", rv="2"))  # only the resourceVersion changed
    clock.t = 2
    rec.observe("Pod", "MODIFIED", web("a", ready=False, rv="3"))
    history = rec.pod_history("a")
    assert [(t, view.status) for t, _, view in history] == [(0, "Ready"), (2, "Running")]


def test_rolling_update_moments_count_live_ready_and_terminating_pods():
    rec, clock = recorder()
    rec.observe_sync("Pod", [web("old1"), web("old2"), pod("prober")])
    clock.t = 10
    steps = [
        ("ADDED", web("new1", ready=False, phase="Pending")),
        ("MODIFIED", web("new1")),
        ("MODIFIED", web("old1", deleting=True)),
        ("DELETED", web("old1", deleting=True)),
    ]
    t_start = rec.mark("set image")
    for kind, obj in steps:
        clock.t += 1
        rec.observe("Pod", kind, obj)
    moments = rec.pod_moments(SELECTOR, since=t_start)
    assert [(m.pods, m.ready, m.terminating) for m in moments] == [
        (2, 2, 0),  # the window opens with the state before it
        (3, 2, 0),
        (3, 3, 0),
        (2, 2, 1),
        (2, 2, 0),
    ]
    assert moments[3].cause == "old1 Terminating"
    assert rec.pod_moments(SELECTOR, since=t_start, until=12.5)[-1].ready == 3


def test_a_relist_is_one_moment_not_a_partial_count():
    rec, clock = recorder()
    rec.observe_sync("Pod", [web("a"), web("b"), web("c")])
    clock.t = 1
    rec.observe_sync("Pod", [web("a"), web("b"), web("c"), web("d", ready=False)])
    assert [(m.pods, m.ready) for m in rec.pod_moments(SELECTOR)] == [(3, 3), (4, 3)]


def test_relist_records_deletions_missed_while_not_watching():
    rec, clock = recorder()
    rec.observe_sync("Pod", [web("a"), web("b")])
    clock.t = 5
    rec.observe_sync("Pod", [web("b")])
    assert set(rec.pods()) == {"b"}
    assert rec.pod_history("a")[-1][2] is None


def test_hpa_samples_keep_replicas_and_cpu():
    hpa = {
        "metadata": {"name": "cpuhog"},
        "spec": {
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
        },
        "status": {
            "currentReplicas": 1,
            "desiredReplicas": 3,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 240}},
                }
            ],
            "conditions": [
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}
            ],
        },
    }
    sample = hpa_sample(hpa)
    assert sample["cpu_utilization"] == 240
    assert sample["target_utilization"] == 50
    assert sample["desired_replicas"] == 3
    assert sample["conditions"] == {"ScalingActive": "True/ValidMetricFound"}
    rec, _ = recorder()
    rec.observe("HorizontalPodAutoscaler", "ADDED", hpa)
    rec.observe("HorizontalPodAutoscaler", "MODIFIED", hpa)
    assert len(rec.samples("HorizontalPodAutoscaler")) == 1


def test_events_are_recorded_once_per_count():
    rec, _ = recorder()
    unhealthy = {
        "metadata": {"name": "e1", "uid": "u1"},
        "type": "Warning",
        "reason": "Unhealthy",
        "message": "Liveness probe failed",
        "count": 1,
        "involvedObject": {"kind": "Pod", "name": "a"},
    }
    rec.observe("Event", "ADDED", unhealthy)
    rec.observe("Event", "MODIFIED", unhealthy)
    rec.observe("Event", "MODIFIED", {**unhealthy, "count": 2})
    assert [e["count"] for e in rec.events()] == [1, 2]
    assert rec.events()[0]["object"] == "pod/a"


def test_to_dict_is_json_and_the_timeline_reads_in_order():
    rec, clock = recorder()
    rec.observe_sync("Deployment", [deployment("web", ready=3)])
    clock.t = 1
    rec.mark("infect", pod="a")
    clock.t = 2
    rec.observe("Pod", "ADDED", web("a", restarts=1, last=("Error", 1)))
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["marks"][0]["label"] == "infect"
    assert data["pods"][0]["state"]["restarts"] == 1
    assert data["deployments"][0]["ready"] == 3
    lines = timeline_text(data).splitlines()
    assert "DEPLOY" in lines[0]
    assert "MARK   infect" in lines[1]
    assert "restarts=1 last=Error:1" in lines[2]


def test_mark_time_and_wall_conversion():
    rec, clock = recorder()
    clock.t = 3
    rec.mark("x")
    assert rec.mark_time("x") == 3
    assert rec.wall_to_t(1_700_000_010.0) == 10.0


def test_a_lost_watch_is_a_gap_from_the_loss_to_the_relist_naming_what_changed_meanwhile():
    rec, clock = recorder()
    rec.observe_sync("Pod", [web("a", rv="1"), web("b", rv="2")])
    clock.t = 5
    rec.observe_lost("Pod", "GET /api/v1/namespaces/ns/pods: 0 ConnectionRefused")
    clock.t = 6
    rec.observe_lost("Pod", "again")  # the same loss: retries do not open another gap
    assert rec.gap_problems(["Pod"]) == [
        "watch of pods interrupted since t=5.0s "
        "(GET /api/v1/namespaces/ns/pods: 0 ConnectionRefused); not re-listed yet"
    ]
    clock.t = 12.5
    rec.observe_sync("Pod", [web("a", rv="1"), web("b", ready=False, rv="7"), web("c", rv="8")])
    (gap,) = rec.gaps()
    assert (gap["from_t"], gap["until_t"], gap["changed"]) == (5, 12.5, ["b", "c"])
    expected = (
        "watch of pods interrupted from t=5.0s to t=12.5s "
        "(GET /api/v1/namespaces/ns/pods: 0 ConnectionRefused); re-listed: 2 changed meanwhile "
        "(b, c); their states in between were not seen and their changes are stamped at t=12.5s"
    )
    # A verdict on a window that holds the gap fails naming it; one outside it does not.
    assert rec.gap_problems(["Pod"], since=0, until=20) == [expected]
    assert rec.gap_problems(["Pod"], since=13, until=20) == []
    assert rec.gap_problems(["Pod"], since=0, until=4) == []
    assert rec.gap_problems(["Event"], since=0, until=20) == []
    assert "GAP    " + expected in timeline_text(rec.to_dict())
    assert json.loads(json.dumps(rec.to_dict()))["gaps"][0]["changed"] == ["b", "c"]


def test_a_gap_in_which_nothing_changed_leaves_the_data_complete():
    rec, clock = recorder()
    rec.observe_sync("Pod", [web("a", rv="1")])
    rec.observe("Pod", "ADDED", web("b", rv="3"))
    clock.t = 5
    rec.observe_lost("Pod", "watch expired (410 Gone): too old")
    clock.t = 6
    rec.observe_sync("Pod", [web("a", rv="1"), web("b", rv="3")])
    assert rec.gap_problems(since=0, until=10) == []
    assert "nothing changed meanwhile, the data is complete" in timeline_text(rec.to_dict())


def test_a_deletion_while_blind_is_a_change_of_the_gap():
    rec, clock = recorder()
    rec.observe_sync("Pod", [web("a", rv="1"), web("b", rv="2")])
    clock.t = 1
    rec.observe_lost("Pod", "stream broke")
    clock.t = 2
    rec.observe_sync("Pod", [web("a", rv="1")])
    assert rec.gaps()[0]["changed"] == ["b"]
    assert rec.pods().keys() == {"a"}


def test_a_loss_before_the_first_list_is_no_gap():
    rec, _ = recorder()
    rec.observe_lost("Pod", "refused")
    assert rec.gaps() == []


def test_waiting_for_gaps_to_close_names_the_open_one():
    rec, _ = recorder()
    rec.observe_sync("Deployment", [])
    rec.wait_gaps_closed(0.1)
    rec.observe_lost("Deployment", "refused")
    with pytest.raises(WaitFailed, match=r"watch of deployments interrupted since t=0\.0s"):
        rec.wait_gaps_closed(0.1)


def test_a_recorder_wait_that_runs_out_names_a_slow_api():
    class Measured:
        latency = Latency(lambda: clock_t[0])

    clock_t = [0.0]
    rec = Recorder(Measured(), "ns")
    rec.observe_sync("Pod", [])
    Measured.latency.begin()  # a list that never came back
    clock_t[0] = 4.0
    with pytest.raises(WaitFailed) as caught:
        rec.wait_for(lambda: Pending("no pods"), timeout_s=0.05, what="recorder", expected="a pod")
    assert str(caught.value).endswith(
        "; the API server answered slowly: 1 requests unanswered after up to 4.0s "
        "(measured by the suite)"
    ), caught.value

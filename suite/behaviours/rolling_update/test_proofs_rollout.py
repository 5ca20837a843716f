"""The rolling update's answer-by-answer verdicts (its proofs.py), no
cluster: pods' moments from the recorder, the EndpointSlice's, answers, and which part a problem
names."""

import re

import pytest

from suite.behaviours.rolling_update import proofs
from suite.recorder import Recorder, timeline_text
from suite.samples import ContainerView, PodView, endpointslice_sample
from suite.traffic import Answer

KUBE_PROXY = re.compile(r"kube-proxy|service proxy")
SLICE_CONTROLLER = re.compile(r"EndpointSlice controller")


def answer(start, pod, *, ok=True):
    return Answer(
        seq=0,
        start=start,
        end=start + 0.01,
        status=200 if ok else None,
        ok=ok,
        pod=pod if ok else None,
        version="v1",
        error=None if ok else "connection refused",
    )


def view(name, *, ready=True, terminating=False, image="img:v1"):
    return PodView(
        name=name,
        phase="Running",
        ready=ready,
        terminating=terminating,
        labels=(("app.kubernetes.io/name", "incver"),),
        containers=(ContainerView(name="c", state="running", image=image),),
    )


def test_pod_span_takes_the_first_ready_and_the_first_stop():
    history = [
        (0.0, 100.0, view("a", ready=False)),
        (1.0, 101.0, view("a")),
        (2.0, 102.0, view("a", ready=False)),
        (3.0, 103.0, view("a")),
        (4.0, 104.0, view("a", ready=False, terminating=True)),
        (5.0, 105.0, None),
    ]
    assert proofs.pod_span(history) == proofs.PodSpan("img:v1", 101.0, 104.0)
    assert proofs.pod_span([]) == proofs.PodSpan()
    assert proofs.pod_span([(1.0, 101.0, None)]) == proofs.PodSpan("", None, 101.0)


def endpoint(pod, ready=True, terminating=False):
    return {"pod": pod, "ready": ready, "serving": ready, "terminating": terminating}


def sample(wall, *endpoints, name="s1", service="incver"):
    return {"t": wall - 100, "wall": wall, "name": name, "service": service, "endpoints": endpoints}


def test_slice_spans_follow_ready_endpoints_over_every_slice_of_the_service():
    samples = [
        sample(10.0, endpoint("a")),
        sample(10.5, endpoint("x"), service="other"),
        sample(11.0, endpoint("a"), endpoint("b", ready=False)),
        sample(12.0, endpoint("a"), endpoint("b")),
        sample(12.5, endpoint("c"), name="s2"),
        sample(13.0, endpoint("a", ready=False, terminating=True), endpoint("b")),
        {"t": 0, "wall": 14.0, "name": "s2", "deleted": True},
        {"t": 0, "wall": 14.5, "name": "unknown", "deleted": True},
    ]
    assert proofs.slice_spans(samples, "incver") == {
        "a": proofs.SliceSpan(10.0, 13.0),
        "b": proofs.SliceSpan(12.0, None),
        "c": proofs.SliceSpan(12.5, 14.0),
    }
    assert proofs.slice_spans([], "incver") == {}


def test_a_pod_listed_again_left_only_when_it_left_for_good():
    samples = [
        sample(10.0, endpoint("a")),
        sample(11.0, endpoint("a", ready=False)),
        sample(12.0, endpoint("a")),
    ]
    assert proofs.slice_spans(samples, "incver") == {"a": proofs.SliceSpan(10.0, None)}
    samples.append(sample(13.0))
    assert proofs.slice_spans(samples, "incver") == {"a": proofs.SliceSpan(10.0, 13.0)}


def test_endpointslice_sample_reads_pods_and_conditions_and_the_recorder_keeps_them():
    obj = {
        "metadata": {
            "name": "incver-abc",
            "labels": {"kubernetes.io/service-name": "incver"},
            "resourceVersion": "1",
        },
        "endpoints": [
            {
                "addresses": ["10.0.0.2"],
                "conditions": {"ready": False, "serving": True, "terminating": True},
                "targetRef": {"kind": "Pod", "name": "incver-b"},
            },
            {
                "addresses": ["10.0.0.1"],
                "conditions": {},
                "targetRef": {"kind": "Pod", "name": "incver-a"},
            },
        ],
    }
    found = endpointslice_sample(obj)
    assert found["service"] == "incver"
    assert [(e["pod"], e["ready"], e["serving"], e["terminating"]) for e in found["endpoints"]] == [
        ("incver-a", True, True, False),  # no conditions: ready, as the API says to read it
        ("incver-b", False, True, True),
    ]
    recorder = Recorder(None, "ns")
    recorder.observe_sync("EndpointSlice", [obj])
    recorder.observe("EndpointSlice", "MODIFIED", obj)  # unchanged: no new sample
    recorder.observe("EndpointSlice", "DELETED", obj)
    recorded = recorder.to_dict()["endpointslices"]
    assert [bool(s.get("deleted")) for s in recorded] == [False, True]
    assert "SLICE  incver-abc incver-a=ready incver-b=terminating" in timeline_text(
        recorder.to_dict()
    )


# A rollout of one pod: a (v1) is replaced by b (v2). Times are this machine's clock; the prober's
# clock is 0.1 s ahead (offset), known to within 0.02 s.
OFFSET, UNCERTAINTY, LAG = 0.1, 0.02, 2.0
PODS = {
    "a": proofs.PodSpan("img:v1", ready=1.0, terminating=20.0),
    "b": proofs.PodSpan("img:v2", ready=15.0),
}
SPANS = {"a": proofs.SliceSpan(1.05, 20.05), "b": proofs.SliceSpan(15.05)}


def traffic(a_until=21.0, b_from=15.5, until=25.0, step=0.1):
    answers, t = [], 5.0
    while t < until:
        if t <= a_until:
            answers.append(answer(t + OFFSET, "a"))
        if t >= b_from:
            answers.append(answer(t + OFFSET, "b"))
        t += step
    return answers


def table(answers, pods=PODS, spans=SPANS):
    return proofs.routing_table(
        answers,
        pods,
        spans,
        offset=OFFSET,
        uncertainty=UNCERTAINTY,
        lag_s=LAG,
        since=5.0,
        early_allowance_s=0.25,
    )


def lag_problems(rows, end=25.0):
    return proofs.routing_lag_problems(
        rows, lag_s=LAG, slice_lag_s=1.0, uncertainty=UNCERTAINTY, traffic_end=end
    )


def test_a_healthy_rollout_has_every_lag_within_bounds_and_counts_draining_answers():
    rows = {row.pod: row for row in table(traffic())}
    a, b = rows["a"], rows["b"]
    assert a.first_answer_s == pytest.approx(0.0)  # listed before traffic began: from its start
    assert b.first_answer_s == pytest.approx(0.5, abs=0.11)
    assert a.slice_out_s == pytest.approx(0.05)
    assert a.last_answer_s == pytest.approx(0.95, abs=0.11)
    assert a.draining == 10
    assert a.late == 0
    assert a.early == 0
    assert lag_problems(list(rows.values())) == []
    assert a.to_dict(origin=10.0)["out_of_slice_s"] == pytest.approx(10.05)


def test_a_pod_listed_ready_that_gets_nothing_names_kube_proxy():
    # service-routing-late: kube-proxy applies the new endpoint 12 s after the slice listed it.
    found = lag_problems(table(traffic(b_from=27.0, until=30.0)), end=30.0)
    assert len(found) == 1
    assert KUBE_PROXY.search(found[0])
    assert "first request to pod b (v2) 11.9" in found[0]
    found = lag_problems(table(traffic(b_from=99.0)))
    assert KUBE_PROXY.search(found[0])
    assert "routed nothing to pod b" in found[0]
    # Too soon to tell: the slice listed it 1 s before the traffic ended.
    assert lag_problems(table(traffic(b_from=99.0, until=16.0)), end=16.0) == []


def test_answers_from_a_pod_long_after_it_left_name_kube_proxy():
    found = lag_problems(table(traffic(a_until=24.0)))
    assert len(found) == 1
    assert KUBE_PROXY.search(found[0])
    assert "kept routing to pod a (v1)" in found[0]


def test_answers_before_ready_name_who_let_them_through():
    early = [answer(0.5 + OFFSET, "a"), *traffic()]
    found = lag_problems(table(early))
    assert KUBE_PROXY.search(found[0])
    assert "1 answers came from pod a" in found[0]
    listed_first = {**SPANS, "a": proofs.SliceSpan(0.2, 20.05)}
    found = lag_problems(table(early, spans=listed_first))
    assert all(SLICE_CONTROLLER.search(text) for text in found), found


def test_a_slice_that_follows_late_names_the_endpointslice_controller():
    late = {"a": proofs.SliceSpan(3.0, 23.0), "b": proofs.SliceSpan(15.05)}
    found = lag_problems(table(traffic(a_until=23.5), spans=late))
    assert len(found) == 2, found
    assert all(SLICE_CONTROLLER.search(text) for text in found)
    stuck = {"a": proofs.SliceSpan(1.05), "b": proofs.SliceSpan(15.05)}
    found = lag_problems(table(traffic(), spans=stuck))
    assert any("still listed pod a (v1) as ready" in text for text in found), found


def failure_problems(failed, answers):
    return proofs.failed_request_problems(
        failed,
        [a for a in answers if a.ok],
        table(answers),
        offset=OFFSET,
        uncertainty=UNCERTAINTY,
        lag_s=LAG,
        workload="incver's graceful shutdown",
        origin=10.0,
    )


def test_failures_name_the_part_from_when_they_happened():
    answers = traffic(a_until=20.5)
    assert failure_problems([], answers) == []
    # Within the routing lag of a leaving the slice: a stopped serving too soon.
    (found,) = failure_problems([answer(21.0 + OFFSET, "a", ok=False)], answers)
    assert "incver's graceful shutdown stopped serving too soon" in found
    assert "(first at +11.0s)" in found
    # Long after a left, while b (listed ready) answered on: kube-proxy still sent them to a.
    (found,) = failure_problems([answer(23.0 + OFFSET, "a", ok=False)], answers)
    assert KUBE_PROXY.search(found)
    assert "pod(s) a left" in found
    # Nothing changing, every listed pod ready: the workload.
    (found,) = failure_problems([answer(8.0 + OFFSET, "a", ok=False)], answers)
    assert "every pod in the EndpointSlice was Ready" in found
    assert not KUBE_PROXY.search(found)


def rs(name, image, wanted, made, ready):
    return {"name": name, "image": image, "spec_replicas": wanted, "replicas": made, "ready": ready}


@pytest.mark.parametrize(
    ("deployment", "replicasets", "words"),
    [
        (None, [], "no Deployment status"),
        ({"generation": 2, "observed_generation": 1}, [], "Deployment controller"),
        ({"generation": 2, "observed_generation": 2}, [], "Deployment controller"),
        (
            {"generation": 2, "observed_generation": 2},
            [rs("new", "v2", 1, 0, 0)],
            "ReplicaSet controller",
        ),
        ({"generation": 2, "observed_generation": 2}, [rs("new", "v2", 1, 1, 0)], "kubelet"),
        (
            {"generation": 2, "observed_generation": 2},
            [rs("new", "v2", 2, 2, 2), rs("old", "v1", 3, 3, 3)],
            "Deployment controller",
        ),
    ],
)
def test_rollout_stall_names_the_controller_the_evidence_points_at(deployment, replicasets, words):
    assert words in proofs.rollout_stall(deployment, replicasets, "v2", 4)


def test_the_drain_covers_the_routing_lag_bound_and_matches_the_manifest():
    from suite import manifests
    from suite.behaviours.rolling_update import test_rolling_update as rolling

    # The routing lag, and a second for the EndpointSlice controller to mark the pod terminating.
    assert rolling.DRAIN_S >= rolling.ROUTING_LAG_S + 1
    (deployment,) = [o for o in manifests.load_app("incver") if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert (
        container["lifecycle"]["preStop"]
        == rolling.POD_EXPECTED["spec"]["containers"][0]["lifecycle"]["preStop"]
    )
    assert {k: container["readinessProbe"][k] for k in rolling.READINESS} == rolling.READINESS


def test_the_fresh_services_start_up_is_counted_not_judged():
    answers = [answer(5.0 + OFFSET, "a", ok=False), *traffic(b_from=15.5)]
    rows = table(answers)
    assert proofs.converged_at(rows, ["a", "b"]) == pytest.approx(15.5, abs=0.11)
    assert proofs.converged_at(rows, ["a", "nobody"]) is None
    routed = min(row.first for row in rows if row.first is not None)
    failed = [a for a in answers if not a.ok]
    assert proofs.failed_before(failed, offset=OFFSET, routed=routed + 0.01) == 1
    assert proofs.failed_before(failed, offset=OFFSET, routed=None) == 0
    judged = proofs.failed_request_problems(
        failed,
        [a for a in answers if a.ok],
        rows,
        offset=OFFSET,
        uncertainty=UNCERTAINTY,
        lag_s=LAG,
        workload="incver",
        origin=10.0,
        routed=routed + 0.01,
    )
    assert judged == []


def test_a_pod_listed_before_the_traffic_is_judged_only_on_getting_nothing():
    slow_start = [answer(7.5 + OFFSET, "a"), *[x for x in traffic() if x.pod == "b"]]
    assert lag_problems(table(slow_start)) == []
    never = [x for x in traffic() if x.pod == "b"]
    (found,) = lag_problems(table(never))
    assert (
        "routed nothing to pod a (v1) in 15.1s of traffic" in found
    )  # from traffic start to leaving


def counts(t, pods, ready):
    from suite.podcount import Moment

    return Moment(t=t, wall=t, pods=pods, terminating=0, ready=ready, cause="x")


def test_a_crossing_of_two_replicaset_controllers_is_not_a_surge_but_a_lasting_one_is():
    crossing = [counts(1.0, 5, 4), counts(9.330, 6, 4), counts(9.331, 5, 4), counts(10.0, 5, 5)]
    assert proofs.bound_problems(crossing, 4, 1, 0, lasting_s=0.5) == []
    assert len(proofs.bound_problems(crossing, 4, 1, 0)) == 1
    lasting = [counts(1.0, 5, 4), counts(2.0, 6, 4), counts(3.0, 5, 4)]
    assert "6 pods > 4 replicas" in proofs.bound_problems(lasting, 4, 1, 0, lasting_s=0.5)[0]
    last = [counts(1.0, 5, 4), counts(2.0, 6, 4)]  # the last moment lasts until the window ends
    assert len(proofs.bound_problems(last, 4, 1, 0, lasting_s=0.5)) == 1


def test_the_replicasets_never_ask_for_more_than_replicas_plus_surge():
    def rset(t, name, spec):
        return {"t": t, "name": name, "spec_replicas": spec}

    healthy = [
        rset(0.0, "incver-old", 4),
        rset(1.0, "incver-new", 1),
        rset(2.0, "incver-old", 3),
        rset(2.1, "incver-new", 2),
        rset(2.2, "prober-x", 9),
    ]
    assert proofs.replicaset_bound_problems(healthy, "incver", 4, 1, since_t=0.5, until_t=5) == []
    greedy = [*healthy, rset(3.0, "incver-new", 3)]
    (found,) = proofs.replicaset_bound_problems(greedy, "incver", 4, 1, since_t=0.5, until_t=5)
    assert "ask for 6 pods (incver-new 3, incver-old 3) > 4 replicas + maxSurge 1" in found
    assert proofs.replicaset_bound_problems(healthy, "incver", 4, 1, since_t=9, until_t=10) == [
        "the recorder observed no ReplicaSet change during the rollout"
    ]


def test_pods_ready_but_never_listed_name_the_endpointslice_controller():
    # endpointslice-controller-off: the pods are Ready, the slice stays empty, every request fails.
    failed = [answer(t + OFFSET, "a", ok=False) for t in (6.0, 7.0, 8.0)]
    rows = table(failed, spans={})
    found = lag_problems(rows)
    assert found
    assert all(SLICE_CONTROLLER.search(text) for text in found)
    assert "never listed pod a (v1) as ready" in found[0]
    judged = proofs.failed_request_problems(
        failed,
        [],
        rows,
        offset=OFFSET,
        uncertainty=UNCERTAINTY,
        lag_s=LAG,
        workload="incver",
        origin=5.0,
    )
    assert len(judged) == 1
    assert SLICE_CONTROLLER.search(judged[0])
    assert "3 requests failed while the Service's EndpointSlice listed no pod" in judged[0]
    # Nothing Ready at all: no part is named for it.
    unready = {"a": proofs.PodSpan("img:v1")}
    (judged,) = proofs.failed_request_problems(
        failed,
        [],
        table(failed, pods=unready, spans={}),
        offset=OFFSET,
        uncertainty=UNCERTAINTY,
        lag_s=LAG,
        workload="incver",
        origin=5.0,
    )
    assert "no pod of the Service was Ready" in judged


def live_pod(**container_changes):
    container = {
        "name": "incver",
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTP"},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"httpGet": {"path": "/drain?seconds=4", "port": "http"}}},
    }
    container.update(container_changes)
    container = {k: v for k, v in container.items() if v is not None}
    return {
        "metadata": {"name": "incver-abc"},
        "spec": {"terminationGracePeriodSeconds": 20, "containers": [container]},
    }


def test_the_read_back_names_a_probe_or_hook_the_cluster_stripped():
    from suite import admitted
    from suite.behaviours.rolling_update import test_rolling_update as rolling

    assert admitted.problems(live_pod(), rolling.POD_EXPECTED, kind="pod") == []
    (stripped,) = admitted.problems(live_pod(readinessProbe=None), rolling.POD_EXPECTED, kind="pod")
    assert stripped.startswith(
        "pod/incver-abc: spec.containers[incver].readinessProbe is <not set>"
    )
    (hook,) = admitted.problems(live_pod(lifecycle=None), rolling.POD_EXPECTED, kind="pod")
    assert "spec.containers[incver].lifecycle is <not set>" in hook
    line = admitted.rewritten([stripped, hook], "incver's Deployment, pods or Service")
    assert "admitted" in line
    assert "readinessProbe" in line


def test_a_late_first_answer_is_judged_by_the_join_bound_not_the_leave_bound():
    rows = table(traffic(b_from=17.2))
    b = next(row for row in rows if row.pod == "b")
    assert LAG < b.first_answer_s < 3.0
    late = lag_problems(rows)
    assert len(late) == 1
    assert "first request to pod b" in late[0]
    joined = proofs.routing_lag_problems(
        rows, lag_s=LAG, join_lag_s=3.0, slice_lag_s=1.0, uncertainty=UNCERTAINTY, traffic_end=25.0
    )
    assert joined == []


@pytest.mark.parametrize(
    ("routed", "converged", "changed", "expected"),
    [
        (None, None, None, None),  # never answered: nothing started
        (10.0, None, None, 10.0),  # never converged, no change: its first answer
        (10.0, 11.5, None, 11.5),  # every old pod answered at 11.5
        (10.0, 11.5, 13.0, 11.5),  # converged before the image change
        (10.0, 14.0, 13.0, 13.0),  # not before it: from the image change on, all is judged
        (10.0, None, 13.0, 10.0),
    ],
)
def test_the_fresh_service_has_started_up_when_every_old_pod_answered(
    routed, converged, changed, expected
):
    assert proofs.started_up_at(routed, converged, changed) == expected

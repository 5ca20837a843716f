"""Table-driven tests of self-healing's decision functions (its proofs.py), no cluster.

Every function gets its empty-window / no-data case: a claim is never proven by nothing.
"""

import copy
import re

import pytest

from suite import admitted, manifests, traffic_proofs
from suite.behaviours.self_healing import proofs
from suite.behaviours.self_healing import test_self_healing as sh
from suite.samples import ContainerView, PodView
from suite.tests.fakes import SERVED, answer
from suite.tests.fakes import recorded_event as event
from suite.waiting import Done, Pending

# -- events and restarts -------------------------------------------------------------------------


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
    assert traffic_proofs.endpoint_timeline(samples, "healthcheck") == [
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
    assert traffic_proofs.listed_interval(timeline, "s", 101.0) == expected


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
        (
            [event("pod/s", "Unhealthy", "Readiness probe failed: 503")],
            "did not turn False",
        ),
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

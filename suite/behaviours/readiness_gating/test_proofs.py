"""Table-driven tests of readiness gating's decision functions (its proofs.py) and of what its
scenario states, no cluster.

Every function gets its empty-window / no-data case: a claim is never proven by nothing.
"""

import copy
import re

import pytest

from suite import admitted, manifests, parts
from suite.behaviours.readiness_gating import proofs
from suite.behaviours.readiness_gating import test_readiness_gating as rg
from suite.tests.fakes import answer
from suite.tests.fakes import recorded_event as event

KUBE_PROXY = re.compile(parts.KUBE_PROXY, re.IGNORECASE)
CONTROLLER = re.compile(parts.ENDPOINTSLICE_CONTROLLER, re.IGNORECASE)
ANY_PART = re.compile(r"kube-proxy|service proxy|kube-controller-manager|kubelet", re.IGNORECASE)


# -- what the scenario states ---------------------------------------------------------------------


def healthcheck_template_pod():
    """The pod the Deployment of manifests/healthcheck asks for, as the API server would default
    it (successThreshold 1 on every probe)."""
    deployment = next(o for o in manifests.load_app("healthcheck") if o["kind"] == "Deployment")
    pod = {
        "metadata": {"name": "template"},
        "spec": copy.deepcopy(deployment["spec"]["template"]["spec"]),
    }
    for container in pod["spec"]["containers"]:
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            container.get(kind, {}).setdefault("successThreshold", 1)
    return pod


def test_the_healthcheck_manifest_carries_what_the_readiness_scenario_states():
    assert rg.admitted_problems([healthcheck_template_pod()]) == []


def test_the_deadlines_and_the_floor_come_from_the_stated_readiness_probe():
    assert rg.NOT_READY_DEADLINE_S == 1 * 1 + 1 + rg.STATUS_MARGIN_S
    assert rg.READY_DEADLINE_S == 1 * 1 + 1 + rg.STATUS_MARGIN_S
    assert rg.ROUTING_BOUND_S == rg.SLICE_BOUND_S + rg.PROXY_BOUND_S
    assert rg.Timers.of_pod(healthcheck_template_pod()) == rg.Timers(
        {**rg.READINESS, "httpGet": {"path": "/readyz", "port": "http"}}
    )
    assert rg.FLOOR.total_s == 1 + 1 + 1 + rg.ROUTING_BOUND_S + rg.OUT_WINDOW_S + 1 + 1


def test_an_admitted_readiness_probe_moves_the_deadlines_and_the_floor():
    pod = healthcheck_template_pod()
    pod["spec"]["containers"][0]["readinessProbe"].update(periodSeconds=5, failureThreshold=3)
    timers = rg.Timers.of_pod(pod)
    assert timers.not_ready_deadline_s == 5 * 3 + 1 + rg.STATUS_MARGIN_S
    assert timers.ready_deadline_s == 5 * 1 + 1 + rg.STATUS_MARGIN_S
    assert timers.floor().total_s == rg.FLOOR.total_s + (5 - 1) + (15 - 1) + (5 - 1)
    # ... and the read-back refuses it, in one line naming the field, no part
    found = rg.admitted_problems([pod])
    assert [p for p in found if "periodSeconds is 5" in p]
    line = admitted.rewritten(found, "the healthcheck pods")
    assert re.search(r"admission webhook or policy rewrote it.*readinessProbe", line)
    assert not ANY_PART.search(line)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda spec: spec.update(readinessGates=[{"conditionType": "x"}]), "readinessGates"),
        (
            lambda spec: spec["containers"][0]["readinessProbe"].update(successThreshold=3),
            "successThreshold",
        ),
        # liveness on the readiness path: the flip would restart the pod
        (
            lambda spec: spec["containers"][0]["livenessProbe"]["httpGet"].update(path="/readyz"),
            "livenessProbe",
        ),
        (lambda spec: spec["containers"][0].pop("readinessProbe"), "readinessProbe"),
    ],
)
def test_the_read_back_names_each_field_it_depends_on(change, problem):
    pod = healthcheck_template_pod()
    change(pod["spec"])
    found = rg.admitted_problems([pod])
    assert found
    assert problem in found[0]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"type": "ClusterIP", "clusterIP": "10.96.0.9"}, None),
        ({"clusterIP": "10.96.0.9", "sessionAffinity": "ClientIP"}, "sessionAffinity"),
        ({"clusterIP": "None"}, "expected a virtual IP"),
    ],
)
def test_the_read_back_of_the_service(spec, problem):
    service = {
        "metadata": {"name": "healthcheck"},
        "spec": {
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            **spec,
        },
    }
    found = rg.admitted_problems([healthcheck_template_pod()], service)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1
        assert problem in found[0]


# -- the steps out and back -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "needed", "words"),
    [
        (10.0, 10.5, True, None),
        (10.0, 11.0, True, None),  # on the bound
        (10.0, 9.8, True, None),  # before its start (two watches, two clocks): no lag
        (10.0, 11.3, True, "took 1.30s (bound 1s): the EndpointSlice controller"),
        (10.0, None, True, "not seen by the end of the run (the EndpointSlice controller"),
        (10.0, None, False, None),  # nothing more to stop
        (None, 10.5, True, "when it began was not seen"),
        (None, None, True, "when it began was not seen"),
    ],
)
def test_a_step_is_bounded_and_names_its_part_only_when_it_was_seen(start, end, needed, words):
    step = proofs.Step("x -> y", start, end, 1.0, proofs.ENDPOINTSLICE_CONTROLLER, needed=needed)
    found = step.problem()
    if words is None:
        assert found is None
    else:
        assert words in found
    if start is None:
        assert not ANY_PART.search(found)
        assert step.lag_s is None


def test_step_problems_keep_the_order_and_skip_the_good_ones():
    steps = [
        proofs.Step("a", 0.0, 0.5, 1.0, proofs.KUBELET),
        proofs.Step("b", 0.5, 3.0, 1.0, proofs.ENDPOINTSLICE_CONTROLLER),
        proofs.Step("c", 3.0, 9.0, 2.0, proofs.KUBE_PROXY),
    ]
    found = proofs.step_problems(steps)
    assert [text.split(" ", 1)[0] for text in found] == ["b", "c"]
    assert CONTROLLER.search(found[0])
    assert KUBE_PROXY.search(found[1])
    assert proofs.step_problems([]) == []


def test_the_parts_words_match_suite_parts():
    assert CONTROLLER.search(proofs.ENDPOINTSLICE_CONTROLLER)
    assert KUBE_PROXY.search(proofs.KUBE_PROXY)
    assert not CONTROLLER.search(proofs.KUBE_PROXY)
    assert not KUBE_PROXY.search(proofs.ENDPOINTSLICE_CONTROLLER)


# -- what the EndpointSlices list ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeline", "wanted", "words"),
    [
        ([(1.0, {"s": True, "h": True})], {"s": True, "h": True}, None),
        ([(1.0, {"s": True, "h": True}), (2.0, {"s": False, "h": True})], {"s": False}, None),
        ([(1.0, {"h": True})], {"s": False, "h": True}, None),  # not listed at all: not ready
        ([(1.0, {"s": True, "h": True})], {"s": False}, "expected pod/s not listed as ready"),
        ([(1.0, {})], {"s": True, "h": True}, "list as ready: none; expected pod/h listed"),
        ([], {"s": True}, "no EndpointSlice of the Service was recorded"),
        ([(1.0, {"s": True})], {}, "no pod to look for"),
    ],
)
def test_listing_problem(timeline, wanted, words):
    found = proofs.listing_problem(timeline, wanted)
    if words is None:
        assert found is None
    else:
        assert words in found


@pytest.mark.parametrize(
    ("wanted", "watched", "words"),
    [
        ({"s": True, "h": True}, True, "did not add Ready pod/h, pod/s"),
        ({"s": False, "h": True}, True, "did not add Ready pod/h or take NotReady pod/s out"),
        ({"s": False}, False, None),
    ],
)
def test_listing_blame_names_the_controller_only_on_evidence(wanted, watched, words):
    text = proofs.listing_blame(wanted, watched=watched)
    if words is None:
        assert not ANY_PART.search(text)
    else:
        assert words in text
        assert CONTROLLER.search(text)


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ([], "reported no failed readiness probe"),
        ([event("pod/s", "Unhealthy", "Readiness probe failed: 503")], "did not turn False"),
        ([event("pod/x", "Unhealthy", "Readiness probe failed: 503")], "reported no failed"),
    ],
)
def test_not_ready_blame_names_the_kubelet_from_its_events(events, words):
    text = proofs.not_ready_blame(events, "s")
    assert words in text
    assert text.startswith("the kubelet")


# -- the answers ---------------------------------------------------------------------------------

#: The other pod "h" answering every 0.1 s from 10.0 to 19.9, the flipped "s" until 12.0 and
#: again from 18.0.
SERVED = [answer(10.0 + 0.1 * i, pod="h") for i in range(100)] + [
    *[answer(10.05 + 0.1 * i, pod="s") for i in range(20)],
    *[answer(18.05 + 0.1 * i, pod="s") for i in range(19)],
]


def test_last_and_first_answers_from_the_pod():
    assert proofs.last_answer_from(SERVED, "s", 10.0, 17.0).start == pytest.approx(11.95)
    assert proofs.first_answer_from(SERVED, "s", 17.0).start == pytest.approx(18.05)
    failed = [answer(12.5, pod="s", ok=False)]
    assert proofs.last_answer_from(failed, "s", 10.0, 17.0) is None  # a failure is no answer
    assert proofs.last_answer_from([], "s", 10.0, 17.0) is None
    assert proofs.first_answer_from([], "s", 10.0) is None


@pytest.mark.parametrize(
    ("extra", "start", "end", "words"),
    [
        ([], 13.0, 17.0, []),
        ([answer(15.0, pod="s")], 13.0, 17.0, ["reached pod/s", "kube-proxy) kept routing"]),
        ([answer(15.0, pod=None, ok=False, error="timeout")], 13.0, 17.0, ["1 of", "failed"]),
        ([], 17.0, 13.0, ["is empty"]),
        ([], 30.0, 40.0, ["no request started"]),
    ],
)
def test_out_of_service_problems(extra, start, end, words):
    found = " ".join(
        proofs.out_of_service_problems([*SERVED, *extra], "s", start, end, listed_out=12.2)
    )
    for word in words:
        assert word in found
    if not words:
        assert found == ""


def test_a_pod_reached_before_its_slice_changed_does_not_blame_the_proxy():
    # the slice was never seen dropping it: the controller's step names the part, not this
    found = proofs.out_of_service_problems(
        [*SERVED, answer(15.0, pod="s")], "s", 13.0, 17.0, listed_out=None
    )
    assert found
    assert not KUBE_PROXY.search(" ".join(found))


@pytest.mark.parametrize(
    ("answers", "words"),
    [
        (SERVED, None),
        ([*SERVED, answer(12.5, pod=None, ok=False, error="refused")], "1 of"),
        ([answer(5.0, pod="h")], "no request started after the flip"),
        ([], "no request started after the flip"),
    ],
)
def test_failed_problem(answers, words):
    found = proofs.failed_problem(answers, 10.0)
    if words is None:
        assert found is None
    else:
        assert words in found


# -- never restarted -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "events", "words"),
    [
        ({"s": 0, "h": 0}, [event("pod/s", "Unhealthy", "Readiness probe failed: 503")], []),
        ({"s": 1, "h": 0}, [], ["restarted pod/s (restartCount 0 -> 1)"]),
        ({"s": 0, "h": 2}, [], ["restarted pod/h (restartCount 0 -> 2)"]),
        ({"h": 0}, [], ["pod/s is gone"]),
        (
            {"s": 0, "h": 0},
            [event("pod/s", "Unhealthy", "Liveness probe failed: HTTP probe failed: 503")],
            ["reported Unhealthy for pod/s"],
        ),
        (
            {"s": 0, "h": 0},
            [event("pod/s", "Killing", "Container healthcheck failed liveness probe")],
            ["reported Killing for pod/s"],
        ),
        ({"s": 0, "h": 0}, [event("pod/h", "Killing", "Stopping container")], []),
    ],
)
def test_not_restarted_problems(after, events, words):
    found = proofs.not_restarted_problems({"s": 0, "h": 0}, after, events, "s")
    assert len(found) == len(words), found
    for word, text in zip(words, found, strict=True):
        assert word in text


def test_not_restarted_needs_the_counts_from_before():
    assert proofs.not_restarted_problems({}, {}, [], "s") == [
        "no restartCount was read before the flip"
    ]

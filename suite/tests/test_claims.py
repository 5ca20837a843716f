"""claims: the behaviour's own failures told apart from preconditions; admitted: read-back."""

from __future__ import annotations

import pytest

from suite import admitted, claims
from suite.admitted import ABSENT
from suite.traffic import ProbeError
from suite.waiting import WaitTimeout


def test_an_assertion_inside_the_behaviour_block_is_the_behaviours_failure() -> None:
    with pytest.raises(claims.ClaimFailed) as caught, claims.behaviour():
        raise AssertionError("no restart came: the kubelet")
    failure = claims.classify(caught.value, "call")
    assert failure.kind == claims.BEHAVIOUR
    assert failure.message == "no restart came: the kubelet"


@pytest.mark.parametrize("error", [WaitTimeout("timed out"), ProbeError("no answer")])
def test_a_failed_wait_or_probe_inside_the_block_is_the_behaviours_failure(error) -> None:
    with pytest.raises(claims.ClaimFailed), claims.behaviour():
        raise error


def test_other_errors_pass_the_block_unchanged() -> None:
    with pytest.raises(KeyError), claims.behaviour():
        raise KeyError("bug")


def test_outside_the_block_a_failure_is_a_precondition_and_in_setup_a_setup_failure() -> None:
    assert claims.classify(AssertionError("the prober never came up"), "call").kind == (
        claims.PRECONDITION
    )
    assert claims.classify(claims.ClaimFailed("x"), "setup").kind == claims.BEHAVIOUR
    assert claims.classify(RuntimeError("no cluster"), "setup").kind == claims.SETUP


def test_the_message_is_the_exceptions_own_without_pytests_explanation() -> None:
    error = AssertionError("kube-proxy did not route\nassert not ['kube-proxy source text']")
    assert claims.message_of(error) == "kube-proxy did not route"
    failure = claims.classify(error, "call")
    assert claims.Failure.from_dict(failure.to_dict()) == failure
    assert claims.Failure.from_dict({"kind": "other"}) is None
    assert claims.Failure.from_dict("text") is None


def test_read_back_names_the_object_the_field_expected_and_seen() -> None:
    pod = {
        "metadata": {"name": "web-1"},
        "spec": {
            "readinessGates": [{"conditionType": "x"}],
            "containers": [
                {"name": "web", "readinessProbe": {"periodSeconds": 30}},
                {"name": "sidecar"},
            ],
        },
    }
    expected = {
        "spec": {
            "readinessGates": ABSENT,
            "containers": [
                {"name": "web", "readinessProbe": {"periodSeconds": 1}},
                {"name": "gone"},
            ],
        }
    }
    found = admitted.problems(pod, expected, kind="pod")
    assert found == [
        "pod/web-1: spec.readinessGates is [{'conditionType': 'x'}], expected <not set>",
        "pod/web-1: spec.containers[web].readinessProbe.periodSeconds is 30, expected 1",
        "pod/web-1: spec.containers[gone] is <not set>, expected 'present'",
    ]
    line = admitted.rewritten(found, "the web pods")
    assert "admitted" in line
    assert "admission" in line
    assert "periodSeconds is 30" in line


def test_read_back_of_what_was_admitted_as_submitted_finds_nothing() -> None:
    service = {"metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "ports": [{"name": "h"}]}}
    expected = {"spec": {"type": "ClusterIP", "sessionAffinityConfig": ABSENT}}
    assert admitted.problems(service, expected, kind="service") == []
    assert admitted.all_problems([], expected, kind="pod") == ["no pod was there to read back"]


def test_workload_problems_reads_the_pods_and_wants_the_service_to_have_a_virtual_ip():
    pod = {"metadata": {"name": "web-1"}, "spec": {"restartPolicy": "Always"}}
    service = {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}}
    expected_pod = {"spec": {"restartPolicy": "Always"}}
    expected_service = {"spec": {"type": "ClusterIP"}}
    assert admitted.workload_problems([pod], expected_pod) == []
    assert admitted.workload_problems([], expected_pod) == ["no pod was there to read back"]
    assert admitted.workload_problems([pod], expected_pod, service, expected_service) == [
        "service/web: spec.clusterIP is 'None', expected a virtual IP"
    ]
    service["spec"]["clusterIP"] = "10.96.0.12"
    assert admitted.workload_problems([pod], expected_pod, service, expected_service) == []
    service["spec"]["type"] = "NodePort"
    (line,) = admitted.workload_problems([pod], expected_pod, service, expected_service)
    assert line.startswith("service/web: spec.type is 'NodePort'")

"""Load balancing's per-node, per-path check: what counts as a working path, and which part the
evidence names when one is not (no cluster)."""

from __future__ import annotations

from suite.behaviours.load_balancing import test_load_balancing as lb
from suite.traffic import Answer, ProbeRequest, ProbeResult

READY = ["getip-a", "getip-b"]
IP = "10.96.0.10"


def result(via: str, pods: list[str | None], address: str = f"{IP}:80") -> ProbeResult:
    answers = [
        Answer(
            n,
            0.0,
            0.1,
            200 if pod else None,
            pod is not None,
            pod,
            "v1",
            None if pod else "timeout",
        )
        for n, pod in enumerate(pods)
    ]
    return ProbeResult(
        ProbeRequest(url="http://getip/", via=via),
        answers=answers,
        summaries=[{"address": address}],
    )


def test_a_path_works_when_every_replica_answered_and_none_failed() -> None:
    assert lb._path_problem(result("service-env", ["getip-a", "getip-b"]), READY, IP) is None
    assert lb._path_problem(result("dns", ["getip-a", "getip-b"], "x:80"), READY, IP) is None


def test_a_path_fails_on_a_failed_request_a_silent_replica_or_another_address() -> None:
    assert "1 failed" in str(
        lb._path_problem(result("dns", ["getip-a", "getip-b", None]), READY, IP)
    )
    assert "never answered: ['getip-b']" in str(
        lb._path_problem(result("dns", ["getip-a"]), READY, IP)
    )
    assert "not the Service's ClusterIP" in str(
        lb._path_problem(result("service-env", READY, "10.1.1.1:80"), READY, IP)
    )


def test_the_diagnosis_names_the_part_the_evidence_points_at() -> None:
    nodes = ["n1", "n2"]
    missing = lb._diagnosis({("n1", "dns"): "x"}, nodes, ["getip-a"], READY, IP)
    assert "EndpointSlice controller" in missing
    assert "kube-proxy" not in missing
    proxy = lb._diagnosis({("n2", "service-env"): "x", ("n2", "dns"): "x"}, nodes, READY, READY, IP)
    assert "service proxy (kube-proxy) on n2" in proxy
    assert "CoreDNS" not in proxy
    dns = lb._diagnosis({("n1", "dns"): "x"}, nodes, READY, READY, IP)
    assert "CoreDNS" in dns
    assert "kube-proxy" not in dns

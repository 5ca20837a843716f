import json
import time

import pytest

from suite import images, namespaces, report
from suite.kube import KubeError
from suite.preflight import (
    NO_METRICS,
    NODE_STATUS_MAX_IMAGES,
    ClusterError,
    ClusterFacts,
    NodeFact,
    can_i,
    connect,
    metrics_api_problem,
    missing_images,
    node_facts,
    node_problem,
    permission_problem,
)
from suite.session import SessionState, TestOutcome
from suite.settings import Settings, running_in_ci
from suite.tests.fakes import FakeKube
from suite.tests.test_plugin import unreachable_kubeconfig


def settings(tmp_path):
    return Settings(None, None, None, None, False, tmp_path / "reports", False, "")


# -- namespaces ------------------------------------------------------------------------------------


def test_create_uses_labels_and_falls_back_to_the_hashed_name_on_conflict():
    taken = {"ka-r1-x"}

    def post(method, path, query, body):
        name = body["metadata"]["name"]
        if name in taken:
            raise KubeError(409, "Conflict")
        return body

    kube = FakeKube().on("POST", "/api/v1/namespaces", post)
    name = namespaces.create(
        kube, run_id="r1", worker="gw0", test_name="test_x", nodeid="b.py::test_x"
    )
    assert name.startswith("ka-r1-x-")
    body = kube.calls[-1][3]
    assert body["metadata"]["labels"]["kube-alive/run-id"] == "r1"
    assert body["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert body["metadata"]["annotations"]["kube-alive/test"] == "b.py::test_x"


def test_delete_and_sweep():
    items = [
        {"metadata": {"name": "ka-r1-a"}},
        {"metadata": {"name": "ka-r1-b", "deletionTimestamp": "2025-01-01T00:00:00Z"}},
        {"metadata": {"name": "ka-r1-c"}},
    ]
    kube = (
        FakeKube()
        .on("GET", "/api/v1/namespaces", {"items": items, "metadata": {}})
        .on("DELETE", "/api/v1/namespaces/ka-r1-a", {})
        .on("DELETE", "/api/v1/namespaces/ka-r1-c", KubeError(404, "Not Found"))
    )
    assert namespaces.sweep(kube, "kube-alive/run-id=r1") == ["ka-r1-a"]
    assert kube.calls[0][2]["labelSelector"] == "kube-alive/run-id=r1"
    assert kube.calls[1][3]["propagationPolicy"] == "Background"


# -- session state -------------------------------------------------------------------------------


class FakeConfig:
    def __init__(self, workerinput=None):
        if workerinput is not None:
            self.workerinput = workerinput


def test_controller_and_worker_share_run_id_and_directory(tmp_path):
    controller = SessionState.from_config(FakeConfig(), settings(tmp_path))
    assert controller.worker == "main"
    assert not controller.has_shared_dir
    worker = SessionState.from_config(
        FakeConfig(
            {
                "workerid": "gw1",
                "kube_alive_run_id": controller.run_id,
                "kube_alive_shared_dir": str(controller.shared_dir),
            }
        ),
        settings(tmp_path),
    )
    assert (worker.run_id, worker.worker, worker.is_worker) == (controller.run_id, "gw1", True)
    worker.write_cluster({"provider": "local"})
    worker.write_record("a.py::test_x", {"nodeid": "a.py::test_x", "figures": {"n": 1}})
    assert controller.read_cluster() == {"provider": "local"}
    assert controller.read_records()["a.py::test_x"]["figures"] == {"n": 1}
    directory = controller.shared_dir
    worker.remove_shared_dir()  # only the controller removes it
    assert directory.is_dir()
    controller.remove_shared_dir()
    assert not directory.exists()


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("1", True), ("", False), ("false", False)]
)
def test_ci_detection(value, expected):
    assert running_in_ci({"CI": value}) is expected


# -- preflight -----------------------------------------------------------------------------------


def node(name, ready=True, arch="amd64"):
    return {
        "metadata": {"name": name},
        "status": {
            "nodeInfo": {"architecture": arch, "osImage": "Debian", "kubeletVersion": "v1.34.1"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_node_problems():
    facts = node_facts([node("a"), node("b", arch="arm64"), node("c", ready=False, arch="arm")])
    assert facts[1] == NodeFact("b", True, "arm64", "Debian", "v1.34.1")
    assert node_problem(facts, {"amd64"}) == (
        "no workload image for node b (arm64): the images are built for amd64, not arm64; "
        "build them for arm64 too (scripts/build-images.sh) or use nodes of those architectures"
    )
    assert node_problem(facts, {"amd64", "arm64"}) is None  # c is not Ready: not used
    # A 32-bit Raspberry Pi OS node (kubernetes.io/arch=arm) has its image in the default push.
    pi = node_facts([node("pi-zero-2", arch="arm")])
    assert node_problem(pi, set(images.PUSHED_ARCHITECTURES)) is None
    assert node_problem(facts, None) is None
    assert node_problem(node_facts([node("a", ready=False), node("b", ready=False)]), None) == (
        "no node is Ready (not Ready: a, b): the scenarios need at least one; "
        "see kubectl describe nodes"
    )
    assert node_problem([], None).startswith("the cluster has no nodes")


def test_missing_images_per_ready_node():
    refs = ["localhost/kube-alive/workloads:v1", "localhost/kube-alive/workloads:v2"]

    def with_images(obj, *names):
        obj["status"]["images"] = [{"names": [name, f"{name}@sha256:0"]} for name in names]
        return obj

    nodes = [
        with_images(node("has-both"), *refs),
        with_images(node("has-v1"), refs[0], "other:1"),
        node("has-none"),
        node("down", ready=False),
        with_images(node("full"), *(f"big:{n}" for n in range(NODE_STATUS_MAX_IMAGES))),
    ]
    assert missing_images(nodes, refs) == {"has-v1": [refs[1]], "has-none": refs}


def test_permissions_and_metrics():
    def review(method, path, query, body):
        allowed = body["spec"]["resourceAttributes"]["verb"] == "create"
        return {"status": {"allowed": allowed, "reason": "" if allowed else "RBAC: denied"}}

    kube = FakeKube().on("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
    assert can_i(kube, "create", "namespaces") == (True, "")
    assert permission_problem(kube) == (
        "the current user may not delete namespaces (RBAC: denied), list namespaces "
        "(RBAC: denied), list nodes (RBAC: denied): use a context with those rights "
        "(e.g. cluster-admin on a test cluster)"
    )
    kube.on(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"status": {"userInfo": {"username": "pi-user"}}},
    )
    assert permission_problem(kube).startswith("user pi-user may not delete namespaces")
    everything = FakeKube().on(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {"status": {"allowed": True}},
    )
    assert permission_problem(everything) is None
    missing = FakeKube()
    assert metrics_api_problem(missing) == f"{NO_METRICS} (not registered)"
    assert NO_METRICS == "no metrics API (v1beta1.metrics.k8s.io): install metrics-server"
    present = FakeKube().on("GET", "/apis/metrics.k8s.io/v1beta1", {"resources": []})
    assert metrics_api_problem(present) is None
    assert metrics_api_problem(present, "v1beta1.custom.metrics.k8s.io") == (
        "no metrics API (v1beta1.custom.metrics.k8s.io): install metrics-server (not registered)"
    )
    assert present.paths()[-1] == "/apis/custom.metrics.k8s.io/v1beta1"
    unavailable = FakeKube().on(
        "GET", "/apis/metrics.k8s.io/v1beta1", KubeError(503, "Service Unavailable", "no endpoints")
    )
    assert metrics_api_problem(unavailable) == f"{NO_METRICS} (no endpoints)"


def test_connect_fails_clearly_and_fast(tmp_path):
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig")
    started = time.monotonic()
    with pytest.raises(
        ClusterError, match=r"cannot reach the API server https://127.0.0.1:1 \(context nowhere"
    ):
        connect(kubeconfig, None, timeout_s=6)
    assert time.monotonic() - started < 7


def test_cluster_facts_summary_and_round_trip():
    facts = ClusterFacts(
        "local", "admin", "https://127.0.0.1:6443", "v1.34.1", [NodeFact("n1", True, "amd64")], None
    )
    assert facts.summary() == (
        "cluster local, context admin, server https://127.0.0.1:6443, Kubernetes v1.34.1, "
        "1/1 nodes Ready (amd64), metrics API present"
    )
    assert ClusterFacts.from_dict(json.loads(json.dumps(facts.to_dict()))) == facts


# -- report --------------------------------------------------------------------------------------


def test_report_document_and_html():
    outcomes = {
        "s.py::test_a": TestOutcome(
            "s.py::test_a",
            "failed",
            3.2,
            "AssertionError: boom",
            [("kube-alive: events in ns", "Warning BackOff")],
        ),
        "s.py::test_b": TestOutcome("s.py::test_b", "skipped", 0.0, skip_reason="needs a cluster"),
    }
    records = {
        "s.py::test_a": {
            "nodeid": "s.py::test_a",
            "namespace": "ns",
            "figures": {"p_value": 0.62},
            "probes": [
                {
                    "label": "lb",
                    "request": {"url": "http://getip/"},
                    "sent": 400,
                    "ok": 400,
                    "failed": 0,
                    "by_pod": {"a": 200, "b": 200},
                    "by_version": {"v1": 400},
                }
            ],
            "recording": {"marks": []},
        }
    }
    document = report.build(
        run_id="r1",
        started=100.0,
        ended=160.0,
        exitstatus=1,
        cluster={
            "describe": "local",
            "facts": ClusterFacts(
                "local", "admin", "s", "v1.34.1", [NodeFact("n", True, "amd64")]
            ).to_dict(),
        },
        outcomes=outcomes,
        records=records,
    )
    assert document["counts"] == {"failed": 1, "skipped": 1}
    assert document["tests"][0]["figures"] == {"p_value": 0.62}
    assert document["tests"][0]["evidence"] == [["kube-alive: events in ns", "Warning BackOff"]]
    html = report.render_html(json.loads(json.dumps(document)))
    assert "s.py::test_a" in html
    assert "Warning BackOff" in html
    assert "400 sent, 400 answered, 0 failed" in html
    assert "<script" not in html
    assert "http://" not in html.replace("http://getip/", "")


def test_connect_to_a_server_that_never_answers_is_bounded(tmp_path):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the kernel; nobody ever answers
    port = silent.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""
apiVersion: v1
kind: Config
clusters: [{{name: s, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: me, user: {{token: t}}}}]
contexts: [{{name: s, context: {{cluster: s, user: me}}}}]
current-context: s
"""
    )
    started = time.monotonic()
    try:
        with pytest.raises(
            ClusterError, match=f"cannot reach the API server http://127.0.0.1:{port}"
        ):
            connect(kubeconfig, None, timeout_s=2)
    finally:
        silent.close()
    assert time.monotonic() - started < 4

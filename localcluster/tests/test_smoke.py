"""Smoke tests of the local cluster itself: each checks one thing the scenarios rely on.

They run with `--cluster=local` (part of `pytest --cluster=local`, so part of CI), against the
running cluster, each in its own namespace. The numbers are the local cluster's own settings.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from localcluster import config
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.kube import PODS, get_object, name_of, restart_count
from suite.traffic import Prober, ProbeRequest
from suite.waiting import Done, Pending, Verdict
from suite.waits import wait_hpa, wait_pod

#: The issue's bound: CPU of a new pod in the metrics API within 60 s of the pod starting
#: (metrics-server needs two scrapes at 15 s resolution for a rate, plus start-up).
POD_METRICS_DEADLINE_S = 60
#: The HPA reads metrics every 15 s (controller-manager's sync period) after the first reading
#: exists: 60 s for the reading + 15 s for the sync + 30 s margin.
HPA_READING_DEADLINE_S = POD_METRICS_DEADLINE_S + 15 + 30
#: Liveness period 1 s, threshold 1: the kubelet restarts within a few seconds; 30 s margin for
#: a busy machine (container start included).
LIVENESS_RESTART_DEADLINE_S = 1 + 30
REQUESTS = 20
#: EndpointSlice update + one kube-proxy sync (at most once a second), on a busy machine.
CONVERGE_S = 30.0


# On another cluster these would test the wrong thing: deselected there, named in the summary.
pytestmark = pytest.mark.only_on("local", reason="smoke tests of the local cluster itself")


def test_the_node_is_ready_and_runs_the_pinned_version(cluster: Cluster) -> None:
    """The API server and the kubelet report the pinned Kubernetes version."""
    version = cluster.kube.request("GET", "/version")
    assert version["gitVersion"] == config.KUBERNETES_VERSION, version
    nodes = cluster.kube.request("GET", "/api/v1/nodes")["items"]
    assert [name_of(n) for n in nodes] == [config.NODE_NAME]
    info = nodes[0]["status"]["nodeInfo"]
    assert info["kubeletVersion"] == config.KUBERNETES_VERSION, info
    assert info["containerRuntimeVersion"].startswith("containerd://"), info
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert ready["Ready"] == "True", nodes[0]["status"]["conditions"]


def test_a_local_image_runs_and_its_service_answers_from_host_and_pod(
    cluster: Cluster, namespace: str, workloads: Workloads, prober: Prober
) -> None:
    """A 2-replica Deployment of the locally built image becomes Ready; its ClusterIP answers
    from this machine and, by DNS name, from a pod."""
    workloads.deploy("getip", replicas=2)
    service = cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}/services/getip")
    cluster_ip = service["spec"]["clusterIP"]
    # kube-proxy programs the endpoints a sync after the Deployment is Ready: wait for that
    # (through the Service, from a pod; the prober takes Service names only) before counting.
    pods = [name_of(pod) for pod in workloads.pods("getip")]
    prober.converge("http://getip/", pods, timeout_s=CONVERGE_S)
    host_pods = set()
    for _ in range(REQUESTS):
        # A new client per request: a new connection, so kube-proxy picks a pod each time.
        with httpx.Client(timeout=5) as client:
            answer = client.get(f"http://{cluster_ip}/")
        assert answer.status_code == 200, f"GET http://{cluster_ip}/ -> {answer.status_code}"
        host_pods.add(answer.json()["pod"])
    assert host_pods, "no getip pod answered on the ClusterIP from the host"

    dns_name = f"getip.{namespace}.svc.{config.CLUSTER_DOMAIN}"
    result = prober.run(
        ProbeRequest(url=f"http://{dns_name}/", count=REQUESTS, concurrency=2, duration_s=60),
        label="dns",
    )
    assert not result.failed, (
        f"{len(result.failed)}/{result.sent} requests to http://{dns_name}/ from the prober pod "
        f"failed ({result.describe()}): is CoreDNS answering on {config.DNS_SERVICE_IP}?"
    )
    assert len(result.ok) == REQUESTS, result.describe()


def _pod_cpu(cluster: Cluster, namespace: str, pod: str) -> str:
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{pod}"
    metrics: dict[str, Any] = cluster.kube.request("GET", path, timeout=(5.0, 10.0))
    return str(metrics["containers"][0]["usage"]["cpu"])


def test_the_metrics_api_reports_a_new_pods_cpu_within_60_seconds(
    cluster: Cluster, namespace: str, workloads: Workloads
) -> None:
    """metrics-server (15 s resolution) serves a new pod's CPU within 60 s of its start."""
    workloads.deploy("getip", replicas=1)
    pod = workloads.pods("getip")[0]
    started = time.monotonic()
    # The metrics API has no watch: bounded retries until the pod's first reading exists.
    for attempt in Retrying(
        stop=stop_after_delay(POD_METRICS_DEADLINE_S),
        wait=wait_fixed(2),
        retry=retry_if_exception_type(Exception),
        reraise=True,
    ):
        with attempt:
            cpu = _pod_cpu(cluster, namespace, name_of(pod))
    elapsed = time.monotonic() - started
    assert cpu, "metrics API answered without CPU usage"
    assert elapsed <= POD_METRICS_DEADLINE_S


def test_a_failing_liveness_probe_restarts_the_container(
    cluster: Cluster, namespace: str, workloads: Workloads
) -> None:
    """A container whose liveness probe gets 404 is restarted by the kubelet."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "liveness-404", "labels": {"app.kubernetes.io/name": "smoke"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "getip",
                    "image": cluster.image("v1"),
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["getip"],
                    "livenessProbe": {
                        "httpGet": {"path": "/no-such-path", "port": 8080},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"},
                    },
                }
            ],
        },
    }
    cluster.kube.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=pod)

    def restarted(obj: dict[str, Any]) -> Verdict:
        count = restart_count(obj)
        return Done(obj) if count >= 1 else Pending(f"restartCount {count}")

    wait_pod(
        cluster.kube,
        namespace,
        "liveness-404",
        restarted,
        timeout_s=LIVENESS_RESTART_DEADLINE_S + 60,  # + 60 s for the first container start
        expected="restartCount >= 1 (liveness probe answers 404)",
        hint="the kubelet restarts containers whose liveness probe fails: check its log",
    )
    final = get_object(cluster.kube, PODS, namespace, "liveness-404")
    assert restart_count(final) >= 1


def test_an_hpa_shows_the_current_cpu_utilisation(
    cluster: Cluster, namespace: str, workloads: Workloads
) -> None:
    """The HPA controller reads CPU through the metrics API and reports a utilisation."""
    workloads.deploy("cpuhog")

    def has_reading(hpa: dict[str, Any]) -> Verdict:
        for metric in (hpa.get("status") or {}).get("currentMetrics") or []:
            current = (metric.get("resource") or {}).get("current") or {}
            if current.get("averageUtilization") is not None:
                return Done(current)
        conditions = {
            c["type"]: f"{c['status']} ({c.get('reason')})"
            for c in (hpa.get("status") or {}).get("conditions") or []
        }
        return Pending(f"no current CPU yet; conditions {conditions}")

    current = wait_hpa(
        cluster.kube,
        namespace,
        "cpuhog",
        has_reading,
        timeout_s=HPA_READING_DEADLINE_S,
        expected="status.currentMetrics with a CPU averageUtilization",
        hint="the HPA needs the metrics API: python -m localcluster status",
    )
    # A pod uses at most its 500m limit, 500 % of its 100m request (600 % allows for the jitter
    # of a rate over a scrape window). A value outside that is a wrong reading, not a measurement.
    utilisation = int(current["averageUtilization"])
    assert 0 <= utilisation <= 600, (
        f"hpa/cpuhog reports {utilisation}% CPU of request: outside 0..600 % (limit 500m over a "
        "100m request); is metrics-server reporting this pod's usage?"
    )

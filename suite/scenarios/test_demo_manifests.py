"""The demo's manifests as a whole: every workload of `manifests/kustomization.yaml` applies into
one namespace that enforces the Pod Security "restricted" level, and every pod becomes Ready.

This is what `kubectl apply -k manifests/` does (into namespace kube-alive), minus the namespace:
the suite's per-test namespace carries the same enforcement label.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.manifests import MANIFESTS_DIR

#: The restricted level is enforced by the API server's admission: a pod that breaks it is
#: rejected when its ReplicaSet creates it, so "every pod Ready" also proves the policy holds.
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
#: pytest-timeout backstop (suite/plugin.py): five workloads, each Ready within 120 s (READY_S of
#: suite/fixtures.py), one after the other in the worst case, plus a margin.
BACKSTOP_S = 5 * 120.0 + 60.0


def _demo_apps() -> list[str]:
    document = yaml.safe_load((MANIFESTS_DIR / "kustomization.yaml").read_text())
    return [Path(entry).name for entry in document["resources"] if (MANIFESTS_DIR / entry).is_dir()]


def test_the_whole_demo_runs_ready_under_the_restricted_pod_security_level(
    cluster: Cluster, namespace: str, workloads: Workloads
) -> None:
    """Apply every workload of the demo into one restricted namespace; all become Ready."""
    labels = cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]
    assert labels.get(ENFORCE_LABEL) == "restricted", labels
    apps = _demo_apps()
    # The frontend and its four experiments; not the prober (the suite's, deployed per test).
    assert sorted(apps) == ["cpuhog", "frontend", "getip", "healthcheck", "incver"], apps
    for app in apps:
        workloads.apply(app)
    for app in apps:
        deployment = workloads.wait_ready(app)
        ready = (deployment.get("status") or {}).get("readyReplicas", 0)
        assert ready == deployment["spec"]["replicas"], (
            f"{app}: {ready} ready of {deployment['spec']['replicas']}"
        )

"""Load balancing's decision functions: the Service as admitted, the spread over pods and
nodes.

Pure and cluster-free, each unit-tested (test_proofs.py beside it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

# -- load balancing ------------------------------------------------------------------------------


def service_problems(service: Mapping[str, Any]) -> list[str]:
    """The Service balances per connection: ClusterIP with a virtual IP, no session affinity."""
    spec = service.get("spec") or {}
    name = (service.get("metadata") or {}).get("name", "?")
    problems = []
    kind = spec.get("type", "ClusterIP")
    if kind != "ClusterIP":
        problems.append(f"service/{name} is type {kind}, not ClusterIP")
    if spec.get("clusterIP") in (None, "", "None"):
        problems.append(
            f"service/{name} is headless (clusterIP {spec.get('clusterIP')!r}): DNS, not the "
            "service proxy, would pick the pod"
        )
    affinity = spec.get("sessionAffinity", "None")
    if affinity != "None":
        problems.append(
            f"service/{name} has sessionAffinity {affinity}: one client would stick to one pod"
        )
    return problems


def share_problems(by_pod: Mapping[str, int], pods: Sequence[str], bound_pp: float) -> list[str]:
    """Each pod's share of the answers is within `bound_pp` percentage points of 1/len(pods)."""
    total = sum(by_pod.get(pod, 0) for pod in pods)
    if not pods or total == 0:
        return ["no answers to measure the spread with"]
    fair = 100.0 / len(pods)
    problems = []
    for pod in pods:
        share = 100.0 * by_pod.get(pod, 0) / total
        if abs(share - fair) > bound_pp:
            problems.append(
                f"{pod} answered {share:.1f}% ({by_pod.get(pod, 0)} of {total}), more than "
                f"{bound_pp} points from the fair {fair:.1f}%"
            )
    return problems


def node_problems(node_of_pod: Mapping[str, str], by_pod: Mapping[str, int]) -> list[str]:
    """Every node holding a replica served answers from a replica on it."""
    if not node_of_pod:
        return ["no replica with a known node"]
    by_node: Counter[str] = Counter()
    for pod, node in node_of_pod.items():
        by_node[node or "?"] += by_pod.get(pod, 0)
    silent = sorted(node for node, count in by_node.items() if count == 0)
    if silent:
        return [f"no answer came from the replicas on node(s) {', '.join(silent)}"]
    return []


def spread_problem(node_of_pod: Mapping[str, str], schedulable_nodes: int) -> str | None:
    """With two or more schedulable nodes, the replicas landed on at least two."""
    nodes = {node for node in node_of_pod.values() if node}
    if schedulable_nodes >= 2 and len(nodes) < 2:
        return (
            f"all {len(node_of_pod)} replicas run on {sorted(nodes)} although {schedulable_nodes} "
            "nodes are schedulable (manifests/getip spreads them by hostname)"
        )
    return None

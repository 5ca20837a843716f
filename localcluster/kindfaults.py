"""Faults on one node of a multi-node kind cluster: `python -m localcluster kind-fault ...`.

The local cluster has one node, so a fault there breaks every client alike. On kind (one control
plane, two workers) a fault can break a single worker while the others stay healthy: the suite
must then name that node, not just fail.

`node-service-routing-dropped`: on the last worker, every packet to the cluster's Service range
is dropped in the node's `raw` table, before the service proxy's DNAT can rewrite it. Pods on that
node reach no ClusterIP (nor cluster DNS, itself a ClusterIP), exactly as when the node's
kube-proxy does not route; pods on the other nodes are untouched. Dropping (not flushing
kube-proxy's rules) also keeps every unrewritten packet on the node: nothing leaves through a
default route. The rule is tagged with a comment, so `clear` removes exactly it.

While a kind fault is applied, the same lock file as the local cluster's faults names it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from localcluster import faults
from localcluster.util import ClusterError, Log

#: kind's Service range as the suite creates the cluster (suite/providers/kind.py).
SERVICE_SUBNET = "10.97.0.0/16"
COMMENT = "kube-alive-fault"
DOCKER_TIMEOUT_S = 60


@dataclass(frozen=True)
class KindFault:
    """One way to break one node of a kind cluster."""

    name: str
    broken: str
    how: str


FAULTS = {
    fault.name: fault
    for fault in (
        KindFault(
            "node-service-routing-dropped",
            "Service routing on one worker node (its service proxy, kube-proxy)",
            f"on the last worker, packets to the Service range {SERVICE_SUBNET} are dropped in "
            "iptables' raw table, before kube-proxy's DNAT (the other nodes are untouched)",
        ),
    )
}


def _docker(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`docker ARGS` on the engine DOCKER_HOST names; a failure (with `check`) is one line."""
    try:
        done = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ClusterError(f"docker {' '.join(args[:3])}: {error}") from None
    if check and done.returncode != 0:
        raise ClusterError(
            f"docker {' '.join(args)} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-300:]}"
        )
    return done


def workers(cluster: str) -> list[str]:
    """The worker nodes' containers of kind cluster `cluster`, by name."""
    found = _docker(
        ["ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster}", "--format", "{{json .}}"]
    )
    names = []
    for line in found.stdout.splitlines():
        entry = json.loads(line)
        if "control-plane" not in str(entry.get("Names")):
            names.append(str(entry.get("Names")))
    return sorted(names)


def target(cluster: str) -> str:
    """The node a fault breaks: the last worker (a cluster with fewer than two workers has no
    node to break alone)."""
    nodes = workers(cluster)
    if len(nodes) < 2:
        raise faults.FaultNotApplicable(
            f"kind cluster {cluster} has {len(nodes)} worker(s) {nodes}: a one-node fault needs "
            "two or more, so that the others stay healthy"
        )
    return nodes[-1]


def _rule(action: str) -> list[str]:
    return [
        "iptables",
        "-t",
        "raw",
        action,
        "PREROUTING",
        "-d",
        SERVICE_SUBNET,
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-j",
        "DROP",
    ]


def _present(node: str) -> bool:
    return _docker(["exec", node, *_rule("-C")], check=False).returncode == 0


def lookup(name: str) -> KindFault:
    """The kind fault called `name`; an unknown one raises one line listing the known ones."""
    try:
        return FAULTS[name]
    except KeyError:
        raise ClusterError(
            f"unknown kind fault {name!r}; known kind faults: {', '.join(FAULTS)}"
        ) from None


def apply(cluster: str, name: str, log: Log) -> str:
    """Break one worker of `cluster` as `name` says; returns the node."""
    lookup(name)
    node = target(cluster)
    faults.lock_path().write_text(f"{name} on {node}\n")
    if not _present(node):
        _docker(["exec", node, *_rule("-I")])
    if not _present(node):
        raise ClusterError(f"{name}: the rule did not show in {node}'s raw table")
    log(f"kind fault {name} applied on {node}")
    return node


def clear(cluster: str, log: Log) -> list[str]:
    """Remove every kind fault's rule from every worker; returns the nodes it was on."""
    cleared = []
    for node in workers(cluster):
        while _present(node):
            _docker(["exec", node, *_rule("-D")])
            cleared.append(node)
    faults.lock_path().unlink(missing_ok=True)
    log(f"kind faults cleared{' on ' + ', '.join(cleared) if cleared else ' (none applied)'}")
    return cleared

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

`node-lifecycle-controller-off` and `disruption-controller-off`: kube-controller-manager, a
static pod in the control-plane node's container, is restarted without that one controller
(`--controllers=...,-<name>`, kube-controller-manager's own switch), as a cluster whose
controller manager lost it would run: nodes that stop reporting are never tainted nor their pods
evicted, or PodDisruptionBudgets' status is never computed (so the Eviction API refuses every
eviction). Every other controller keeps running. The original manifest is kept beside the
static pod directory (the kubelet reads every file inside it), and `clear` puts it back and waits
for the controller manager to run with its original flags.

While a kind fault is applied, the same lock file as the local cluster's faults names it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from localcluster import faults
from localcluster.util import ClusterError, Log

#: kind's Service range as the suite creates the cluster (suite/providers/kind.py).
SERVICE_SUBNET = "10.97.0.0/16"
COMMENT = "kube-alive-fault"
DOCKER_TIMEOUT_S = 60
#: kube-controller-manager's static pod manifest in kind's control-plane node, and where the
#: original is kept while a controller fault is applied (outside the static pod directory).
CONTROLLER_MANAGER_MANIFEST = "/etc/kubernetes/manifests/kube-controller-manager.yaml"
CONTROLLER_MANAGER_KEPT = "/etc/kubernetes/kube-controller-manager.yaml.kube-alive"
#: The kubelet sees a changed static pod file within its file-check period (20 s) and restarts
#: the container; the process with the new flags must run within this.
RESTART_DEADLINE_S = 90.0
POLL_S = 1.0
#: Every process's command line in a node, one a line (from /proc: no procps needed).
CMDLINES = "for p in /proc/[0-9]*; do tr '\\0' ' ' <\"$p/cmdline\" 2>/dev/null; echo; done"


@dataclass(frozen=True)
class KindFault:
    """One way to break one node of a kind cluster."""

    name: str
    broken: str
    how: str
    #: kube-controller-manager's name for the controller this fault turns off; "" for the
    #: node-routing fault (which breaks the last worker instead).
    controller: str = ""


FAULTS = {
    fault.name: fault
    for fault in (
        KindFault(
            "node-service-routing-dropped",
            "Service routing on one worker node (its service proxy, kube-proxy)",
            f"on the last worker, packets to the Service range {SERVICE_SUBNET} are dropped in "
            "iptables' raw table, before kube-proxy's DNAT (the other nodes are untouched)",
        ),
        KindFault(
            "node-lifecycle-controller-off",
            "the node lifecycle controller (kube-controller-manager)",
            "kube-controller-manager restarted with --controllers=...,-node-lifecycle-controller: "
            "a node that stops reporting is never marked NotReady, tainted or evicted",
            controller="node-lifecycle-controller",
        ),
        KindFault(
            "disruption-controller-off",
            "the disruption controller (kube-controller-manager)",
            "kube-controller-manager restarted with --controllers=...,-disruption-controller: no "
            "PodDisruptionBudget's status is computed, so the Eviction API refuses every eviction",
            controller="disruption-controller",
        ),
    )
}


def _docker(
    args: Sequence[str], *, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker ARGS` on the engine DOCKER_HOST names; a failure (with `check`) is one line."""
    try:
        done = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_S,
            check=False,
            input=input_text,
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


def control_plane(cluster: str) -> str:
    """The control-plane node's container of kind cluster `cluster`."""
    found = _docker(
        ["ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster}", "--format", "{{json .}}"]
    )
    for line in found.stdout.splitlines():
        name = str(json.loads(line).get("Names"))
        if name.endswith("control-plane"):
            return name
    raise ClusterError(f"kind cluster {cluster} has no control-plane node running (docker ps)")


def without_controller(manifest: str, controller: str) -> str:
    """kube-controller-manager's static pod manifest with `controller` switched off: `-NAME`
    added to its `--controllers` flag (kind's is `--controllers=*,bootstrapsigner,tokencleaner`),
    or the flag added as `*,-NAME` when it has none."""
    lines = manifest.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip().startswith("- --controllers="):
            if f"-{controller}" not in line.strip().split("=", 1)[1].split(","):
                lines[i] = line.rstrip("\n") + f",-{controller}\n"
            return "".join(lines)
    for i, line in enumerate(lines):
        if line.strip() == "- kube-controller-manager":
            indent = line[: len(line) - len(line.lstrip())]
            lines.insert(i + 1, f"{indent}- --controllers=*,-{controller}\n")
            return "".join(lines)
    raise ClusterError(
        f"{CONTROLLER_MANAGER_MANIFEST} has no `- kube-controller-manager` command line: "
        "not a kubeadm static pod this fault knows how to change"
    )


def _controller_manager_args(node: str) -> str | None:
    """The running kube-controller-manager's command line in `node`, or None when none runs."""
    done = _docker(["exec", node, "sh", "-c", CMDLINES], check=False)
    lines = [
        line for line in done.stdout.splitlines() if line.startswith("kube-controller-manager ")
    ]
    return lines[0] if lines else None


def _await_controller_manager(node: str, want_off: str, log: Log) -> None:
    """Wait until kube-controller-manager runs in `node` with `-want_off` among its controllers
    (or, with want_off "", with none of the faults' controllers off)."""
    started = time.monotonic()
    off = [f"-{fault.controller}" for fault in FAULTS.values() if fault.controller]
    seen: str | None = None
    while time.monotonic() - started < RESTART_DEADLINE_S:
        seen = _controller_manager_args(node)
        if seen is not None:
            flags = next((a for a in seen.split() if a.startswith("--controllers=")), "")
            names = flags.split("=", 1)[1].split(",") if flags else []
            if (want_off and f"-{want_off}" in names) or (
                not want_off and not any(name in names for name in off)
            ):
                log(
                    f"kube-controller-manager runs with {flags or 'its default controllers'} "
                    f"({time.monotonic() - started:.0f}s)"
                )
                return
        time.sleep(POLL_S)
    raise ClusterError(
        f"kube-controller-manager in {node} did not restart "
        f"{'without ' + want_off if want_off else 'with its original controllers'} within "
        f"{RESTART_DEADLINE_S:.0f}s of its static pod manifest changing (the kubelet restarts "
        f"it); running: {seen or 'no kube-controller-manager process'}"
    )


def _apply_controller_off(cluster: str, fault: KindFault, log: Log) -> str:
    node = control_plane(cluster)
    kept = _docker(["exec", node, "test", "-e", CONTROLLER_MANAGER_KEPT], check=False)
    if kept.returncode != 0:
        _docker(["exec", node, "cp", "-p", CONTROLLER_MANAGER_MANIFEST, CONTROLLER_MANAGER_KEPT])
    original = _docker(["exec", node, "cat", CONTROLLER_MANAGER_KEPT]).stdout
    changed = without_controller(original, fault.controller)
    # Written beside it and renamed: the kubelet never reads half a manifest.
    _docker(
        [
            "exec",
            "-i",
            node,
            "sh",
            "-c",
            f"cat > {CONTROLLER_MANAGER_MANIFEST}.tmp && mv {CONTROLLER_MANAGER_MANIFEST}.tmp "
            f"/etc/kubernetes/manifests/kube-controller-manager.yaml",
        ],
        input_text=changed,
    )
    log(
        f"{fault.name}: kube-controller-manager's manifest on {node} switches off "
        f"{fault.controller}; waiting for the kubelet to restart it"
    )
    _await_controller_manager(node, fault.controller, log)
    return node


def _clear_controller_manager(cluster: str, log: Log) -> list[str]:
    try:
        node = control_plane(cluster)
    except ClusterError:
        return []
    if _docker(["exec", node, "test", "-e", CONTROLLER_MANAGER_KEPT], check=False).returncode:
        return []
    _docker(
        [
            "exec",
            node,
            "sh",
            "-c",
            f"cp -p {CONTROLLER_MANAGER_KEPT} {CONTROLLER_MANAGER_MANIFEST}.tmp && "
            f"mv {CONTROLLER_MANAGER_MANIFEST}.tmp {CONTROLLER_MANAGER_MANIFEST} && "
            f"rm {CONTROLLER_MANAGER_KEPT}",
        ]
    )
    log(f"kube-controller-manager's original manifest restored on {node}; waiting for it")
    _await_controller_manager(node, "", log)
    return [node]


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
    """Break `cluster` as `name` says (one worker, or one controller); returns the node."""
    fault = lookup(name)
    if fault.controller:
        faults.lock_path().write_text(f"{name} on {cluster}'s control plane\n")
        node = _apply_controller_off(cluster, fault, log)
        log(f"kind fault {name} applied on {node}")
        return node
    node = target(cluster)
    faults.lock_path().write_text(f"{name} on {node}\n")
    if not _present(node):
        _docker(["exec", node, *_rule("-I")])
    if not _present(node):
        raise ClusterError(f"{name}: the rule did not show in {node}'s raw table")
    log(f"kind fault {name} applied on {node}")
    return node


def clear(cluster: str, log: Log) -> list[str]:
    """Undo every kind fault: the rule on every worker, the controller manager's original
    manifest; returns the nodes it was on."""
    cleared = _clear_controller_manager(cluster, log)
    for node in workers(cluster):
        while _present(node):
            _docker(["exec", node, *_rule("-D")])
            cleared.append(node)
    faults.lock_path().unlink(missing_ok=True)
    log(f"kind faults cleared{' on ' + ', '.join(cleared) if cleared else ' (none applied)'}")
    return cleared

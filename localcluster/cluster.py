"""`up`, `down`, `status` and image loading for the local cluster."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import platform
import re
import shutil
import string
import time
from collections.abc import Sequence
from pathlib import Path

from localcluster import build, components, config, faults, pki, processes
from localcluster.util import ClusterError, Log, poll, run

# Debian packages the node needs, and a file each one provides.
PREREQUISITES: dict[str, str] = {
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "iptables": "/usr/sbin/iptables",
    "iproute2": "/usr/sbin/ip",
    "openssl": "/usr/bin/openssl",
    "mount": "/usr/bin/mount",
}
BUILD_PREREQUISITES: dict[str, str] = {
    "buildah": "/usr/bin/buildah",
    "debootstrap": "/usr/sbin/debootstrap",
    "gcc": "/usr/bin/gcc",
}


def preflight(*, for_build: bool = False) -> None:
    """Fail with one line naming what is missing and how to get it."""
    if platform.system() != "Linux":
        raise ClusterError(f"the local cluster needs Linux (this is {platform.system()})")
    if os.geteuid() != 0:
        raise ClusterError("the local cluster needs root: run it with sudo (it starts a kubelet)")
    wanted = dict(PREREQUISITES, **(BUILD_PREREQUISITES if for_build else {}))
    missing = [pkg for pkg, path in wanted.items() if not Path(path).exists()]
    if missing:
        raise ClusterError(
            f"missing: {', '.join(missing)}; install with: apt-get install -y {' '.join(missing)}"
            " (or run localcluster/setup.sh)"
        )
    if for_build and shutil.which("go") is None:
        raise ClusterError("missing: go (1.24 or newer) on PATH, needed to build the components")


def _port_holders() -> dict[int, str]:
    out = run(["ss", "-Hltnup"], check=False).stdout
    holders: dict[int, str] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        port = fields[4].rsplit(":", 1)[-1]
        if port.isdigit():
            who = re.search(r'users:\(\("([^"]+)",pid=(\d+)', line)
            holders[int(port)] = f"{who.group(1)} (pid {who.group(2)})" if who else "unknown"
    return holders


def _check_ports(paths: config.Paths) -> None:
    ours = {
        pid
        for spec in components.specs(paths)
        if (pid := processes.pid_of(paths, spec.name)) is not None
    }
    holders = _port_holders()
    for port, component in config.PORTS.items():
        holder = holders.get(port)
        if holder is None:
            continue
        holder_pid = re.search(r"pid (\d+)", holder)
        if holder_pid and int(holder_pid.group(1)) in ours:
            continue
        raise ClusterError(
            f"port {port} (needed by {component}) is already held by {holder}; stop it, or run "
            "`python -m localcluster down` if it is a leftover of an earlier cluster"
        )


def _check_networks() -> None:
    ours = [ipaddress.ip_network(n) for n in (config.POD_CIDR, config.SERVICE_CIDR)]
    ours.append(ipaddress.ip_network(f"{config.NODE_IP}/32"))
    routes = run(["ip", "-4", "-o", "route", "show"]).stdout.splitlines()
    for route in routes:
        dest, _, rest = route.partition(" ")
        if dest == "default" or config.NODE_IFACE in rest or config.BRIDGE_IFACE in rest:
            continue
        net = ipaddress.ip_network(dest, strict=False)
        for mine in ours:
            if net.overlaps(mine):
                raise ClusterError(
                    f"the host route {route.strip()!r} overlaps the cluster's {mine}; the local "
                    "cluster keeps its traffic on this machine and cannot share that range"
                )


def _setup_network() -> None:
    if run(["ip", "link", "show", config.NODE_IFACE], check=False).returncode != 0:
        # A bridge without ports: like a dummy interface (which this kernel lacks), it holds an
        # address and swallows what is routed to it.
        run(["ip", "link", "add", config.NODE_IFACE, "type", "bridge"])
    run(["ip", "addr", "replace", f"{config.NODE_IP}/32", "dev", config.NODE_IFACE])
    run(["ip", "link", "set", config.NODE_IFACE, "up"])
    # A packet to a service address that kube-proxy has not rewritten ends on that portless bridge,
    # which drops it, instead of following the default route off the machine.
    run(["ip", "route", "replace", config.SERVICE_CIDR, "dev", config.NODE_IFACE])
    for key, value in (
        ("net/ipv4/ip_forward", "1"),
        ("net/bridge/bridge-nf-call-iptables", "1"),
        ("net/ipv4/conf/all/route_localnet", "1"),
    ):
        Path("/proc/sys", key).write_text(value)
    # Pods may talk to each other, the node and service addresses (rewritten before forwarding);
    # forwarding them anywhere else is refused.
    if run(["iptables", "-nL", config.EGRESS_CHAIN], check=False).returncode != 0:
        run(["iptables", "-N", config.EGRESS_CHAIN])
    run(["iptables", "-F", config.EGRESS_CHAIN])
    run(["iptables", "-A", config.EGRESS_CHAIN, "-o", config.BRIDGE_IFACE, "-j", "RETURN"])
    run(["iptables", "-A", config.EGRESS_CHAIN, "-s", config.POD_CIDR, "-j", "DROP"])
    jump = ["FORWARD", "-j", config.EGRESS_CHAIN]
    if run(["iptables", "-C", *jump], check=False).returncode != 0:
        run(["iptables", "-I", *jump])


def _apply_addons(paths: config.Paths) -> None:
    text = (Path(__file__).parent / "addons.yaml").read_text()
    ca_bundle = base64.b64encode((paths.pki / "ca.crt").read_bytes()).decode()
    rendered = string.Template(text).substitute(
        DNS_SERVICE_IP=config.DNS_SERVICE_IP,
        NODE_IP=config.NODE_IP,
        NODE_NAME=config.NODE_NAME,
        CA_BUNDLE=ca_bundle,
    )
    kubectl(paths, "apply", "--server-side", "--force-conflicts", "-f", "-", input_text=rendered)


def kubectl(paths: config.Paths, *args: str, input_text: str | None = None) -> str:
    """Run the cluster's own kubectl as admin."""
    argv = [str(build.binary(paths, "kubectl")), f"--kubeconfig={paths.admin_kubeconfig}", *args]
    return run(argv, input_text=input_text, timeout=120).stdout


def import_images(paths: config.Paths, archives: Sequence[Path], log: Log) -> None:
    """Import OCI archives into the node's containerd, where the kubelet finds them."""
    for archive in archives:
        run(
            [
                "ctr",
                f"--address={paths.containerd_sock}",
                "-n",
                "k8s.io",
                "images",
                "import",
                "--no-unpack",
                str(archive),
            ],
            timeout=600,
        )
        log(f"imported {archive.name} into the node's containerd")


def tag_images(paths: config.Paths, pairs: Sequence[tuple[str, str]], log: Log) -> None:
    """Give imported images another name in the node's containerd (source, alias), replacing
    what that name pointed at before."""
    for source, alias in pairs:
        run(
            [
                "ctr",
                f"--address={paths.containerd_sock}",
                "-n",
                "k8s.io",
                "images",
                "tag",
                "--force",
                source,
                alias,
            ],
            timeout=60,
        )
        log(f"tagged {source} as {alias} in the node's containerd")


def is_healthy(paths: config.Paths) -> bool:
    """True when every component runs and the API server and node answer Ready."""
    specs = components.specs(paths)
    # A component stopped on purpose by an applied fault (`fault apply`) does not make the cluster
    # unhealthy, or the suite's provider would start it again and undo the fault.
    excused = faults.excused(paths)
    if any(processes.pid_of(paths, s.name) is None for s in specs if s.name not in excused):
        return False
    return components.api(paths, "/readyz")[0] == 200 and components.node_ready(paths) is None


def up(paths: config.Paths, log: Log) -> dict[str, float]:
    """Build what is missing, then start every component that is not running, in order."""
    preflight(for_build=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    build.build_binaries(paths, log)
    pause = build.build_pause_image(paths, log)
    timings["build"] = time.monotonic() - t0
    if faults.active(paths) is not None:
        # A fault (applied on purpose, or left by a crashed run): its component is stopped here
        # and started below with its normal settings.
        faults.clear(paths, log, restart=False)
    specs = components.specs(paths)
    if not any(processes.pid_of(paths, spec.name) for spec in specs) and (
        (paths.state.exists() and any(paths.state.iterdir())) or leftovers(paths)
    ):
        # A cluster that died (killed session, reboot) left pods, mounts and rules behind:
        # starting over from a clean node is more honest than reviving half of it.
        log("no component runs, but an earlier cluster left state behind: cleaning it up first")
        down(paths, log)
    _check_ports(paths)
    _check_networks()
    _setup_network()
    pki.ensure_pki(paths)
    components.write_configs(paths)
    for spec in specs:
        t = time.monotonic()
        if processes.pid_of(paths, spec.name) is None:
            log(f"starting {spec.name}")
            if spec.name == "kubelet":
                import_images(paths, [pause], log)
            if spec.name == "coredns":
                _apply_addons(paths)
            processes.start(paths, spec.name, spec.argv)
        waited = poll(
            spec.ready,
            what=spec.name,
            seconds=spec.deadline_s,
            alive=lambda name=spec.name: processes.death_note(paths, name),  # type: ignore[misc]
        )
        timings[spec.name] = time.monotonic() - t
        log(f"{spec.name} ready ({waited:.1f}s)")
    if faults.active(paths) is not None:
        # An admission fault lives in the API: its policies go once the API server answers.
        faults.clear(paths, log, restart=False)
    timings["total"] = time.monotonic() - t0
    log(f"cluster up in {timings['total']:.0f}s; KUBECONFIG={paths.admin_kubeconfig}")
    return timings


def _cleanup_pods(paths: config.Paths, log: Log) -> None:
    """Kill every pod container, then their network namespaces, cgroups and mounts."""
    sock = paths.containerd_sock
    if processes.pid_of(paths, "containerd") is not None:
        ctr = ["ctr", f"--address={sock}", "-n", "k8s.io"]
        tasks = run([*ctr, "tasks", "ls", "-q"], check=False).stdout.split()
        for task in tasks:
            run([*ctr, "tasks", "kill", "-s", "SIGKILL", task], check=False)
        for task in tasks:
            run([*ctr, "tasks", "rm", "-f", task], check=False, timeout=30)
        containers = run([*ctr, "containers", "ls", "-q"], check=False).stdout.split()
        for container in containers:
            run([*ctr, "containers", "rm", container], check=False)
        if tasks or containers:
            log(f"removed {len(containers)} pod containers")
    # Anything still in a pod cgroup (a shim outlived containerd) is killed.
    for pids_file in Path("/sys/fs/cgroup/pids/kubepods").rglob("cgroup.procs"):
        for pid in pids_file.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)


def _network_namespaces() -> list[str]:
    """The network namespaces our CNI made (they hold an address in the pod range)."""
    names = run(["ip", "netns", "list"], check=False).stdout.split("\n")
    ours = []
    for line in names:
        name = line.split(" ", 1)[0]
        if not name.startswith("cni-"):
            continue
        addrs = run(["ip", "-n", name, "-4", "-o", "addr"], check=False).stdout
        if (
            any(
                ipaddress.ip_address(a) in ipaddress.ip_network(config.POD_CIDR)
                for a in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", addrs)
            )
            or not addrs.strip()
        ):
            ours.append(name)
    return ours


def _unmount_under(root: Path) -> int:
    mounts = [
        line.split()[1].replace("\\040", " ")
        for line in Path("/proc/self/mounts").read_text().splitlines()
    ]
    inside = sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True)
    for mount in inside:
        run(["umount", "-l", mount], check=False)
    return len(inside)


def _remove_cgroups() -> None:
    """Remove the kubelet's pod cgroups in every hierarchy, deepest first (only empty ones go)."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / "kubepods"
        if not top.is_dir():
            continue
        subs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for cgroup in [*subs, top]:
            with contextlib.suppress(OSError):
                cgroup.rmdir()


def _iptables_cleanup(paths: config.Paths) -> None:
    proxy = build.binary(paths, "kube-proxy")
    if proxy.exists():
        run([str(proxy), "--cleanup"], check=False, timeout=60)
    for table in ("filter", "nat", "mangle"):
        rules = run(["iptables-save", "-t", table], check=False).stdout.splitlines()
        ours = re.compile(rf"(KUBE-|CNI-|{config.EGRESS_CHAIN})")
        jumps = [r for r in rules if r.startswith("-A ") and ours.search(r)]
        for rule in jumps:
            chain, _, spec = rule[3:].partition(" ")
            if not ours.match(chain):
                run(["iptables", "-t", table, "-D", chain, *spec.split()], check=False)
        chains = [r[1:].split()[0] for r in rules if r.startswith(":") and ours.match(r[1:])]
        for chain in chains:
            run(["iptables", "-t", table, "-F", chain], check=False)
        for chain in chains:
            run(["iptables", "-t", table, "-X", chain], check=False)


def leftovers(paths: config.Paths) -> list[str]:
    """What of a cluster is still on this machine (empty after a clean `down`)."""
    found = []
    binaries = [build.binary(paths, b) for b in build.BINARY_SOURCES]
    found += [f"process {pid} ({exe})" for pid, exe in processes.strays(binaries)]
    ctr_procs = [
        f"{pid} ({exe})"
        for pid, exe in processes.strays([Path("/usr/bin/containerd")])
        if str(paths.state) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    ]
    found += [f"containerd {p}" for p in ctr_procs]
    mounts = Path("/proc/self/mounts").read_text()
    found += [f"mount {m}" for m in re.findall(rf" ({re.escape(str(paths.state))}/\S*) ", mounts)]
    for table in ("filter", "nat", "mangle"):
        save = run(["iptables-save", "-t", table], check=False).stdout
        found += [f"iptables {table} chain {c}" for c in re.findall(r"^:(KUBE-\S+)", save, re.M)]
    for iface in (config.BRIDGE_IFACE, config.NODE_IFACE):
        if run(["ip", "link", "show", iface], check=False).returncode == 0:
            found.append(f"interface {iface}")
    found += [f"netns {n}" for n in _network_namespaces()]
    if Path("/sys/fs/cgroup/pids/kubepods").exists():
        found.append("cgroup /sys/fs/cgroup/*/kubepods")
    return found


def down(paths: config.Paths, log: Log) -> bool:
    """Stop everything `up` started and remove the cluster's state; built binaries stay cached.

    Returns False when there was nothing to stop.
    """
    preflight()
    stopped_any = False
    order = [s.name for s in reversed(components.specs(paths))]
    # The kubelet goes first so it does not restart the pods being removed.
    for name in ["kubelet", *[n for n in order if n not in ("kubelet", "containerd")]]:
        if processes.stop(paths, name):
            log(f"stopped {name}")
            stopped_any = True
    had_state = paths.state.exists() and any(paths.state.iterdir())
    faults.lock_path().unlink(missing_ok=True)
    _cleanup_pods(paths, log)
    if processes.stop(paths, "containerd", grace=20):
        log("stopped containerd")
        stopped_any = True
    binaries = [build.binary(paths, b) for b in build.BINARY_SOURCES]
    for pid, exe in processes.strays(binaries):
        log(f"killing stray {exe} (pid {pid})")
        os.kill(pid, 9)
        stopped_any = True
    for shim in processes.strays([Path("/usr/bin/containerd-shim-runc-v2")]):
        cmdline = Path(f"/proc/{shim[0]}/cmdline").read_text(errors="replace")
        if str(paths.containerd_sock) in cmdline:
            os.kill(shim[0], 9)
    _cleanup_pods(paths, log)
    for netns in _network_namespaces():
        run(["ip", "netns", "delete", netns], check=False)
    unmounted = _unmount_under(paths.state)
    if unmounted:
        log(f"unmounted {unmounted} mounts under {paths.state}")
    _remove_cgroups()
    _iptables_cleanup(paths)
    for iface in (config.BRIDGE_IFACE, config.NODE_IFACE):
        run(["ip", "link", "delete", iface], check=False)
    if paths.state.exists():
        shutil.rmtree(paths.state, ignore_errors=True)
    if not (stopped_any or had_state):
        log("nothing to stop")
        return False
    left = leftovers(paths)
    if left:
        raise ClusterError("down left behind: " + "; ".join(left))
    log("cluster down; nothing left behind (built binaries stay in the cache)")
    return True


def status(paths: config.Paths, out: Log) -> bool:
    """Print each component's state; True when the whole cluster is healthy."""
    healthy = True
    specs = components.specs(paths)
    # Every pid first: a user who cannot tell whether a component runs (pid_of raises) gets that
    # one line, not a few rows of "stopped" before it.
    pids = {spec.name: processes.pid_of(paths, spec.name) for spec in specs}
    for spec in specs:
        pid = pids[spec.name]
        state = "stopped" if pid is None else (spec.ready() or "ready")
        healthy &= state == "ready"
        out(f"{spec.name:24} {'-' if pid is None else pid:>8}  {state}")
    fault = faults.active(paths)
    if fault is not None:
        out(
            f"{fault.kind} applied: {fault.name} ({fault.how}); "
            f"`python -m localcluster {fault.kind} clear`"
        )
        healthy = False
    out(f"kubeconfig: {paths.admin_kubeconfig}")
    return healthy

"""A private Docker engine for kind, on machines that have none able to run kind's nodes.

CI has no Docker engine and cannot pull one, so this starts Debian's docker.io (downloaded with
apt and unpacked into the cache, never installed) on Debian's containerd and runc, with:

- its own socket, state and config under KUBE_ALIVE_ENGINE_DIR (default /run/kube-alive-engine
  and /var/lib/kube-alive-engine), so a system Docker, if any, is never touched;
- `iptables: false`, `ip-forward: false`, `bridge: none`: the host's firewall and forwarding
  rules stay as they were; kind's network is made up front on a bridge of its own
  (`ka-kind0`, NETWORK_SUBNET), so removing it is exact;
- where the VM's capability bounding set lacks capabilities the kernel knows (CAP_SYS_RESOURCE
  here), `runc-capfilter` as the default OCI runtime, without which no privileged container
  (a kind node) starts on Docker 20.10; elsewhere plain runc.

`down` removes every container, network, mount, process and folder the engine made; a crashed
run's leftovers are removed by the next `up` or `down`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from localcluster import build, config, processes
from localcluster.util import ClusterError, Log, poll, run

NETWORK = "kind"
NETWORK_SUBNET = "172.31.250.0/24"
NETWORK_GATEWAY = "172.31.250.1"
BRIDGE = "ka-kind0"
CGROUP_PARENT = "/kube-alive-engine"
CAPFILTER = Path(__file__).resolve().parent / "runc-capfilter"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
#: A registry (distribution, from its Go module) on the kind network's gateway: what a Raspberry
#: Pi cluster's nodes pull from, here reachable by the kind nodes and nothing off this machine.
REGISTRY = build.Component("registry", "v3.0.0", ("tool",), ("registry",))
REGISTRY_PORT = 5000
REGISTRY_ADDRESS = f"{NETWORK_GATEWAY}:{REGISTRY_PORT}"
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"


@dataclass(frozen=True)
class EnginePaths:
    """Where the engine keeps its sockets (run) and its images and containers (state)."""

    run: Path
    state: Path

    @classmethod
    def default(cls) -> EnginePaths:
        """From KUBE_ALIVE_ENGINE_DIR (both under it), else /run and /var/lib."""
        base = os.environ.get("KUBE_ALIVE_ENGINE_DIR")
        if base:
            return cls(Path(base) / "run", Path(base) / "state")
        return cls(Path("/run/kube-alive-engine"), Path("/var/lib/kube-alive-engine"))

    @property
    def docker_sock(self) -> Path:
        """The Docker API socket (DOCKER_HOST=unix://...)."""
        return self.run / "docker.sock"

    @property
    def containerd_sock(self) -> Path:
        """The engine's own containerd (never the system's, nor the local cluster's)."""
        return self.run / "containerd.sock"

    @property
    def created_lib_modules(self) -> Path:
        """Marker: the engine created the empty /lib/modules that kind bind-mounts."""
        return self.state / "created-lib-modules"


def docker_host(engine: EnginePaths) -> str:
    """The DOCKER_HOST value for this engine."""
    return f"unix://{engine.docker_sock}"


def missing_capabilities() -> list[int]:
    """Capability numbers the kernel knows that this process's bounding set lacks."""
    with Path("/proc/self/status").open() as status:
        mask = next(int(line.split()[1], 16) for line in status if line.startswith("CapBnd"))
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return [bit for bit in range(last + 1) if not mask >> bit & 1]


def docker_root(paths: config.Paths, log: Log) -> Path:
    """Debian's docker.io, unpacked into the cache (apt-get download + dpkg-deb -x)."""
    debs = paths.cache / "kind" / "debs"
    found = sorted(debs.glob("docker.io_*.deb"))
    if not found:
        log("engine: downloading Debian's docker.io package (apt-get download)")
        debs.mkdir(parents=True, exist_ok=True)
        download = ["apt-get", "download", "docker.io"]
        if run(download, cwd=debs, timeout=600, check=False).returncode != 0:
            run(["apt-get", "update", "-qq"], timeout=600)
            run(download, cwd=debs, timeout=600)
        found = sorted(debs.glob("docker.io_*.deb"))
    deb = found[-1]
    root = paths.cache / "kind" / deb.stem
    if not (root / "usr/sbin/dockerd").exists():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run(["dpkg-deb", "-x", deb, partial], timeout=300)
        partial.rename(root)
    return root


def docker_bin(paths: config.Paths, log: Log) -> Path:
    """The folder holding this engine's docker CLI (put it first on PATH)."""
    return docker_root(paths, log) / "usr/bin"


def _docker(
    paths: config.Paths, engine: EnginePaths, log: Log, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DOCKER_HOST=docker_host(engine))
    return run([docker_bin(paths, log) / "docker", *args], env=env, timeout=timeout, check=False)


def answers(paths: config.Paths, engine: EnginePaths, log: Log) -> str | None:
    """None when the engine answers, else what was seen."""
    if not engine.docker_sock.exists():
        return f"no socket at {engine.docker_sock}"
    proc = _docker(paths, engine, log, "version", "--format", "{{.Server.Version}}", timeout=20)
    return None if proc.returncode == 0 else (proc.stderr.strip() or "no answer")


def _start(engine: EnginePaths, name: str, argv: list[str], env: dict[str, str]) -> Path:
    """Start one of the engine's processes; returns its log file."""
    log_file = engine.run / f"{name}.log"
    processes.launch(name, argv, log_file=log_file, pidfile=_pidfile(engine, name), env=env)
    return log_file


def _pidfile(engine: EnginePaths, name: str) -> Path:
    # Not <name>.pid: dockerd writes its own dockerd.pid there.
    return engine.run / f"{name}.launch.pid"


def _exit_note(engine: EnginePaths, name: str) -> str | None:
    return processes.exit_note(
        name, log_file=engine.run / f"{name}.log", pidfile=_pidfile(engine, name)
    )


def up(paths: config.Paths, log: Log) -> EnginePaths:
    """Start the engine (or reuse a running one) and make kind's network; idempotent."""
    engine = EnginePaths.default()
    if answers(paths, engine, log) is None:
        log(f"engine: running, DOCKER_HOST={docker_host(engine)}")
        _ensure_network(paths, engine, log)
        return engine
    _cleanup(paths, engine, log)
    root = docker_root(paths, log)
    engine.run.mkdir(parents=True, exist_ok=True)
    engine.state.mkdir(parents=True, exist_ok=True)
    if not Path("/lib/modules").exists():
        # kind bind-mounts /lib/modules into its nodes; these VMs have none.
        Path("/lib/modules").mkdir(parents=True)
        engine.created_lib_modules.write_text("")
    containerd_toml = engine.run / "containerd.toml"
    containerd_toml.write_text(
        "version = 2\n"
        f'root = "{engine.state / "containerd"}"\n'
        f'state = "{engine.run / "containerd"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{engine.containerd_sock}"\n'
        f'[ttrpc]\n  address = "{engine.containerd_sock}.ttrpc"\n'
    )
    daemon: dict[str, object] = {
        "data-root": str(engine.state / "docker"),
        "exec-root": str(engine.run / "docker"),
        "pidfile": str(engine.run / "dockerd.pid"),
        "hosts": [docker_host(engine)],
        "containerd": str(engine.containerd_sock),
        "bridge": "none",
        "iptables": False,
        "ip6tables": False,
        "ip-forward": False,
        "ip-masq": False,
        "userland-proxy-path": str(root / "usr/sbin/docker-proxy"),
        "cgroup-parent": CGROUP_PARENT,
        "storage-driver": "overlay2",
        # The registry of `engine registry` serves plain HTTP on the engine's own network.
        "insecure-registries": [REGISTRY_ADDRESS],
    }
    missing = missing_capabilities()
    if missing:
        log(f"engine: capabilities {missing} are not in the bounding set: runtime runc-capfilter")
        daemon["runtimes"] = {"kube-alive-runc": {"path": str(CAPFILTER)}}
        daemon["default-runtime"] = "kube-alive-runc"
    daemon_json = engine.run / "daemon.json"
    daemon_json.write_text(json.dumps(daemon, indent=2))
    env = dict(os.environ, PATH=f"{root / 'usr/sbin'}:{root / 'usr/bin'}:{os.environ['PATH']}")
    env.pop("DOCKER_HOST", None)
    log("engine: starting containerd and dockerd (Debian's docker.io)")
    _start(engine, "containerd", ["containerd", "--config", str(containerd_toml)], env)
    poll(
        lambda: None if engine.containerd_sock.exists() else "no socket yet",
        what="engine containerd",
        seconds=START_TIMEOUT_S,
        interval=0.2,
        alive=lambda: _exit_note(engine, "containerd"),
    )
    dockerd = [str(root / "usr/sbin/dockerd"), "--config-file", str(daemon_json)]
    _start(engine, "dockerd", dockerd, env)
    elapsed = poll(
        lambda: answers(paths, engine, log),
        what="engine dockerd",
        seconds=START_TIMEOUT_S,
        interval=0.3,
        alive=lambda: _exit_note(engine, "dockerd"),
    )
    log(f"engine: dockerd answers after {elapsed:.1f}s, DOCKER_HOST={docker_host(engine)}")
    _ensure_network(paths, engine, log)
    return engine


def _ensure_network(paths: config.Paths, engine: EnginePaths, log: Log) -> None:
    # kind reuses a network called "kind"; made here, its bridge has a name `down` can remove.
    if _docker(paths, engine, log, "network", "inspect", NETWORK).returncode == 0:
        return
    created = _docker(
        paths, engine, log, "network", "create", "-d", "bridge", "--subnet", NETWORK_SUBNET,
        "--gateway", NETWORK_GATEWAY, "-o", f"com.docker.network.bridge.name={BRIDGE}",
        "-o", "com.docker.network.bridge.enable_ip_masquerade=false", NETWORK,
    )  # fmt: skip
    if created.returncode != 0:
        raise ClusterError(f"engine: docker network create {NETWORK}: {created.stderr.strip()}")


def load_archives(paths: config.Paths, archives: list[Path], log: Log) -> None:
    """`docker load` image archives (docker-save layout) into the engine."""
    engine = EnginePaths.default()
    for archive in archives:
        proc = _docker(paths, engine, log, "load", "-i", str(archive), timeout=900)
        if proc.returncode != 0:
            raise ClusterError(f"engine: docker load -i {archive}: {proc.stderr.strip()}")
        log(f"engine: {proc.stdout.strip()}")


def down(paths: config.Paths, log: Log) -> None:
    """Remove every container and network, stop the engine, and remove all it made."""
    engine = EnginePaths.default()
    if not engine.run.exists() and not engine.state.exists():
        log("engine: not running, nothing of it left")
        return
    _cleanup(paths, engine, log)
    shutil.rmtree(engine.run, ignore_errors=True)
    if engine.created_lib_modules.exists():
        with contextlib.suppress(OSError):
            Path("/lib/modules").rmdir()
    shutil.rmtree(engine.state, ignore_errors=True)
    log("engine: stopped; nothing of it is left running or mounted")


def _cleanup(paths: config.Paths, engine: EnginePaths, log: Log) -> None:
    if answers(paths, engine, log) is None:
        ids = _docker(paths, engine, log, "ps", "-aq").stdout.split()
        if ids:
            log(f"engine: removing {len(ids)} container(s)")
            _docker(paths, engine, log, "rm", "-f", "-v", *ids, timeout=300)
        nets = _docker(paths, engine, log, "network", "ls", "-q", "--filter", "type=custom")
        for net in nets.stdout.split():
            _docker(paths, engine, log, "network", "rm", net)
    for name in ("registry", "dockerd", "containerd"):
        processes.stop_in(
            _pidfile(engine, name), name, STOP_TIMEOUT_S, lambda message: log(f"engine: {message}")
        )
    # Container shims outlive their containerd; ours name our socket on their command line.
    for pid in _pids_with(str(engine.containerd_sock)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for mount in _mounts_under((engine.run, engine.state)):
        run(["umount", "-l", mount], check=False, timeout=30)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        run(["ip", "link", "del", BRIDGE], check=False, timeout=30)


def _pids_with(needle: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline and "containerd-shim" in cmdline:
            pids.append(int(proc.name))
    return pids


def _mounts_under(roots: tuple[Path, ...]) -> list[str]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            mounts.append(point)
    return sorted(mounts, key=len, reverse=True)


def status(paths: config.Paths, out: Log) -> bool:
    """One line: whether the engine answers, and where."""
    engine = EnginePaths.default()
    problem = answers(paths, engine, out)
    if problem is None:
        out(f"engine: running, DOCKER_HOST={docker_host(engine)}")
        return True
    out(f"engine: not running ({problem})")
    return False


def registry_up(paths: config.Paths, log: Log) -> str:
    """Start the registry on the kind network's gateway (or reuse it); returns host:port."""
    engine = EnginePaths.default()
    if answers(paths, engine, log) is not None:
        raise ClusterError("engine: not running; start it first (python -m localcluster engine up)")
    if _registry_problem() is None:
        return REGISTRY_ADDRESS
    binary = build.build_component(paths, REGISTRY, log) / "registry"
    config_file = engine.run / "registry.yml"
    config_file.write_text(
        "version: 0.1\n"
        "log: {level: info, accesslog: {disabled: false}}\n"
        f"storage: {{filesystem: {{rootdirectory: {engine.state / 'registry'}}}}}\n"
        f"http: {{addr: '{REGISTRY_ADDRESS}'}}\n"
    )
    log_file = _start(
        engine, "registry", [str(binary), "serve", str(config_file)], dict(os.environ)
    )
    elapsed = poll(
        _registry_problem,
        what=f"registry at {REGISTRY_ADDRESS}",
        seconds=START_TIMEOUT_S,
        interval=0.2,
        alive=lambda: _exit_note(engine, "registry"),
    )
    log(f"engine: registry answers at {REGISTRY_ADDRESS} after {elapsed:.1f}s (log {log_file})")
    return REGISTRY_ADDRESS


def _registry_problem() -> str | None:
    proc = run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"http://{REGISTRY_ADDRESS}/v2/"],
        check=False,
        timeout=10,
    )
    return None if proc.stdout.strip() == "200" else (proc.stderr.strip() or proc.stdout.strip())


def hosts_toml(address: str) -> str:
    """containerd's per-registry config: pull `address` over plain HTTP (it is on this machine's
    kind network only)."""
    return (
        f'server = "http://{address}"\n\n'
        f'[host."http://{address}"]\n  capabilities = ["pull", "resolve"]\n'
    )


def trust_registry_on_kind_nodes(paths: config.Paths, cluster: str, log: Log) -> list[str]:
    """Let every node of kind cluster `cluster` pull from the registry (certs.d, read by
    containerd at each pull: no restart); returns the node names."""
    engine = EnginePaths.default()
    listed = _docker(
        paths, engine, log, "ps", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster}",
        "--format", "{{.Names}}",
    )  # fmt: skip
    nodes = sorted(listed.stdout.split())
    if not nodes:
        raise ClusterError(f"engine: no running node of kind cluster {cluster!r}")
    folder = f"/etc/containerd/certs.d/{REGISTRY_ADDRESS}"
    for node in nodes:
        script = f"mkdir -p {folder} && cat > {folder}/hosts.toml"
        env = dict(os.environ, DOCKER_HOST=docker_host(engine))
        run(
            [docker_bin(paths, log) / "docker", "exec", "-i", node, "sh", "-c", script],
            env=env,
            input_text=hosts_toml(REGISTRY_ADDRESS),
            timeout=60,
        )
    log(f"engine: nodes {', '.join(nodes)} pull from http://{REGISTRY_ADDRESS}")
    return nodes


def registry_pulls() -> list[str]:
    """The registry's access-log lines of manifest fetches by containerd (a node pulling)."""
    log_file = EnginePaths.default().run / "registry.log"
    if not log_file.exists():
        return []
    lines = log_file.read_text(errors="replace").splitlines()
    return [
        line
        for line in lines
        if "GET /v2/" in line and "/manifests/" in line and "containerd" in line
    ]

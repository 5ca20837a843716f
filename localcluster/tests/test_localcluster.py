"""Unit tests of the local cluster's parts that need no node: addresses, PKI, configs, processes."""

from __future__ import annotations

import ipaddress
import json
import os
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from localcluster import cluster, components, config, pki, processes
from localcluster.util import ClusterError, file_lock, poll


@pytest.fixture
def paths(tmp_path: Path) -> config.Paths:
    """A state and cache folder of the test's own."""
    return config.Paths(state=tmp_path / "state", cache=tmp_path / "cache")


@pytest.fixture(scope="module")
def pki_paths(tmp_path_factory: pytest.TempPathFactory) -> config.Paths:
    """One generated PKI shared by the PKI tests (openssl takes a few seconds)."""
    root = tmp_path_factory.mktemp("pki")
    made = config.Paths(state=root / "state", cache=root / "cache")
    pki.ensure_pki(made)
    return made


def test_cluster_address_ranges_do_not_overlap_and_hold_their_services():
    pods = ipaddress.ip_network(config.POD_CIDR)
    services = ipaddress.ip_network(config.SERVICE_CIDR)
    node = ipaddress.ip_address(config.NODE_IP)
    assert not pods.overlaps(services)
    assert node not in pods
    assert node not in services
    assert ipaddress.ip_network(config.NODE_POD_CIDR).subnet_of(pods)  # type: ignore[arg-type]
    assert ipaddress.ip_address(config.DNS_SERVICE_IP) in services
    assert ipaddress.ip_address(config.KUBERNETES_SERVICE_IP) in services


def _openssl(*args: str | Path) -> str:
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_apiserver_certificate_names_every_address_clients_use(pki_paths):
    text = _openssl("x509", "-in", pki_paths.pki / "apiserver.crt", "-noout", "-text")
    for san in pki.APISERVER_SANS:
        kind, value = san.split(":", 1)
        assert f"{'IP Address' if kind == 'IP' else 'DNS'}:{value}" in text


@pytest.mark.parametrize("cert", [c for c in pki.CERTS], ids=lambda c: c.name)
def test_every_certificate_chains_to_its_own_ca(pki_paths, cert):
    out = _openssl(
        "verify", "-CAfile", pki_paths.pki / f"{cert.ca}.crt", pki_paths.pki / f"{cert.name}.crt"
    )
    assert out.strip().endswith("OK")


def test_front_proxy_client_is_not_trusted_by_the_cluster_ca(pki_paths):
    # The API server must accept aggregated-API identity headers only from the front proxy.
    proc = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            pki_paths.pki / "ca.crt",
            pki_paths.pki / "front-proxy-client.crt",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode != 0


def test_keys_and_kubeconfigs_are_private(pki_paths):
    secrets = [*pki_paths.pki.glob("*.key"), *pki_paths.kubeconfigs.glob("*.kubeconfig")]
    assert len(secrets) >= len(pki.CERTS) + len(pki.KUBECONFIGS)
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets)


def test_kubeconfigs_point_at_the_node_address_with_their_own_identity(pki_paths):
    doc = yaml.safe_load((pki_paths.kubeconfigs / "kubelet.kubeconfig").read_text())
    assert doc["clusters"][0]["cluster"]["server"] == f"https://{config.NODE_IP}:6443"
    assert doc["users"][0]["user"]["client-certificate-data"]


def test_components_start_in_the_order_the_cluster_needs(paths):
    names = [s.name for s in components.specs(paths)]
    assert names == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "containerd",
        "kubelet",
        "kube-proxy",
        "coredns",
        "metrics-server",
    ]


def test_rendered_configs_keep_traffic_on_the_machine(paths):
    components.write_configs(paths)
    cfg = paths.state / "config"
    corefile = (cfg / "Corefile").read_text()
    assert "forward" not in corefile
    cni = json.loads((cfg / "cni" / "10-kube-alive.conflist").read_text())
    assert cni["plugins"][0]["ipMasq"] is False
    kubelet = yaml.safe_load((cfg / "kubelet.yaml").read_text())
    assert kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["clusterDNS"] == [config.DNS_SERVICE_IP]
    proxy = yaml.safe_load((cfg / "kube-proxy.yaml").read_text())
    assert proxy["nodePortAddresses"] == [f"{config.NODE_IP}/32"]


def test_metrics_server_resolution_is_fast_and_valid(paths):
    spec = next(s for s in components.specs(paths) if s.name == "metrics-server")
    assert f"--metric-resolution={config.METRICS_RESOLUTION_S}s" in spec.argv
    # metrics-server refuses < 10 s, and a kubelet timeout not under 9/10 of the resolution.
    assert 10 <= config.METRICS_RESOLUTION_S <= 15
    assert config.METRICS_KUBELET_TIMEOUT_S < 0.9 * config.METRICS_RESOLUTION_S
    assert f"--kubelet-request-timeout={config.METRICS_KUBELET_TIMEOUT_S}s" in spec.argv


def test_hpa_sync_and_housekeeping_are_passed(paths):
    argv = {s.name: s.argv for s in components.specs(paths)}
    assert (
        f"--horizontal-pod-autoscaler-sync-period={config.HPA_SYNC_S}s"
        in argv["kube-controller-manager"]
    )
    assert f"--housekeeping-interval={config.KUBELET_HOUSEKEEPING_S}s" in argv["kubelet"]


def test_addons_render_completely():
    text = (Path(cluster.__file__).parent / "addons.yaml").read_text()
    rendered = string.Template(text).substitute(
        DNS_SERVICE_IP=config.DNS_SERVICE_IP,
        NODE_IP=config.NODE_IP,
        NODE_NAME=config.NODE_NAME,
        CA_BUNDLE="Q0E=",
    )
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("APIService", "v1beta1.metrics.k8s.io") in kinds
    assert ("Service", "kube-dns") in kinds
    dns = next(d for d in docs if d["metadata"]["name"] == "kube-dns")
    assert dns["spec"]["clusterIP"] == config.DNS_SERVICE_IP


def test_a_held_port_is_named_with_its_holder(paths, monkeypatch):
    monkeypatch.setattr(cluster, "_port_holders", lambda: {6443: "nginx (pid 4242)"})
    with pytest.raises(ClusterError, match=r"port 6443 \(needed by kube-apiserver\).*nginx"):
        cluster._check_ports(paths)


def test_preflight_names_root_as_missing(monkeypatch):
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 1000)
    with pytest.raises(ClusterError, match="needs root"):
        cluster.preflight()


def test_preflight_names_missing_packages_and_the_install_command(monkeypatch):
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 0)
    monkeypatch.setitem(cluster.PREREQUISITES, "frobnicator", "/nonexistent/frob")
    with pytest.raises(ClusterError, match="apt-get install -y frobnicator"):
        cluster.preflight()


def test_a_started_process_is_found_stopped_and_reported_dead(paths):
    pid = processes.start(paths, "sleeper", ["/bin/sleep", "30"])
    assert processes.pid_of(paths, "sleeper") == pid
    assert processes.death_note(paths, "sleeper") is None
    assert processes.stop(paths, "sleeper", grace=5)
    assert processes.pid_of(paths, "sleeper") is None
    assert not processes.stop(paths, "sleeper")


def test_a_process_found_by_name_on_its_path_is_found_again_and_stopped(tmp_path):
    pidfile, log_file = tmp_path / "run" / "sleeper.launch.pid", tmp_path / "sleeper.log"
    pid = processes.launch(
        "sleeper",
        ["sleep", "30"],
        log_file=log_file,
        pidfile=pidfile,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert processes.pid_in(pidfile, "sleeper") == pid
    assert processes.exit_note("sleeper", log_file=log_file, pidfile=pidfile) is None
    assert processes.stop_in(pidfile, "sleeper", grace=5)
    assert not pidfile.exists()
    assert processes.pid_in(pidfile, "sleeper") is None
    assert not processes.stop_in(pidfile, "sleeper")


def test_a_process_that_ignores_sigterm_is_killed_and_that_is_said(tmp_path):
    pidfile, log_file = tmp_path / "stubborn.pid", tmp_path / "stubborn.log"
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    processes.launch(
        "stubborn", [sys.executable, "-c", stubborn], log_file=log_file, pidfile=pidfile
    )
    poll(
        lambda: None if "ready" in log_file.read_text() else "not ignoring SIGTERM yet",
        what="stubborn",
        seconds=20,
        interval=0.05,
    )
    said = []
    assert processes.stop_in(pidfile, "stubborn", grace=0.3, log=said.append)
    assert len(said) == 1
    assert said[0].startswith("stubborn (pid ")
    assert said[0].endswith(" ignored SIGTERM for 0s: SIGKILL")
    note = processes.exit_note("stubborn", log_file=log_file, pidfile=pidfile)
    assert note is not None
    assert note.startswith(f"stubborn exited; last lines of {log_file}:")
    assert "ready" in note


def test_a_component_that_dies_fails_the_wait_at_once_with_its_log(paths):
    processes.start(
        paths, "crasher", [sys.executable, "-c", "print('bad flag'); raise SystemExit(3)"]
    )
    with pytest.raises(ClusterError, match=r"(?s)crasher exited.*bad flag"):
        poll(
            lambda: "not ready",
            what="crasher",
            seconds=20,
            interval=0.1,
            alive=lambda: processes.death_note(paths, "crasher"),
        )


def test_a_wait_that_times_out_says_what_it_saw_last():
    with pytest.raises(ClusterError, match=r"thing: not ready after .*last seen: 2/4 ready"):
        poll(lambda: "2/4 ready", what="thing", seconds=0.3, interval=0.1)


def test_a_wait_that_succeeds_returns_the_seconds_it_took():
    answers = iter(["starting", "starting", None])
    took = poll(lambda: next(answers), what="thing", seconds=20, interval=0.1)
    assert isinstance(took, float)
    assert 0.2 <= took < 20


def test_a_file_lock_excludes_another_holder_and_says_whom_it_waits_for(tmp_path):
    order, said = [], []
    blocked = threading.Event()

    def tell(message: str) -> None:
        said.append(message)
        blocked.set()

    def second() -> None:
        with file_lock(tmp_path / "lock", "the second", tell) as waited:
            order.append(("second", waited))

    with file_lock(tmp_path / "lock", "the first", tell) as waited:
        assert waited < 1
        thread = threading.Thread(target=second)
        thread.start()
        assert blocked.wait(5), "the second holder did not find the lock held"
        time.sleep(0.1)  # give the other thread a chance to (wrongly) get in
        order.append(("first", 0.0))
    thread.join(5)
    assert [who for who, _ in order] == ["first", "second"]
    assert order[1][1] > 0
    (message,) = said
    assert message.startswith(f"the second: waiting for the lock held by pid {os.getpid()} (")
    assert message.endswith(f" ({tmp_path / 'lock'})")


def test_status_of_no_cluster_exits_1_and_says_stopped(tmp_path):
    env = {
        "KUBE_ALIVE_STATE_DIR": str(tmp_path / "s"),
        "KUBE_ALIVE_CACHE_DIR": str(tmp_path / "c"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "localcluster", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=Path(config.__file__).parents[1],
    )
    assert proc.returncode == 1
    assert "etcd" in proc.stdout
    assert "stopped" in proc.stdout

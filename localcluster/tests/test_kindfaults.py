"""kind faults: which node they break and how, with a fake docker (no engine)."""

from __future__ import annotations

import json
import subprocess

import pytest

from localcluster import faults, kindfaults
from localcluster.util import ClusterError


class FakeDocker:
    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes
        self.rules: dict[str, int] = {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        self.stdin = str(kwargs.get("input") or "")
        args = argv[1:]
        if args[0] == "ps":
            out = "\n".join(json.dumps({"Names": name}) for name in self.nodes)
            return subprocess.CompletedProcess(argv, 0, out, "")
        if args[:2] == ["exec", "-i"]:
            args = args[1:]
        if args[2] != "iptables":
            return self.control_plane(argv, args[1], args[2:])
        node, action = args[1], args[5]
        assert args[2:5] == ["iptables", "-t", "raw"]
        assert kindfaults.SERVICE_SUBNET in args
        assert "DROP" in args
        count = self.rules.get(node, 0)
        if action == "-C":
            return subprocess.CompletedProcess(argv, 0 if count else 1, "", "")
        self.rules[node] = count + (1 if action == "-I" else -1)
        return subprocess.CompletedProcess(argv, 0, "", "")

    #: The control plane's files and its running kube-controller-manager (a static pod).
    files: dict[str, str]
    running: str

    def control_plane(
        self, argv: list[str], node: str, command: list[str]
    ) -> subprocess.CompletedProcess[str]:
        assert node.endswith("control-plane"), command
        files = self.__dict__.setdefault("files", {kindfaults.CONTROLLER_MANAGER_MANIFEST: KCM})
        done = subprocess.CompletedProcess(argv, 0, "", "")
        if command[:2] == ["test", "-e"]:
            done.returncode = 0 if command[2] in files else 1
        elif command[0] == "cp":
            files[command[3]] = files[command[2]]
        elif command[0] == "cat":
            done.stdout = files[command[1]]
        elif command[:2] == ["sh", "-c"] and command[2] == kindfaults.CMDLINES:
            # The kubelet has restarted it from whatever manifest is there now.
            manifest = files[kindfaults.CONTROLLER_MANAGER_MANIFEST]
            flags = [line.strip()[2:] for line in manifest.splitlines() if "- --" in line]
            done.stdout = "kubelet --config=/var/lib/kubelet/config.yaml\n"
            done.stdout += " ".join(["kube-controller-manager", *flags]) + "\n"
        elif command[:2] == ["sh", "-c"] and "cat >" in command[2]:
            files[kindfaults.CONTROLLER_MANAGER_MANIFEST] = self.stdin
        elif command[:2] == ["sh", "-c"] and command[2].startswith("cp -p"):
            files[kindfaults.CONTROLLER_MANAGER_MANIFEST] = files.pop(
                kindfaults.CONTROLLER_MANAGER_KEPT
            )
        else:
            raise AssertionError(f"unexpected docker exec: {command}")
        return done


KCM = """apiVersion: v1
kind: Pod
spec:
  containers:
  - command:
    - kube-controller-manager
    - --allocate-node-cidrs=true
    - --controllers=*,bootstrapsigner,tokencleaner
    - --leader-elect=true
    image: registry.k8s.io/kube-controller-manager:v1.34.4
"""


@pytest.fixture
def lock(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBE_ALIVE_FAULT_LOCK", str(tmp_path / "lock"))
    return tmp_path / "lock"


def test_the_fault_breaks_the_last_worker_only_and_clear_removes_it(monkeypatch, lock) -> None:
    docker = FakeDocker(["kube-alive-control-plane", "kube-alive-worker", "kube-alive-worker2"])
    monkeypatch.setattr(subprocess, "run", docker)
    node = kindfaults.apply("kube-alive", "node-service-routing-dropped", print)
    assert node == "kube-alive-worker2"
    assert docker.rules == {"kube-alive-worker2": 1}
    assert "node-service-routing-dropped on kube-alive-worker2" in lock.read_text()
    kindfaults.apply("kube-alive", "node-service-routing-dropped", print)
    assert docker.rules == {"kube-alive-worker2": 1}, "applied twice is applied once"
    assert kindfaults.clear("kube-alive", print) == ["kube-alive-worker2"]
    assert docker.rules == {"kube-alive-worker2": 0}
    assert not lock.exists()


def test_with_one_worker_there_is_no_node_to_break_alone(monkeypatch, lock) -> None:
    monkeypatch.setattr(subprocess, "run", FakeDocker(["c-control-plane", "c-worker"]))
    with pytest.raises(faults.FaultNotApplicable, match="1 worker"):
        kindfaults.apply("c", "node-service-routing-dropped", print)


def test_an_unknown_kind_fault_names_the_known_ones() -> None:
    with pytest.raises(ClusterError, match="node-service-routing-dropped"):
        kindfaults.lookup("bogus")


def test_a_controller_fault_restarts_the_controller_manager_without_it_and_clear_restores_it(
    monkeypatch, lock
) -> None:
    docker = FakeDocker(["kube-alive-control-plane", "kube-alive-worker", "kube-alive-worker2"])
    monkeypatch.setattr(subprocess, "run", docker)
    node = kindfaults.apply("kube-alive", "disruption-controller-off", print)
    assert node == "kube-alive-control-plane"
    manifest = docker.files[kindfaults.CONTROLLER_MANAGER_MANIFEST]
    assert "- --controllers=*,bootstrapsigner,tokencleaner,-disruption-controller\n" in manifest
    assert docker.files[kindfaults.CONTROLLER_MANAGER_KEPT] == KCM
    assert "disruption-controller-off" in lock.read_text()
    assert docker.rules == {}, "no worker is touched"
    assert kindfaults.clear("kube-alive", print) == ["kube-alive-control-plane"]
    assert docker.files == {kindfaults.CONTROLLER_MANAGER_MANIFEST: KCM}
    assert not lock.exists()


def test_a_controller_manager_that_does_not_restart_is_one_line(monkeypatch, lock) -> None:
    docker = FakeDocker(["kube-alive-control-plane", "kube-alive-worker", "kube-alive-worker2"])
    monkeypatch.setattr(subprocess, "run", docker)
    monkeypatch.setattr(kindfaults, "RESTART_DEADLINE_S", 0.05)
    monkeypatch.setattr(kindfaults, "POLL_S", 0.01)
    monkeypatch.setattr(kindfaults, "CMDLINES", "nothing runs")
    monkeypatch.setattr(
        FakeDocker,
        "control_plane",
        lambda self, argv, node, command: subprocess.CompletedProcess(
            argv, 0 if command[0] != "test" else 1, KCM if command[0] == "cat" else "", ""
        ),
    )
    with pytest.raises(ClusterError, match="did not restart without node-lifecycle"):
        kindfaults.apply("kube-alive", "node-lifecycle-controller-off", print)


def test_switching_a_controller_off_keeps_the_others_and_is_idempotent() -> None:
    once = kindfaults.without_controller(KCM, "node-lifecycle-controller")
    assert "--controllers=*,bootstrapsigner,tokencleaner,-node-lifecycle-controller\n" in once
    assert kindfaults.without_controller(once, "node-lifecycle-controller") == once
    bare = KCM.replace("    - --controllers=*,bootstrapsigner,tokencleaner\n", "")
    added = kindfaults.without_controller(bare, "disruption-controller")
    assert "    - kube-controller-manager\n    - --controllers=*,-disruption-controller\n" in added
    with pytest.raises(ClusterError, match="no `- kube-controller-manager`"):
        kindfaults.without_controller("apiVersion: v1\n", "disruption-controller")

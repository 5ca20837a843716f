"""kind faults: which node they break and how, with a fake docker (no engine)."""

from __future__ import annotations

import json
import subprocess

import pytest

from localcluster import faults, kindfaults


class FakeDocker:
    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes
        self.rules: dict[str, int] = {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        args = argv[1:]
        if args[0] == "ps":
            out = "\n".join(json.dumps({"Names": name}) for name in self.nodes)
            return subprocess.CompletedProcess(argv, 0, out, "")
        node, action = args[1], args[5]
        assert args[2:5] == ["iptables", "-t", "raw"]
        assert kindfaults.SERVICE_SUBNET in args
        assert "DROP" in args
        count = self.rules.get(node, 0)
        if action == "-C":
            return subprocess.CompletedProcess(argv, 0 if count else 1, "", "")
        self.rules[node] = count + (1 if action == "-I" else -1)
        return subprocess.CompletedProcess(argv, 0, "", "")


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
    with pytest.raises(kindfaults.ClusterError, match="node-service-routing-dropped"):
        kindfaults.lookup("bogus")

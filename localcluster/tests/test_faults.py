"""Unit tests of the local cluster's faults that need no node: names, records, argv changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from localcluster import __main__ as cli
from localcluster import config, faults
from localcluster.util import ClusterError


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.Paths:
    """A state folder of the test's own, and a lock file in it."""
    monkeypatch.setenv("KUBE_ALIVE_FAULT_LOCK", str(tmp_path / "fault.lock"))
    made = config.Paths(state=tmp_path / "state", cache=tmp_path / "cache")
    made.run.mkdir(parents=True)
    return made


def test_an_unknown_fault_is_one_line_naming_the_known_ones():
    with pytest.raises(ClusterError) as caught:
        faults.lookup("no-such-fault")
    text = str(caught.value)
    assert "\n" not in text
    for name in faults.FAULTS:
        assert name in text


def test_the_matrix_faults_exist_and_say_what_they_break():
    assert set(faults.FAULTS) >= {
        "service-routing-stopped",
        "service-routing-late",
        "hpa-controller-off",
        "deployment-controller-off",
        "metrics-api-gone",
    }
    for fault in faults.FAULTS.values():
        assert all((fault.component, fault.broken, fault.how))
    assert len(faults.describe()) == len(faults.FAULTS)


def test_a_fault_on_an_unhealthy_cluster_is_not_applicable_and_leaves_no_record(paths):
    with pytest.raises(faults.FaultNotApplicable, match="not running healthy"):
        faults.apply(paths, "hpa-controller-off", lambda _: None, healthy=lambda: False)
    assert faults.active(paths) is None
    assert not faults.lock_path().exists()


def test_a_second_fault_is_refused_while_one_is_applied(paths):
    (paths.run / "fault.json").write_text(json.dumps({"name": "metrics-api-gone"}))
    with pytest.raises(faults.FaultNotApplicable, match="metrics-api-gone is applied"):
        faults.apply(paths, "hpa-controller-off", lambda _: None, healthy=lambda: True)


def test_a_recorded_fault_is_active_and_a_stopped_component_is_excused(paths):
    assert faults.active(paths) is None
    assert faults.excused(paths) == set()
    (paths.run / "fault.json").write_text(json.dumps({"name": "metrics-api-gone"}))
    assert faults.active(paths) is faults.FAULTS["metrics-api-gone"]
    assert faults.excused(paths) == {"metrics-server"}
    # A component restarted with other settings runs: nothing to excuse.
    (paths.run / "fault.json").write_text(json.dumps({"name": "hpa-controller-off"}))
    assert faults.excused(paths) == set()


def test_an_unreadable_record_still_counts_as_a_fault_to_clear(paths):
    (paths.run / "fault.json").write_text("{not json")
    fault = faults.active(paths)
    assert fault is not None
    assert fault.name == "unknown"


def test_clear_without_a_fault_says_so(paths):
    said = []
    assert faults.clear(paths, said.append) is False
    assert said == ["no fault applied"]


def test_clear_of_another_name_is_refused(paths):
    (paths.run / "fault.json").write_text(json.dumps({"name": "metrics-api-gone"}))
    with pytest.raises(ClusterError, match="metrics-api-gone is applied, not hpa-controller-off"):
        faults.clear(paths, lambda _: None, "hpa-controller-off")


def test_clear_for_up_removes_the_record_and_the_lock(paths):
    (paths.run / "fault.json").write_text(json.dumps({"name": "metrics-api-gone"}))
    faults.lock_path().write_text("metrics-api-gone\n")
    said = []
    assert faults.clear(paths, said.append, restart=False) is True
    assert faults.active(paths) is None
    assert not faults.lock_path().exists()
    assert "metrics-api-gone cleared" in said[-1]


def test_controller_faults_disable_one_controller_and_keep_the_rest():
    argv = ["kcm", "--kubeconfig=x"]
    hpa = faults.FAULTS["hpa-controller-off"].argv
    deployment = faults.FAULTS["deployment-controller-off"].argv
    assert hpa is not None
    assert deployment is not None
    assert hpa(config.Paths(Path("/s"), Path("/c")), argv) == [
        *argv,
        "--controllers=*,-horizontal-pod-autoscaler-controller",
    ]
    assert (
        deployment(config.Paths(Path("/s"), Path("/c")), argv)[-1]
        == "--controllers=*,-deployment-controller"
    )


def test_late_routing_restarts_kube_proxy_with_a_long_min_sync_period(paths):
    cfg = paths.state / "config"
    cfg.mkdir(parents=True)
    (cfg / "kube-proxy.yaml").write_text(yaml.safe_dump({"mode": "iptables"}))
    late = faults.FAULTS["service-routing-late"].argv
    assert late is not None
    argv = late(paths, ["kube-proxy", f"--config={cfg / 'kube-proxy.yaml'}"])
    assert argv == ["kube-proxy", f"--config={cfg / 'kube-proxy-late.yaml'}"]
    settings = yaml.safe_load((cfg / "kube-proxy-late.yaml").read_text())
    assert settings == {"mode": "iptables", "iptables": {"minSyncPeriod": f"{faults.LATE_SYNC_S}s"}}


def test_cli_unknown_fault_exits_1_with_one_line(capsys):
    assert cli.main(["fault", "apply", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "unknown fault 'nope'" in err
    assert "service-routing-stopped" in err


def test_cli_lists_every_fault(capsys):
    assert cli.main(["fault", "list"]) == 0
    out = capsys.readouterr().out
    for name in faults.FAULTS:
        assert name in out


def test_a_restart_is_refused_while_a_fault_is_applied_and_touches_nothing(paths):
    (paths.run / "fault.json").write_text(json.dumps({"name": "metrics-api-gone"}))
    with pytest.raises(faults.FaultNotApplicable, match="cannot restart kube-apiserver: fault"):
        faults.restart(paths, "kube-apiserver", lambda _: None)
    assert not faults.lock_path().exists()

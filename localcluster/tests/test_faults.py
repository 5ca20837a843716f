"""Unit tests of the local cluster's faults and variants that need no node: names, records, argv
changes, admission policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster import __main__ as cli
from localcluster import components, config, faults, processes
from localcluster.util import ClusterError
from suite import naming

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
ADMISSION_FAULTS = [name for name, fault in faults.FAULTS.items() if fault.admission is not None]


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
    assert said == ["no fault or variant applied"]


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


def _manifest(app: str, kind: str) -> dict[str, Any]:
    name = "service" if kind == "Service" else "deployment"
    return dict(yaml.safe_load((MANIFESTS / app / f"{name}.yaml").read_text()))


def _container(app: str) -> dict[str, Any]:
    (container,) = _manifest(app, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_wider_matrix_has_five_admission_faults_and_four_variants():
    assert set(ADMISSION_FAULTS) == {
        "admission-probe-slowed",
        "admission-readiness-stripped",
        "admission-cpu-request-changed",
        "admission-session-affinity",
        "admission-memory-limit-raised",
    }
    assert set(faults.VARIANTS) == {
        "hpa-sync-slow",
        "metrics-resolution-slow",
        "proxy-sync-period",
        "kube-proxy-nftables",
    }
    assert not set(faults.FAULTS) & set(faults.VARIANTS), "a name must say fault or variant"
    for variant in faults.VARIANTS.values():
        assert variant.kind == "variant"
        assert all((variant.component, variant.how, variant.valid))
        assert variant.argv is not None, "a variant runs its component, otherwise configured"
    assert len(faults.describe_variants()) == len(faults.VARIANTS)


@pytest.mark.parametrize("name", ADMISSION_FAULTS)
def test_an_admission_policy_acts_on_one_app_in_the_suites_namespaces_only(name):
    fault = faults.FAULTS[name]
    admission = fault.admission
    assert admission is not None
    policy, binding = faults.policy_objects(name, admission)
    assert policy["kind"] == "MutatingAdmissionPolicy"
    assert binding["kind"] == "MutatingAdmissionPolicyBinding"
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1beta1"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    for made in (policy, binding):
        assert made["metadata"]["labels"] == {faults.CHANGE_LABEL: name}
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["operations"] == ["CREATE"]
    assert rule["resources"] == [admission.resource]
    assert policy["spec"]["failurePolicy"] == "Ignore"
    (mutation,) = policy["spec"]["mutations"]
    assert mutation == {"patchType": "JSONPatch", "jsonPatch": {"expression": admission.patch}}
    selects = binding["spec"]["matchResources"]
    # The suite's test namespaces carry this label (suite/naming.py): the policy acts there.
    assert selects["namespaceSelector"] == {"matchLabels": {naming.PART_OF_LABEL: naming.PART_OF}}
    assert selects["objectSelector"] == {"matchLabels": {faults.APP_LABEL: admission.app}}
    # ... and the app's manifests carry the label the binding selects on.
    kind = "Service" if admission.resource == "services" else "Deployment"
    manifest = _manifest(admission.app, kind)
    labels = (
        manifest["metadata"]["labels"]
        if kind == "Service"
        else manifest["spec"]["template"]["metadata"]["labels"]
    )
    assert labels[faults.APP_LABEL] == admission.app
    assert not fault.stops, "an admission fault leaves every component running"


@pytest.mark.parametrize("name", ADMISSION_FAULTS)
def test_the_dry_run_check_tells_a_rewritten_object_from_a_submitted_one(name):
    admission = faults.FAULTS[name].admission
    assert admission is not None
    sample = json.loads(json.dumps(admission.sample))
    seen = admission.seen(sample)
    assert seen is not None, "the submitted sample must not pass as mutated"
    assert "dry-run" in seen
    if admission.resource == "services":
        sample["spec"]["sessionAffinity"] = "ClientIP"
    else:
        container = sample["spec"]["containers"][0]
        assert container["name"] == admission.app, "the manifests name the container after the app"
        if "livenessProbe" in container:
            container["livenessProbe"]["periodSeconds"] = faults.SLOWED_LIVENESS_PERIOD_S
        elif "readinessProbe" in container:
            del container["readinessProbe"]
        elif admission.app == "memhog":
            container["resources"]["limits"]["memory"] = faults.RAISED_MEMORY_LIMIT
        else:
            container["resources"]["requests"]["cpu"] = faults.CHANGED_CPU_REQUEST
    assert admission.seen(sample) is None


def test_each_admission_fault_changes_a_value_the_manifests_submit_to_another_valid_one():
    healthcheck = _container("healthcheck")
    assert healthcheck["livenessProbe"]["periodSeconds"] != faults.SLOWED_LIVENESS_PERIOD_S
    assert "readinessProbe" in _container("incver")
    cpuhog = _container("cpuhog")["resources"]
    millicores = int(faults.CHANGED_CPU_REQUEST.removesuffix("m"))
    assert cpuhog["requests"]["cpu"] != faults.CHANGED_CPU_REQUEST
    # Above its limit the API server would reject the pod instead of admitting it changed.
    assert millicores <= int(cpuhog["limits"]["cpu"].removesuffix("m"))
    assert "sessionAffinity" not in _manifest("getip", "Service")["spec"]
    memhog = _container("memhog")["resources"]
    assert memhog["limits"]["memory"] != faults.RAISED_MEMORY_LIMIT


def test_the_api_server_serves_mutating_admission_policies(paths):
    (spec,) = [spec for spec in components.specs(paths) if spec.name == "kube-apiserver"]
    assert "--feature-gates=MutatingAdmissionPolicy=true" in spec.argv
    assert "--runtime-config=admissionregistration.k8s.io/v1beta1=true" in spec.argv


def test_an_admission_fault_is_recorded_then_made_through_the_api_and_checked(paths, monkeypatch):
    done: list[str] = []
    monkeypatch.setattr(faults, "_serve_admission_policies", lambda p, log: done.append("served"))
    monkeypatch.setattr(
        faults,
        "_create_admission",
        lambda p, change, admission: done.append(
            f"created; recorded {json.loads((p.run / 'fault.json').read_text())['name']}"
        ),
    )
    monkeypatch.setattr(faults, "_dry_run_shows", lambda p, admission: None)
    monkeypatch.setattr(faults, "_stop", lambda p, component: done.append(f"stopped {component}"))
    said: list[str] = []
    faults.apply(paths, "admission-probe-slowed", said.append, healthy=lambda: True)
    assert done == ["served", "created; recorded admission-probe-slowed"]
    assert faults.lock_path().read_text() == "admission-probe-slowed\n"
    assert said[-1].startswith("fault admission-probe-slowed applied: a MutatingAdmissionPolicy")
    assert faults.excused(paths) == set()


def test_an_admission_fault_clears_through_the_api_or_waits_for_it(paths, monkeypatch):
    (paths.run / "fault.json").write_text(json.dumps({"name": "admission-session-affinity"}))
    faults.lock_path().write_text("admission-session-affinity\n")
    deleted: list[bool] = []
    monkeypatch.setattr(faults, "_delete_admission", lambda p, log: deleted.append(True))
    monkeypatch.setattr(faults, "_stop", lambda p, component: pytest.fail("nothing to stop"))
    # The API server is down (`up` before it started): the record stays for later.
    monkeypatch.setattr(components, "api", lambda p, path: (0, "connection refused"))
    said: list[str] = []
    assert faults.clear(paths, said.append, restart=False) is True
    assert deleted == []
    assert faults.active(paths) is faults.FAULTS["admission-session-affinity"]
    assert "once it runs" in said[-1]
    # Up again: the policies are deleted and the record and lock go.
    monkeypatch.setattr(components, "api", lambda p, path: (200, "ok"))
    assert faults.clear(paths, said.append, restart=False) is True
    assert deleted == [True]
    assert faults.active(paths) is None
    assert not faults.lock_path().exists()
    assert said[-1] == "fault admission-session-affinity cleared"


def test_an_unreadable_record_also_removes_leftover_policies(paths, monkeypatch):
    (paths.run / "fault.json").write_text("{not json")
    deleted: list[bool] = []
    monkeypatch.setattr(faults, "_delete_admission", lambda p, log: deleted.append(True))
    monkeypatch.setattr(components, "api", lambda p, path: (200, "ok"))
    assert faults.clear(paths, lambda _: None) is True
    assert deleted == [True]
    assert faults.active(paths) is None


def test_the_dry_run_check_creates_nothing(paths, monkeypatch):
    calls: list[tuple[str, ...]] = []

    def kubectl(p: config.Paths, *args: str, input_text: str | None = None) -> str:
        calls.append(args)
        sample = json.loads(input_text or "{}")
        sample["spec"]["sessionAffinity"] = "ClientIP"
        return json.dumps(sample)

    monkeypatch.setattr(faults, "_kubectl", kubectl)
    admission = faults.FAULTS["admission-session-affinity"].admission
    assert admission is not None
    assert faults._dry_run_shows(paths, admission) is None
    (args,) = calls
    assert args[:2] == ("create", "--dry-run=server")
    assert args[args.index("-n") + 1] == faults.CHECK_NAMESPACE


def test_variants_change_one_setting_to_another_valid_value(paths):
    cfg = paths.state / "config"
    cfg.mkdir(parents=True)
    (cfg / "kube-proxy.yaml").write_text(yaml.safe_dump({"mode": "iptables", "bindAddress": "x"}))
    hpa = faults.VARIANTS["hpa-sync-slow"].argv
    metrics = faults.VARIANTS["metrics-resolution-slow"].argv
    sync = faults.VARIANTS["proxy-sync-period"].argv
    nft = faults.VARIANTS["kube-proxy-nftables"].argv
    assert hpa is not None
    assert metrics is not None
    assert sync is not None
    assert nft is not None
    kcm = ["kcm", "--horizontal-pod-autoscaler-sync-period=2s", "--profiling=false"]
    assert hpa(paths, kcm) == [
        "kcm",
        "--profiling=false",
        "--horizontal-pod-autoscaler-sync-period=15s",
    ]
    assert metrics(paths, ["ms", "--metric-resolution=10s"]) == ["ms", "--metric-resolution=30s"]
    proxy = ["kube-proxy", f"--config={cfg / 'kube-proxy.yaml'}"]
    assert sync(paths, proxy) == ["kube-proxy", f"--config={cfg / 'kube-proxy-sync.yaml'}"]
    assert yaml.safe_load((cfg / "kube-proxy-sync.yaml").read_text()) == {
        "mode": "iptables",
        "bindAddress": "x",
        "iptables": {"syncPeriod": "10s", "minSyncPeriod": "0s"},
    }
    assert nft(paths, proxy) == ["kube-proxy", f"--config={cfg / 'kube-proxy-nftables.yaml'}"]
    assert yaml.safe_load((cfg / "kube-proxy-nftables.yaml").read_text()) == {
        "mode": "nftables",
        "bindAddress": "x",
    }
    # A slower resolution needs a longer readiness deadline: two scrapes before the first rate.
    assert faults.VARIANTS["metrics-resolution-slow"].ready_within_s == 2 * 30 + 60


def test_the_autoscaling_scenario_reads_the_settings_the_timing_variants_change():
    from suite import timing

    hpa = faults.VARIANTS["hpa-sync-slow"].argv
    metrics = faults.VARIANTS["metrics-resolution-slow"].argv
    assert hpa is not None
    assert metrics is not None
    paths = config.Paths(Path("/s"), Path("/c"))
    read = timing.read(
        (hpa(paths, ["kcm", "--horizontal-pod-autoscaler-sync-period=2s"]), "kcm"),
        (metrics(paths, ["ms", "--metric-resolution=10s"]), "ms"),
    )
    assert read.hpa_sync.seconds == 15.0
    assert read.metrics_resolution.seconds == faults.METRICS_RESOLUTION_VARIANT_S


def test_a_variant_is_recorded_as_one_and_refused_while_a_fault_is_applied(paths, monkeypatch):
    (paths.run / "fault.json").write_text(json.dumps({"name": "metrics-api-gone"}))
    with pytest.raises(faults.FaultNotApplicable, match="fault metrics-api-gone is applied"):
        faults.apply_variant(paths, "hpa-sync-slow", lambda _: None, healthy=lambda: True)
    (paths.run / "fault.json").unlink()
    started: list[list[str]] = []
    monkeypatch.setattr(faults, "_stop", lambda p, component: None)
    monkeypatch.setattr(
        faults, "_start", lambda p, spec, argv, log, deadline_s=None: started.append(argv)
    )
    monkeypatch.setattr(
        faults,
        "_spec",
        lambda p, name: components.Spec(name, ["/bin/sh", "--x=1"], lambda: None, 1.0),
    )
    said: list[str] = []
    faults.apply_variant(paths, "hpa-sync-slow", said.append, healthy=lambda: True)
    assert started == [["/bin/sh", "--x=1", "--horizontal-pod-autoscaler-sync-period=15s"]]
    assert faults.lock_path().read_text() == "variant hpa-sync-slow\n"
    assert json.loads((paths.run / "fault.json").read_text())["kind"] == "variant"
    assert faults.active(paths) is faults.VARIANTS["hpa-sync-slow"]
    assert faults.excused(paths) == set()
    with pytest.raises(ClusterError, match="variant hpa-sync-slow is applied, not hpa-controller"):
        faults.clear(paths, lambda _: None, "hpa-controller-off")
    # With the API server running, clear starts the component again with its normal argv.
    monkeypatch.setattr(processes, "pid_of", lambda p, name: 1)
    assert faults.clear(paths, said.append, "hpa-sync-slow") is True
    assert started[-1] == ["/bin/sh", "--x=1"]
    assert said[-1] == "variant hpa-sync-slow cleared"
    assert not faults.lock_path().exists()


def test_cli_lists_every_variant_and_refuses_an_unknown_one(capsys):
    assert cli.main(["variant", "list"]) == 0
    out = capsys.readouterr().out
    for name in faults.VARIANTS:
        assert name in out
    assert cli.main(["variant", "apply", "hpa-controller-off"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "unknown variant 'hpa-controller-off'" in err
    assert "hpa-sync-slow" in err

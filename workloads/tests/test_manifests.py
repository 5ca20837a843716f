"""manifests/: valid for Kubernetes 1.34 (offline schema) and true to the house policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from workloads import APPS, incver
from workloads.__main__ import SERVING

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
KUBERNETES_VERSION = "1.34"
ALLOWED_API_VERSIONS = {
    "v1",
    "apps/v1",
    "autoscaling/v2",
    "rbac.authorization.k8s.io/v1",
}
IMAGE = "localhost/kube-alive/workloads:v1"
DOWNWARD_ENV = {
    "POD_NAME": "metadata.name",
    "POD_IP": "status.podIP",
    "NODE_NAME": "spec.nodeName",
}
POD_TEMPLATE_KINDS = {"Deployment"}
#: One folder per app, plus folders that run an app of the image otherwise for one scenario
#: (incver-abrupt: incver without its drain); those are the suite's, not the demo's.
FOLDERS = sorted(p.name for p in MANIFESTS.iterdir() if p.is_dir())


def resource_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in resource_files():
        for obj in documents(path):
            yield path, obj


def objects_of(app: str, kind: str) -> list[dict[str, Any]]:
    return [obj for path, obj in all_objects() if path.parent.name == app and obj["kind"] == kind]


def the(app: str, kind: str) -> dict[str, Any]:
    (obj,) = objects_of(app, kind)
    return obj


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for path, obj in all_objects():
        if obj["kind"] in POD_TEMPLATE_KINDS:
            spec = pod_spec(obj)
            for container in spec["containers"] + spec.get("initContainers", []):
                yield path.parent.name, spec, container


def app_of(folder: str) -> str:
    """The app of the image a folder's Deployment runs (its container's argument)."""
    (container,) = pod_spec(the(folder, "Deployment"))["containers"]
    return str(container["args"][0])


def rel(path: Path) -> str:
    return str(path.relative_to(MANIFESTS))


# Schema and structure.


@pytest.mark.parametrize("path", resource_files(), ids=rel)
def test_every_object_validates_against_the_kubernetes_schema(path: Path) -> None:
    objs = documents(path)
    assert objs, f"{rel(path)} is empty"
    for obj in objs:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", resource_files(), ids=rel)
def test_every_file_uses_current_api_versions_and_no_namespace(path: Path) -> None:
    for obj in documents(path):
        assert obj["apiVersion"] in ALLOWED_API_VERSIONS, f"{rel(path)}: {obj['apiVersion']}"
        if obj["kind"] != "Namespace":
            assert "namespace" not in obj["metadata"], (
                f"{rel(path)}: the suite chooses the namespace"
            )


@pytest.mark.parametrize("path", resource_files(), ids=rel)
def test_every_file_explains_itself_in_a_comment(path: Path) -> None:
    assert any(line.lstrip().startswith("#") for line in path.read_text().splitlines())


@pytest.mark.parametrize("path", resource_files(), ids=rel)
def test_every_object_carries_the_kube_alive_labels(path: Path) -> None:
    for obj in documents(path):
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "kube-alive", rel(path)
        if obj["kind"] != "Namespace":
            assert labels.get("app.kubernetes.io/name") == path.parent.name, rel(path)
        if obj["kind"] in POD_TEMPLATE_KINDS:
            template_labels = obj["spec"]["template"]["metadata"]["labels"]
            assert template_labels["app.kubernetes.io/name"] == path.parent.name
            assert template_labels["app.kubernetes.io/part-of"] == "kube-alive"
            assert obj["spec"]["selector"]["matchLabels"] == {
                "app.kubernetes.io/name": path.parent.name
            }


def test_the_top_level_kustomization_deploys_the_demo_without_the_prober_into_kube_alive() -> None:
    top = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert top["namespace"] == "kube-alive"
    assert set(FOLDERS) >= set(APPS)
    for folder in set(FOLDERS) - set(APPS):
        assert app_of(folder) in APPS, folder
    # The prober is the suite's, deployed per test: the demo (the frontend) never uses it.
    # Nor memhog: its POST /oom hurts a pod on purpose, for the OOM scenario only.
    demo = [app for app in APPS if app not in ("prober", "memhog")]
    assert top["resources"] == ["namespace.yaml", *(f"{app}/" for app in demo)]
    namespace = documents(MANIFESTS / "namespace.yaml")[0]
    assert namespace["metadata"]["name"] == "kube-alive"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("app", FOLDERS)
def test_each_workload_kustomization_lists_exactly_its_files(app: str) -> None:
    directory = MANIFESTS / app
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources"}
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    present = {p.name for p in directory.iterdir() if p.name != "kustomization.yaml"}
    assert set(listed) == present
    assert all(name.endswith(".yaml") for name in listed)


# Containers and pods.


def test_there_is_one_deployment_per_app() -> None:
    for app in FOLDERS:
        assert the(app, "Deployment")["metadata"]["name"] == app


@pytest.mark.parametrize("app", FOLDERS)
def test_the_container_runs_the_app_from_the_workloads_image(app: str) -> None:
    (container,) = pod_spec(the(app, "Deployment"))["containers"]
    assert container["image"] == IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == [app if app in APPS else app_of(app)]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_every_container_has_requests_limits_and_probes() -> None:
    seen = 0
    for app, _, container in containers():
        seen += 1
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) >= {"cpu", "memory"}, (app, bound)
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == "http", (app, probe)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert seen == len(FOLDERS)


def test_every_pod_passes_pod_security_restricted() -> None:
    for app, spec, container in containers():
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, app
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, app
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True, app
        assert sc["runAsUser"] == 10001, app
        assert sc["allowPrivilegeEscalation"] is False, app
        assert sc["capabilities"] == {"drop": ["ALL"]}, app
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, app
        assert sc["readOnlyRootFilesystem"] is True, app
        assert "privileged" not in sc
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(field), (app, field)
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= {"emptyDir", "configMap", "secret", "projected"}


def test_every_container_gets_the_downward_api_and_a_writable_tmp() -> None:
    for app, spec, container in containers():
        env = {e["name"]: e for e in container["env"]}
        for name, field_path in DOWNWARD_ENV.items():
            assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == field_path, (app, name)
        assert "APP_VERSION" not in env, "the version comes from the image"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], app


def test_only_the_frontend_mounts_a_service_account_token() -> None:
    for app in FOLDERS:
        spec = pod_spec(the(app, "Deployment"))
        if app == "frontend":
            assert spec["serviceAccountName"] == "frontend"
            assert spec["automountServiceAccountToken"] is True
        else:
            assert spec["automountServiceAccountToken"] is False, app
            assert "serviceAccountName" not in spec, app


@pytest.mark.parametrize("app", FOLDERS)
def test_each_service_is_named_after_its_app_on_port_80(app: str) -> None:
    service = the(app, "Service")
    assert service["metadata"]["name"] == app
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": app}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    ]


# What each scenario relies on.


def test_getip_runs_four_replicas() -> None:
    assert the("getip", "Deployment")["spec"]["replicas"] == 4


def test_healthcheck_turns_not_ready_on_one_failure_and_restarts_only_after_several() -> None:
    deployment = the("healthcheck", "Deployment")
    assert deployment["spec"]["replicas"] == 2
    spec = pod_spec(deployment)
    assert spec.get("restartPolicy", "Always") == "Always"
    (container,) = spec["containers"]
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert (readiness["periodSeconds"], readiness["failureThreshold"]) == (1, 1)
    # An infected pod is NotReady but alive for several seconds before its restart.
    assert liveness["periodSeconds"] == 1
    assert liveness["failureThreshold"] >= 5
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_cpuhog_has_a_small_request_a_limit_and_an_hpa() -> None:
    deployment = the("cpuhog", "Deployment")
    assert deployment["spec"]["replicas"] == 1
    (container,) = pod_spec(deployment)["containers"]
    assert container["resources"]["requests"]["cpu"] == "100m"
    assert container["resources"]["limits"]["cpu"] == "250m"
    hpa = the("cpuhog", "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "cpuhog",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 50}
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    scale_down = hpa["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] == 10
    # Some policy may remove every surplus pod (3 of 4) in one step.
    assert any(
        (p["type"] == "Percent" and p["value"] >= 75) or (p["type"] == "Pods" and p["value"] >= 3)
        for p in scale_down["policies"]
    )


def test_incver_rolls_without_losing_capacity_and_drains_before_stopping() -> None:
    deployment = the("incver", "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 4
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert spec["minReadySeconds"] == 0
    pod = pod_spec(deployment)
    (container,) = pod["containers"]
    assert container["readinessProbe"]["periodSeconds"] == 1
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # The preStop hook is the app's drain: readiness fails at once, serving goes on for 4 s.
    hook = container["lifecycle"]["preStop"]["httpGet"]
    assert hook == {"path": "/drain?seconds=4", "port": "http"}
    drain = int(hook["path"].rsplit("=", 1)[1])
    assert drain <= incver.MAX_DRAIN_S
    assert pod["terminationGracePeriodSeconds"] == 20
    # gunicorn must finish in-flight requests before kubelet's deadline.
    assert drain + SERVING["incver"].graceful_timeout < pod["terminationGracePeriodSeconds"]


def test_every_app_can_finish_its_requests_within_the_grace_period() -> None:
    for app in FOLDERS:
        pod = pod_spec(the(app, "Deployment"))
        (container,) = pod["containers"]
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {})
        budget = pod.get("terminationGracePeriodSeconds", 30) - pre_stop.get("seconds", 0)
        assert SERVING[app_of(app)].graceful_timeout < budget, app


def test_prober_and_frontend_run_one_replica() -> None:
    assert the("prober", "Deployment")["spec"]["replicas"] == 1
    assert the("frontend", "Deployment")["spec"]["replicas"] == 1


def test_the_frontend_role_only_reads_pods() -> None:
    # The frontend's other, name-scoped Roles are checked in test_frontend_manifests.py.
    (role,) = [
        r for r in objects_of("frontend", "Role") if r["metadata"]["name"] == "frontend-pod-reader"
    ]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    (binding,) = [
        b
        for b in objects_of("frontend", "RoleBinding")
        if b["roleRef"]["name"] == "frontend-pod-reader"
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "frontend-pod-reader",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "frontend"}]
    assert the("frontend", "ServiceAccount")["metadata"]["name"] == "frontend"
    assert not [obj for _, obj in all_objects() if obj["kind"].startswith("Cluster")]


def test_the_schema_check_catches_a_mistake() -> None:
    broken = the("getip", "Deployment")
    broken["spec"]["replicas"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    unknown = the("getip", "Service")
    unknown["spec"]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSION, strict=True)

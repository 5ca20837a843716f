import inspect
import re
import sys
import types
from pathlib import Path

import pytest

from suite import images, providers
from suite.providers import ProviderOptions, existing, kind, local
from suite.providers.base import ProviderError, run_command
from suite.providers.existing import ExistingProvider
from suite.tests.fakes import FakeKube


def test_every_provider_module_is_found():
    assert list(providers.provider_classes()) == ["existing", "kind", "local"]
    for name, cls in providers.provider_classes().items():
        assert cls.name == name
        assert cls.help


def test_unknown_provider():
    with pytest.raises(ProviderError, match="unknown provider 'bogus'"):
        providers.create("bogus", ProviderOptions(), print)


def test_existing_rewrites_images_for_the_registry():
    provider = ExistingProvider(ProviderOptions(image_registry="pi-registry:5000"), lambda m: None)
    assert (
        provider.image_ref("localhost/kube-alive/workloads:v2")
        == "pi-registry:5000/kube-alive/workloads:v2"
    )
    assert "pi-registry:5000" in provider.image_hint
    assert "--image-registry" in ExistingProvider(ProviderOptions(), lambda m: None).image_hint
    assert ExistingProvider.usage_errors(ProviderOptions(image_registry="https://x")) != []


def test_local_and_kind_reject_options_they_cannot_honour():
    errors = local.LocalProvider.usage_errors(
        ProviderOptions(kubeconfig=Path("k"), context="c", image_registry="r")
    )
    assert len(errors) == 3
    assert any("--image-registry" in e and "--cluster=existing" in e for e in errors)
    assert kind.KindProvider.usage_errors(ProviderOptions(context="c", image_registry="r"))
    assert kind.KindProvider.usage_errors(ProviderOptions(kubeconfig=Path("k"))) == []


class FakeLocalCluster(types.ModuleType):
    def __init__(self, healthy):
        super().__init__("localcluster.api")
        self.healthy = healthy
        self.calls = []

    def is_healthy(self):
        self.calls.append("is_healthy")
        return self.healthy

    def up(self, log):
        self.calls.append("up")
        self.healthy = True

    def kubeconfig_path(self):
        return Path("/var/lib/kube-alive/admin.kubeconfig")

    def load_images(self, refs, log):
        self.calls.append(("load_images", list(refs)))

    def down(self, log):  # must never be called by the provider
        self.calls.append("down")


@pytest.mark.parametrize("healthy", [True, False])
def test_local_starts_the_cluster_only_when_none_is_healthy_and_never_stops_it(
    monkeypatch, healthy
):
    fake = FakeLocalCluster(healthy)
    monkeypatch.setitem(sys.modules, "localcluster.api", fake)
    provider = local.LocalProvider(ProviderOptions(), lambda m: None)
    provider.prepare()
    assert ("up" in fake.calls) is (not healthy)
    assert provider.created is (not healthy)
    assert provider.kubeconfig().kubeconfig == Path("/var/lib/kube-alive/admin.kubeconfig")
    assert provider.kubeconfig().context is None
    provider.make_images_available(["localhost/kube-alive/workloads:v1"])
    provider.teardown()
    assert "down" not in fake.calls
    assert ("load_images", ["localhost/kube-alive/workloads:v1"]) in fake.calls


def test_the_local_protocol_matches_the_real_localcluster_api():
    api = pytest.importorskip("localcluster.api")
    for name in ("is_healthy", "up", "kubeconfig_path", "load_images"):
        expected = list(inspect.signature(getattr(local.LocalClusterAPI, name)).parameters)[1:]
        assert list(inspect.signature(getattr(api, name)).parameters) == expected, name


def test_kind_config_has_one_control_plane_and_two_workers():
    import yaml

    config = yaml.safe_load(kind.kind_config())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [node["role"] for node in config["nodes"]] == ["control-plane", "worker", "worker"]
    assert {node["image"] for node in config["nodes"]} == {kind.NODE_IMAGE}


def test_kind_command_lines(tmp_path):
    assert kind.get_clusters_command() == ["kind", "get", "clusters"]
    assert kind.create_command(tmp_path / "kind.yaml", tmp_path / "kubeconfig") == [
        "kind",
        "create",
        "cluster",
        "--name",
        "kube-alive",
        "--config",
        str(tmp_path / "kind.yaml"),
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
        "--wait",
        "120s",
    ]
    assert kind.load_command("localhost/kube-alive/workloads:v1") == [
        "kind",
        "load",
        "docker-image",
        "localhost/kube-alive/workloads:v1",
        "--name",
        "kube-alive",
    ]
    assert kind.delete_command() == ["kind", "delete", "cluster", "--name", "kube-alive"]
    build = kind.docker_build_command("localhost/kube-alive/workloads:v2", Path("/repo"))
    assert build == [
        "docker",
        "build",
        "-f",
        "/repo/workloads/Dockerfile",
        "--build-arg",
        "VERSION=v2",
        "-t",
        "localhost/kube-alive/workloads:v2",
        "/repo",
    ]
    apply, patch = kind.metrics_server_commands(tmp_path / "kc")
    assert apply[:5] == [
        "kubectl",
        "--kubeconfig",
        str(tmp_path / "kc"),
        "--context",
        "kind-kube-alive",
    ]
    assert apply[-2:] == ["-f", kind.METRICS_SERVER_MANIFEST]
    assert "--kubelet-insecure-tls" in patch[-1]


def test_kind_creates_a_missing_cluster_and_loads_images(monkeypatch):
    commands = []

    def fake_run(args, **kwargs):
        commands.append(list(args))
        if args[:3] == ["docker", "image", "inspect"] and args[-1].endswith(":v2"):
            raise ProviderError("no such image")
        return types.SimpleNamespace(stdout="other-cluster\n")

    monkeypatch.setattr(kind, "run_command", fake_run)
    monkeypatch.setattr(kind.shutil, "which", lambda name: f"/usr/bin/{name}")
    provider = kind.KindProvider(ProviderOptions(repo_root=Path("/repo")), lambda m: None)
    provider.prepare()
    assert provider.created
    assert commands[1][:3] == ["kind", "create", "cluster"]
    assert provider.kubeconfig().context == "kind-kube-alive"
    commands.clear()
    provider.make_images_available(
        ["localhost/kube-alive/workloads:v1", "localhost/kube-alive/workloads:v2"]
    )
    assert [c[:2] for c in commands] == [
        ["docker", "image"],
        ["kind", "load"],
        ["docker", "image"],
        ["docker", "build"],
        ["kind", "load"],
    ]
    commands.clear()
    provider.teardown()
    assert commands == [kind.delete_command()]


def test_kind_reuses_an_existing_cluster_and_keeps_it(monkeypatch):
    commands = []

    def fake_run(args, **kwargs):
        commands.append(list(args))
        return types.SimpleNamespace(
            stdout="kube-alive\n" if args[:3] == ["kind", "get", "clusters"] else "apiVersion: v1\n"
        )

    monkeypatch.setattr(kind, "run_command", fake_run)
    monkeypatch.setattr(kind.shutil, "which", lambda name: f"/usr/bin/{name}")
    provider = kind.KindProvider(ProviderOptions(), lambda m: None)
    provider.prepare()
    assert not provider.created
    assert provider.kubeconfig().kubeconfig.read_text() == "apiVersion: v1\n"
    commands.clear()
    provider.teardown()
    assert commands == []


def test_kind_without_the_cli_says_so(monkeypatch):
    monkeypatch.setattr(kind.shutil, "which", lambda name: None)
    with pytest.raises(ProviderError, match="needs the kind CLI"):
        kind.KindProvider(ProviderOptions(), lambda m: None).prepare()


def test_run_command_reports_the_failure():
    with pytest.raises(ProviderError, match=r"exited|exit code 3"):
        run_command(
            [sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"],
            timeout_s=30,
        )
    with pytest.raises(ProviderError, match="not found on PATH"):
        run_command(["definitely-not-a-command-kube-alive"], timeout_s=5)
    with pytest.raises(ProviderError, match="took longer than"):
        run_command([sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.2)


def test_local_cluster_errors_become_provider_errors(monkeypatch):
    fake = FakeLocalCluster(healthy=False)

    def broken_up(log):
        raise RuntimeError("buildah not found: run localcluster/setup.sh")

    fake.up = broken_up
    monkeypatch.setitem(sys.modules, "localcluster.api", fake)
    with pytest.raises(ProviderError, match="did not start: buildah not found"):
        local.LocalProvider(ProviderOptions(), lambda m: None).prepare()


def ready_node(name, *image_names, arch="amd64"):
    return {
        "metadata": {"name": name},
        "status": {
            "nodeInfo": {"architecture": arch},
            "conditions": [{"type": "Ready", "status": "True"}],
            "images": [{"names": [image]} for image in image_names],
        },
    }


def test_existing_without_a_registry_needs_the_images_on_every_ready_node():
    refs = ["localhost/kube-alive/workloads:v1", "localhost/kube-alive/workloads:v2"]
    nodes = {"items": [ready_node("pi-1", *refs), ready_node("pi-2", refs[0])], "metadata": {}}
    kube = FakeKube().on("GET", "/api/v1/nodes", nodes)
    provider = ExistingProvider(ProviderOptions(), lambda m: None)
    assert provider.image_architectures() is None
    assert provider.images_problem(kube, refs) == (
        "no --image-registry given and the nodes lack workload images (node pi-2: "
        "localhost/kube-alive/workloads:v2): push them with scripts/build-images.sh REGISTRY "
        "--push and pass --image-registry=REGISTRY"
    )
    assert provider.images_problem(kube, refs[:1]) is None
    registry = ExistingProvider(ProviderOptions(image_registry="reg:5000"), lambda m: None)
    assert registry.images_problem(kube, refs) is None  # pulled when needed; failures name it
    assert registry.image_architectures() == {"amd64", "arm64"}


def test_existing_images_are_pushed_for_the_architectures_build_images_builds():
    script = (Path(__file__).resolve().parents[2] / "scripts" / "build-images.sh").read_text()
    default = re.search(r'platforms="\$\{PLATFORMS:-([^}]*)\}"', script)
    assert default, "scripts/build-images.sh no longer sets its default platforms"
    assert [p.removeprefix("linux/") for p in default.group(1).split(",")] == list(
        images.PUSHED_ARCHITECTURES
    )


def test_existing_names_the_metrics_server_manifest():
    missing = ExistingProvider(ProviderOptions(), lambda m: None).ensure_metrics_api(FakeKube())
    assert missing == (
        "no metrics API (v1beta1.metrics.k8s.io): install metrics-server (not registered), "
        f"e.g. kubectl apply -f {existing.METRICS_SERVER_MANIFEST}"
    )
    present = FakeKube().on("GET", "/apis/metrics.k8s.io/v1beta1", {"resources": []})
    assert ExistingProvider(ProviderOptions(), lambda m: None).ensure_metrics_api(present) is None

import inspect
import json
import os
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from suite import evidence, images, providers
from suite.providers import ProviderOptions, existing, kind, local
from suite.providers.base import ProviderError, missing_tools_problem, run_command
from suite.providers.existing import ExistingProvider
from suite.tests.fakes import Collection, FakeKube, FakeStream, event


@pytest.fixture(autouse=True)
def _kind_users_of_this_test_only(monkeypatch, tmp_path):
    monkeypatch.setenv(kind.USERS_DIR_ENV, str(tmp_path / "kind-users"))


@pytest.fixture(autouse=True)
def _no_node_image_from_the_environment(monkeypatch):
    # CI exports KUBE_ALIVE_KIND_NODE_IMAGE for its kind run; these tests state their own.
    monkeypatch.delenv("KUBE_ALIVE_KIND_NODE_IMAGE", raising=False)


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
    # The manifests' plain version is pinned to the content tag scripts/build-images.sh pushes.
    tag = images.content_tag("v2")
    assert (
        provider.image_ref("localhost/kube-alive/workloads:v2")
        == f"pi-registry:5000/kube-alive/workloads:{tag}"
    )
    assert (
        provider.image_ref(images.image_ref("v2")) == f"pi-registry:5000/kube-alive/workloads:{tag}"
    )
    assert "pi-registry:5000" in provider.image_hint
    assert tag in provider.image_hint
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

    def component_argv(self, name):
        if name == "kube-controller-manager":
            return ["kcm", "--horizontal-pod-autoscaler-sync-period=2s"]
        if name == "metrics-server":
            raise PermissionError("another user's process")
        return None


def test_local_timing_is_read_from_the_running_processes(monkeypatch):
    monkeypatch.setitem(sys.modules, "localcluster.api", FakeLocalCluster(True))
    read = local.LocalProvider(ProviderOptions(), lambda m: None).timing(kube=None)
    assert read.hpa_sync.seconds == 2.0
    assert read.hpa_sync.source == (
        "the running kube-controller-manager process: --horizontal-pod-autoscaler-sync-period=2s"
    )
    # A process it cannot see: the upstream default, said to be assumed.
    assert read.metrics_resolution.assumed
    assert read.metrics_resolution.seconds == 15.0


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
    # Off the local cluster's pod range (its host guard drops bridged traffic from it) and
    # service range (routed to its node interface on the host).
    assert config["networking"] == {"podSubnet": "10.245.0.0/16", "serviceSubnet": "10.97.0.0/16"}
    assert "config_path" in config["containerdConfigPatches"][0]


def test_kind_node_image_comes_from_the_option_then_the_environment_then_the_release():
    env = {"KUBE_ALIVE_KIND_NODE_IMAGE": "from/env:1"}
    assert kind.node_image_choice("from/option:1", env) == "from/option:1"
    assert kind.node_image_choice(None, env) == "from/env:1"
    assert kind.node_image_choice(None, {}) == kind.NODE_IMAGE
    config = yaml.safe_load(kind.kind_config(node_image="from/option:1"))
    assert {node["image"] for node in config["nodes"]} == {"from/option:1"}


@pytest.mark.parametrize(
    ("which", "answered", "error", "expected"),
    [
        ("/usr/bin/docker", True, "", None),
        (None, False, "", "--cluster=kind needs docker on PATH: install Docker"),
        (
            "/usr/bin/docker",
            False,
            "failed with exit code 1:\nCannot connect to the Docker daemon",
            "the Docker engine at unix:///x.sock does not answer (Cannot connect to the Docker "
            "daemon): install Docker",
        ),
    ],
)
def test_kind_says_in_one_line_when_docker_is_missing_or_down(
    monkeypatch, which, answered, error, expected
):
    monkeypatch.setenv("DOCKER_HOST", "unix:///x.sock")
    problem = kind.docker_problem(which, answered, error)
    if expected is None:
        assert problem is None
    else:
        assert problem.startswith(expected)
        assert "\n" not in problem
        assert "python -m localcluster engine up" in problem


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
    build = kind.docker_build_command(
        "localhost/kube-alive/workloads:v2-0123456789ab", Path("/repo")
    )
    assert build == [
        "docker",
        "build",
        "-f",
        "/repo/workloads/Dockerfile",
        "--build-arg",
        "VERSION=v2",
        "-t",
        "localhost/kube-alive/workloads:v2-0123456789ab",
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
        if args == ["kind", "version"]:
            return types.SimpleNamespace(stdout="kind v0.30.0 go1.24.6 linux/amd64\n")
        if args[:2] == ["docker", "version"]:
            return types.SimpleNamespace(stdout="20.10.24\n")
        if "wait" in args:
            return types.SimpleNamespace(stdout="node/kube-alive-worker condition met\n")
        return types.SimpleNamespace(stdout="other-cluster\n")

    monkeypatch.setattr(kind, "run_command", fake_run)
    monkeypatch.setattr(kind.shutil, "which", lambda name: f"/usr/bin/{name}")
    provider = kind.KindProvider(ProviderOptions(repo_root=Path("/repo")), lambda m: None)
    provider.prepare()
    assert provider.created
    assert commands[0] == ["kind", "version"]
    assert commands[1][:2] == ["docker", "version"]
    assert commands[3][:3] == ["kind", "create", "cluster"]
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


def test_kind_without_its_tools_says_so_in_one_line_before_anything_else(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no kind, docker or kubectl
    with pytest.raises(ProviderError) as error:
        kind.KindProvider(ProviderOptions(), lambda m: None).prepare()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("--cluster=kind needs kind, docker and kubectl on PATH: kind: ")
    assert "go install sigs.k8s.io/kind@v0.30.0 (or scripts/go-tool.sh kind)" in message
    assert "docker: install Docker" in message
    assert "kubectl: install kubectl" in message


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"kind", "docker", "kubectl"}, None),
        (
            {"kind", "docker"},
            "--cluster=kind needs kubectl on PATH: kubectl: " + kind.KUBECTL_INSTALL,
        ),
        (
            {"docker", "kubectl"},
            "--cluster=kind needs kind on PATH: kind: v0.30.0 tested: " + kind.KIND_INSTALL,
        ),
        (
            {"kind"},
            "--cluster=kind needs docker and kubectl on PATH: docker: "
            + kind.DOCKER_INSTALL
            + "; kubectl: "
            + kind.KUBECTL_INSTALL,
        ),
    ],
)
def test_each_missing_tool_is_named_with_how_to_get_it(present, expected):
    def which(name):
        return f"/usr/bin/{name}" if name in present else None

    assert missing_tools_problem("kind", kind.TOOLS, which) == expected


def test_local_checks_the_tools_it_runs_on_a_running_cluster(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProviderError) as error:
        local.LocalProvider(ProviderOptions(), lambda m: None).check_tools()
    assert str(error.value) == (
        "--cluster=local needs buildah and ctr on PATH: "
        "buildah: apt-get install -y buildah (or sudo bash localcluster/setup.sh); "
        "ctr: apt-get install -y containerd (or sudo bash localcluster/setup.sh)"
    )
    # The existing provider runs no program of its own.
    existing.ExistingProvider(ProviderOptions(), lambda m: None).check_tools()


def test_the_node_image_is_pinned_by_digest():
    assert f"{kind.NODE_IMAGE_TAG}@{kind.NODE_IMAGE_DIGEST}" == kind.NODE_IMAGE
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", kind.NODE_IMAGE)
    config = yaml.safe_load(kind.kind_config())
    assert {node["image"] for node in config["nodes"]} == {kind.NODE_IMAGE}


def _go_module_cache():
    if os.environ.get("GOMODCACHE"):
        return Path(os.environ["GOMODCACHE"])
    gopath = os.environ.get("GOPATH", "").split(os.pathsep)[0] or str(Path.home() / "go")
    return Path(gopath) / "pkg" / "mod"


def test_the_node_image_is_the_default_of_the_pinned_kind_release():
    """kind's own default node image, read from its Go module (when the module cache has it:
    scripts/go-tool.sh kind or the kind node image build fetch it)."""
    source = (
        _go_module_cache()
        / f"sigs.k8s.io/kind@{kind.KIND_VERSION}/pkg/apis/config/defaults/image.go"
    )
    if not source.is_file():
        pytest.skip(f"kind {kind.KIND_VERSION} is not in the Go module cache ({source})")
    default = re.search(r'const Image = "([^"]+)"', source.read_text())
    assert default, f"{source}: no `const Image`"
    assert default[1] == kind.NODE_IMAGE


FAKE_KIND = """#!{python}
# A stand-in for the kind CLI: records each call, keeps its clusters in a file.
import json, os, sys
from pathlib import Path

state = Path(os.environ["FAKE_KIND_STATE"])
args = sys.argv[1:]
with (state / "calls").open("a") as calls:
    calls.write(json.dumps(args) + "\\n")
clusters_file = state / "clusters"
clusters = clusters_file.read_text().split() if clusters_file.exists() else []
if args == ["version"]:
    print((state / "version").read_text())
elif args == ["get", "clusters"]:
    if not clusters:
        print("No kind clusters found.", file=sys.stderr)
    print("\\n".join(clusters))
elif args[:3] == ["get", "kubeconfig", "--name"] and args[3] in clusters:
    print("apiVersion: v1\\nkind: Config\\n# of " + args[3])
elif args[:2] == ["create", "cluster"]:
    name = args[args.index("--name") + 1]
    Path(args[args.index("--kubeconfig") + 1]).write_text("apiVersion: v1\\nkind: Config\\n")
    clusters_file.write_text("\\n".join([*clusters, name]))
    (state / "unready").unlink(missing_ok=True)  # a new cluster's nodes become Ready
elif args[:2] == ["delete", "cluster"]:
    name = args[args.index("--name") + 1]
    clusters_file.write_text("\\n".join(c for c in clusters if c != name))
elif args[:2] == ["export", "logs"] and args[args.index("--name") + 1] in clusters:
    node = Path(args[2]) / "kube-alive-control-plane"
    node.mkdir(parents=True)
    (node / "journal.log").write_text("x" * 5000 + "kubelet stopped")
elif args[:2] == ["export", "logs"]:
    sys.exit("ERROR: unknown cluster")
else:
    sys.exit(f"fake kind: unexpected arguments {{args}}")
"""


# Stand-ins for docker (its engine answers) and kubectl (the nodes are Ready unless told not).
FAKE_DOCKER = """#!/bin/sh
echo 20.10.24
"""
FAKE_KUBECTL = """#!/bin/sh
[ -e "$FAKE_KIND_STATE/unready" ] && { echo "timed out waiting for the condition" >&2; exit 1; }
echo "node/kube-alive-control-plane condition met"
"""


class FakeKind:
    """The fake kind CLI (with docker and kubectl stand-ins), first on PATH."""

    def __init__(self, directory, monkeypatch):
        self.state = directory / "state"
        self.state.mkdir()
        binary = directory / "bin" / "kind"
        binary.parent.mkdir()
        binary.write_text(FAKE_KIND.format(python=sys.executable))
        binary.chmod(0o755)
        for name, text in (("docker", FAKE_DOCKER), ("kubectl", FAKE_KUBECTL)):
            (binary.parent / name).write_text(text)
            (binary.parent / name).chmod(0o755)
        monkeypatch.setenv("FAKE_KIND_STATE", str(self.state))
        monkeypatch.setenv("PATH", f"{binary.parent}{os.pathsep}{os.environ['PATH']}")
        self.version("kind v0.30.0 go1.24.6 linux/amd64")

    def version(self, text):
        (self.state / "version").write_text(text)

    def has_cluster(self, name="kube-alive"):
        path = self.state / "clusters"
        return path.exists() and name in path.read_text().split()

    def add_cluster(self, name="kube-alive", ready=True):
        (self.state / "clusters").write_text(name)
        if not ready:
            (self.state / "unready").write_text("")

    def calls(self):
        path = self.state / "calls"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def fake_kind(tmp_path, monkeypatch):
    """A fake kind CLI on PATH (tmp directory), recording its calls."""
    return FakeKind(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "printed", ["kind v0.30.0 go1.24.6 linux/amd64", "kind v0.30.2 go1.25.1 linux/arm64"]
)
def test_kind_accepts_the_tested_release_without_a_warning(fake_kind, printed):
    fake_kind.version(printed)
    log = []
    provider = kind.KindProvider(ProviderOptions(), log.append)
    provider.check_cli()
    assert fake_kind.calls() == [["version"]]
    assert [line for line in log if not line.startswith("$ ")] == [f"kind: {printed}"]
    assert provider.version_warning is None
    assert "WARNING" not in provider.describe()


@pytest.mark.parametrize(
    ("printed", "shown"),
    [
        ("kind v0.31.0-alpha.3+0123abcd go1.25.1", "v0.31.0"),
        ("kind v0.33.0 go1.26.0 linux/amd64", "v0.33.0"),
        ("kind v1.0.0 go1.27.0 linux/amd64", "v1.0.0"),
    ],
)
def test_a_kind_newer_than_the_tested_release_runs_with_a_one_line_warning(
    fake_kind, printed, shown
):
    fake_kind.version(printed)
    log = []
    provider = kind.KindProvider(ProviderOptions(), log.append)
    provider.check_cli()
    warning = (
        f"WARNING: kind {shown} is newer than the tested v0.30.0 (up to v0.31.0, not included), "
        "whose node image kindest/node:v1.34.0 the suite pins: it may work; for a tested run: "
        "go install sigs.k8s.io/kind@v0.30.0 (or scripts/go-tool.sh kind)"
    )
    assert [line for line in log if not line.startswith("$ ")] == [f"kind: {printed}", warning]
    assert provider.version_warning == warning
    assert provider.describe().endswith(f"; {warning})")


@pytest.mark.parametrize(
    ("printed", "problem", "warning"),
    [
        ("kind v0.29.9", True, False),
        ("kind v0.30.0", False, False),
        ("kind v0.30.99", False, False),
        ("kind v0.31.0", False, True),
        ("kind v0.31.0-rc.1", False, True),
        ("kind (devel)", True, False),
    ],
)
def test_the_tested_range_is_the_pinned_minor_release(printed, problem, warning):
    assert (kind.version_problem(printed) is not None) is problem
    assert (kind.version_warning(printed) is not None) is warning


@pytest.mark.parametrize(
    ("printed", "message"),
    [
        (
            "kind v0.20.0 go1.20.4 linux/amd64",
            "kind v0.20.0 is older than v0.30.0, the release kindest/node:v1.34.0 is built for: "
            "go install sigs.k8s.io/kind@v0.30.0 (or scripts/go-tool.sh kind)",
        ),
        (
            "kind (devel)",
            "`kind version` printed 'kind (devel)', no version: "
            "go install sigs.k8s.io/kind@v0.30.0 (or scripts/go-tool.sh kind)",
        ),
    ],
)
def test_kind_refuses_an_older_or_unknown_version_before_touching_clusters(
    fake_kind, printed, message
):
    fake_kind.version(printed)
    with pytest.raises(ProviderError) as error:
        kind.KindProvider(ProviderOptions(), lambda m: None).prepare()
    assert str(error.value) == message
    assert fake_kind.calls() == [["version"]]


@pytest.mark.parametrize(
    ("existed", "keep", "created", "deleted", "described"),
    [
        (False, False, True, True, "created by this run, deleted at the end"),
        (False, True, True, False, "created by this run, kept (--keep-cluster)"),
        (True, False, False, False, "reused, left as it was"),
        (True, True, False, False, "reused, left as it was"),
    ],
)
def test_kind_deletes_only_a_cluster_it_created_and_was_not_told_to_keep(
    fake_kind, existed, keep, created, deleted, described
):
    if existed:
        fake_kind.add_cluster()
    provider = kind.KindProvider(ProviderOptions(keep_cluster=keep), lambda m: None)
    provider.prepare()
    assert provider.created is created
    assert fake_kind.has_cluster()
    assert provider.kubeconfig().kubeconfig.read_text().startswith("apiVersion: v1")
    assert provider.describe() == (
        f"kind (cluster kube-alive, node image {kind.NODE_IMAGE}, {described})"
    )
    provider.teardown()
    assert fake_kind.has_cluster() is not deleted
    verbs = [call[:2] for call in fake_kind.calls()]
    assert verbs[:2] == [["version"], ["get", "clusters"]]
    assert (["create", "cluster"] in verbs) is created
    assert (["delete", "cluster"] in verbs) is deleted


def test_kind_version_pin_is_the_one_go_tool_builds():
    script = (Path(__file__).resolve().parents[2] / "scripts" / "go-tool.sh").read_text()
    pinned = re.search(r'\[kind\]="sigs\.k8s\.io/kind@(v[0-9.]+)"', script)
    assert pinned, "scripts/go-tool.sh no longer pins kind"
    assert pinned[1] == kind.KIND_VERSION


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
    nodes = Collection([ready_node("pi-1", *refs), ready_node("pi-2", refs[0])])
    kube = FakeKube().on("GET", "/api/v1/nodes", nodes.handler)
    provider = ExistingProvider(ProviderOptions(), lambda m: None)
    assert provider.image_architectures() is None
    assert provider.images_problem(kube, refs, timeout_s=0.3) == (
        "no --image-registry given and the nodes lack workload images (node pi-2: "
        "localhost/kube-alive/workloads:v2, still after 0 s of node status updates): push them "
        "with scripts/build-images.sh REGISTRY --push and pass --image-registry=REGISTRY"
    )
    assert provider.images_problem(kube, refs[:1], timeout_s=0.3) is None
    registry = ExistingProvider(ProviderOptions(image_registry="reg:5000"), lambda m: None)
    assert registry.images_problem(kube, refs) is None  # pulled when needed; failures name it
    assert registry.image_architectures() == {"amd64", "arm64", "arm"}


def test_existing_waits_for_the_node_status_update_that_lists_just_imported_images():
    """Right after an import the node's status does not list the image yet; its next status
    update does. That is not "missing"."""
    refs = ["localhost/kube-alive/workloads:v1", "localhost/kube-alive/workloads:v2"]
    nodes = Collection([ready_node("pi-1", refs[0])])
    nodes.watches = [FakeStream([event("MODIFIED", ready_node("pi-1", *refs))])]
    kube = FakeKube().on("GET", "/api/v1/nodes", nodes.handler)
    provider = ExistingProvider(ProviderOptions(), lambda m: None)
    assert provider.images_problem(kube, refs, timeout_s=10) is None
    assert nodes.lists == 1
    # An image imported a moment ago shows after the kubelet's image cache refresh (30 s) and
    # its next status update.
    assert existing.IMAGES_LISTED_S > existing.KUBELET_IMAGE_CACHE_S + existing.NODE_STATUS_UPDATE_S


def test_existing_images_are_pushed_for_the_architectures_build_images_builds():
    script = (Path(__file__).resolve().parents[2] / "scripts" / "build-images.sh").read_text()
    default = re.search(r'platforms="\$\{PLATFORMS:?-([^}]*)\}"', script)
    assert default, "scripts/build-images.sh no longer sets its default platforms"
    # linux/arm/v7 is a node of architecture `arm` (kubernetes.io/arch): the variant is not in it.
    assert [p.split("/")[1] for p in default.group(1).split(",")] == list(
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


def test_kind_replaces_an_unhealthy_cluster_left_by_a_crashed_run(fake_kind):
    fake_kind.add_cluster(ready=False)
    log = []
    provider = kind.KindProvider(ProviderOptions(), log.append)
    provider.prepare()
    verbs = [call[:2] for call in fake_kind.calls()]
    assert verbs == [
        ["version"],
        ["get", "clusters"],
        ["get", "kubeconfig"],
        ["delete", "cluster"],
        ["create", "cluster"],
    ]
    assert provider.created
    assert any("not healthy" in line and "deleting it" in line for line in log)
    provider.teardown()
    assert not fake_kind.has_cluster()


def test_kind_deletes_a_cluster_whose_create_was_interrupted(fake_kind, monkeypatch):
    provider = kind.KindProvider(ProviderOptions(), lambda m: None)
    real_run = provider._run

    def interrupted(args, timeout_s, input_text=None):
        if args[:3] == ["kind", "create", "cluster"]:
            raise KeyboardInterrupt
        return real_run(args, timeout_s, input_text)

    monkeypatch.setattr(provider, "_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        provider.prepare()
    assert provider.created  # so that teardown deletes whatever kind had made
    monkeypatch.setattr(provider, "_run", real_run)
    provider.teardown()
    assert ["delete", "cluster"] in [call[:2] for call in fake_kind.calls()]


def test_constructing_a_kind_provider_leaves_no_folder_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(kind.tempfile, "tempdir", str(tmp_path))
    provider = kind.KindProvider(ProviderOptions(), lambda m: None)
    assert list(tmp_path.iterdir()) == []
    provider.teardown()
    assert list(tmp_path.iterdir()) == []


def test_kind_says_when_a_new_clusters_workers_never_become_ready(monkeypatch):
    def fake_run(args, **kwargs):
        if args == ["kind", "version"]:
            return types.SimpleNamespace(stdout="kind v0.30.0 go1.24.6 linux/amd64\n")
        if "wait" in args:
            raise ProviderError("kubectl wait failed with exit code 1:\ntimed out waiting")
        return types.SimpleNamespace(stdout="\n")

    monkeypatch.setattr(kind, "run_command", fake_run)
    monkeypatch.setattr(kind.shutil, "which", lambda name: f"/usr/bin/{name}")
    provider = kind.KindProvider(ProviderOptions(), lambda m: None)
    with pytest.raises(ProviderError) as error:
        provider.prepare()
    assert str(error.value).startswith(
        "kind: not every node of kube-alive was Ready 60s after `kind create` (timed out waiting)"
    )
    assert provider.created  # so that teardown deletes it
    provider.teardown()


def test_kind_exports_its_clusters_logs_into_the_evidence_folder_bounded(
    fake_kind, tmp_path, monkeypatch
):
    monkeypatch.setattr(evidence, "MAX_CLUSTER_LOG_BYTES", 1000)
    fake_kind.add_cluster()
    provider = kind.KindProvider(ProviderOptions(keep_cluster=True), lambda m: None)
    provider.prepare()
    said = []
    folder = evidence.export_cluster_logs(provider.export_logs, tmp_path / "reports", said.append)
    assert folder == tmp_path / "reports" / "evidence" / "kind-logs"
    assert ["export", "logs", str(folder), "--name", "kube-alive"] in fake_kind.calls()
    journal = (folder / "kube-alive-control-plane" / "journal.log").read_text()
    assert journal.endswith("kubelet stopped")
    assert len(journal) < 1100
    assert said == [
        f"kind: exported the logs of cluster kube-alive into {folder} "
        "(1 long files cut to their end)"
    ]
    provider.teardown()


def test_a_failed_kind_export_is_noted_in_the_folder_not_raised(fake_kind, tmp_path):
    provider = kind.KindProvider(ProviderOptions(), lambda m: None)
    said = []
    folder = evidence.export_cluster_logs(provider.export_logs, tmp_path, said.append)
    assert "unknown cluster" in (folder / "errors.txt").read_text()
    assert said[0].startswith("exporting the cluster's logs failed: kind export logs")

"""`--cluster=kind`: a kind cluster named `kube-alive` (1 control plane + 2 workers).

The programs it runs (kind, docker, kubectl), kind's version and the Docker engine are checked
first, each failing in one line that says what to fix; a kind newer than the tested release gets a
one-line warning. The cluster is created from the node image (`--kind-node-image`, else
$KUBE_ALIVE_KIND_NODE_IMAGE, else kind's release image, by digest) when it does not exist, and
deleted again by this run's teardown unless `--keep-cluster`, also when the run is interrupted
during create. An existing cluster is reused when its nodes are Ready, and replaced (with a
message) when not: a crashed run's remains.

The name is fixed, so runs at once share the cluster (ClusterUsers): each live run has a record
(pid, its start time, command), and one lock orders the decisions. A cluster that is not Ready
is replaced only when no other live run uses it, else the run fails saying who uses it; the run
that created the cluster deletes it at the end only when no other run uses it, else it leaves
that to the last of them.

Images are built with docker from workloads/Dockerfile when docker does not have them, and
copied to the nodes with `kind load docker-image`. kind clusters come without metrics-server: a
node image made by `python -m localcluster kind-node-image` carries it (image and manifest),
anything else gets the upstream release manifest.

Pod and Service ranges (POD_SUBNET, SERVICE_SUBNET) are chosen off the local cluster's, whose
forwarding guard on the host drops bridged traffic from its own pod range.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from localcluster.util import ClusterError, file_lock
from suite import images
from suite.files import write_atomic
from suite.kube import Kube
from suite.preflight import METRICS_APISERVICE, host_architecture, metrics_api_problem
from suite.providers.base import (
    Access,
    Log,
    Provider,
    ProviderError,
    ProviderOptions,
    Tool,
    run_command,
)
from suite.waiting import WaitFailed
from suite.waits import wait_apiservice_available

CLUSTER_NAME = "kube-alive"
#: The kind release NODE_IMAGE is built for (node images belong to one release); also pinned in
#: scripts/go-tool.sh. The tested range is KIND_VERSION up to, not including, KIND_UNTESTED: an
#: older kind is refused, a newer one runs with a one-line warning.
KIND_VERSION = "v0.30.0"
KIND_UNTESTED = "v0.31.0"
KIND_INSTALL = f"go install sigs.k8s.io/kind@{KIND_VERSION} (or scripts/go-tool.sh kind)"
CONTEXT = f"kind-{CLUSTER_NAME}"
WORKERS = 2
#: kind v0.30.0's default node image (Kubernetes 1.34.0), pinned by digest as its release notes
#: ask ("You must use the @sha256 digest to guarantee an image built for this release"); the same
#: string is `defaults.Image` in the sigs.k8s.io/kind v0.30.0 module
#: (pkg/apis/config/defaults/image.go), which suite/tests/test_providers.py compares when the
#: module is in the Go module cache.
NODE_IMAGE_TAG = "kindest/node:v1.34.0"
NODE_IMAGE_DIGEST = "sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
NODE_IMAGE = f"{NODE_IMAGE_TAG}@{NODE_IMAGE_DIGEST}"
NODE_IMAGE_ENV = "KUBE_ALIVE_KIND_NODE_IMAGE"
#: Off the local cluster's 10.244.0.0/16 and 10.96.0.0/16 (see the module docstring).
POD_SUBNET = "10.245.0.0/16"
SERVICE_SUBNET = "10.97.0.0/16"
#: Lets a registry be configured per node later (/etc/containerd/certs.d/HOST/hosts.toml), as
#: kind's documentation does for local registries.
CONTAINERD_REGISTRY_PATCH = (
    '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
)
#: Where a kube-alive node image keeps its metrics-server manifest (see localcluster.kindnode).
NODE_METRICS_MANIFEST = "/kind/manifests/kube-alive-metrics-server.yaml"
DOCKER_INSTALL = (
    "install Docker and start it, or on a machine without one run "
    '`eval "$(python -m localcluster engine up)"` (a private engine, see README)'
)
KUBECTL_INSTALL = (
    "install kubectl within one minor version of Kubernetes 1.34 "
    "(https://kubernetes.io/docs/tasks/tools/; Debian/Ubuntu: the Kubernetes apt repository)"
)
#: What the provider runs: kind; docker (builds, node commands); kubectl (node readiness, which
#: decides whether a cluster is reused or replaced, and metrics-server).
TOOLS = (
    Tool("kind", f"{KIND_VERSION} tested: {KIND_INSTALL}"),
    Tool("docker", DOCKER_INSTALL),
    Tool("kubectl", KUBECTL_INSTALL),
)
METRICS_SERVER_VERSION = "v0.8.0"
METRICS_SERVER_MANIFEST = (
    "https://github.com/kubernetes-sigs/metrics-server/releases/download/"
    f"{METRICS_SERVER_VERSION}/components.yaml"
)
#: kind's kubelets serve self-signed certificates, which metrics-server must be told to accept.
METRICS_SERVER_PATCH = (
    '[{"op": "add", "path": "/spec/template/spec/containers/0/args/-", '
    '"value": "--kubelet-insecure-tls"}]'
)
CREATE_TIMEOUT_S = 600
DELETE_TIMEOUT_S = 300
#: A reused cluster's nodes must be Ready within this, else it is replaced.
REUSE_READY_S = 60
#: How long a run waits for another run's decision on the cluster: the longest is replacing a
#: broken one (its readiness check, a delete, a create, the new one's readiness check).
USERS_LOCK_WAIT_S = CREATE_TIMEOUT_S + DELETE_TIMEOUT_S + 2 * (REUSE_READY_S + 30)
#: Where the runs using the cluster are recorded (default: per Docker engine, in the temp dir).
USERS_DIR_ENV = "KUBE_ALIVE_KIND_USERS_DIR"
LOAD_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 1800
#: `kind export logs` copies each node's journal and container logs out with `docker exec`/`cp`
#: (seconds per node; a long run's journals make it slower).
EXPORT_LOGS_TIMEOUT_S = 300
#: metrics-server start + first scrape; it registers its APIService before it can answer.
METRICS_READY_S = 180


def kind_config(workers: int = WORKERS, node_image: str = NODE_IMAGE) -> str:
    """The kind cluster config: one control plane and `workers` workers, pod and service ranges
    off the local cluster's, containerd's registry configuration read from certs.d."""
    nodes = [{"role": "control-plane", "image": node_image}]
    nodes += [{"role": "worker", "image": node_image} for _ in range(workers)]
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {"podSubnet": POD_SUBNET, "serviceSubnet": SERVICE_SUBNET},
        "containerdConfigPatches": [CONTAINERD_REGISTRY_PATCH],
        "nodes": nodes,
    }
    return yaml.safe_dump(config, sort_keys=False)


def node_image_choice(option: str | None, environ: dict[str, str] | None = None) -> str:
    """The node image: the option, else $KUBE_ALIVE_KIND_NODE_IMAGE, else the release's."""
    env = os.environ if environ is None else environ
    return option or env.get(NODE_IMAGE_ENV) or NODE_IMAGE


def docker_version_command() -> list[str]:
    """Does the Docker engine answer? (prints the server version)"""
    return ["docker", "version", "--format", "{{.Server.Version}}"]


def docker_problem(which: str | None, answered: bool, error: str) -> str | None:
    """None when docker is there and its engine answers, else the one line that says what to
    fix."""
    if which is None:
        return f"--cluster=kind needs docker on PATH: {DOCKER_INSTALL}"
    if not answered:
        host = os.environ.get("DOCKER_HOST", "the default socket")
        last = error.strip().splitlines()[-1] if error.strip() else "no answer"
        return f"the Docker engine at {host} does not answer ({last}): {DOCKER_INSTALL}"
    return None


def version_command() -> list[str]:
    """`kind version` (prints e.g. `kind v0.30.0 go1.24.6 linux/amd64`)."""
    return ["kind", "version"]


def parse_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of the first `vX.Y.Z` in `text` (pre-release suffixes ignored)."""
    match = re.search(r"\bv(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])


def _version(text: str) -> tuple[int, int, int]:
    found = parse_version(text)
    assert found is not None, text
    return found


def version_problem(output: str) -> str | None:
    """None when `kind version` printed KIND_VERSION or newer, else the line that says what
    was found and how to install the right one."""
    found = parse_version(output)
    if found is None:
        return f"`kind version` printed {output.strip()!r}, no version: {KIND_INSTALL}"
    if found < _version(KIND_VERSION):
        shown = "v" + ".".join(map(str, found))
        return (
            f"kind {shown} is older than {KIND_VERSION}, the release {NODE_IMAGE_TAG} is built "
            f"for: {KIND_INSTALL}"
        )
    return None


def version_warning(output: str) -> str | None:
    """None when `kind version` printed a release in the tested range (KIND_VERSION up to
    KIND_UNTESTED), else, for a newer one, the one-line warning (the run goes on)."""
    found = parse_version(output)
    if found is None or found < _version(KIND_UNTESTED):
        return None
    shown = "v" + ".".join(map(str, found))
    return (
        f"WARNING: kind {shown} is newer than the tested {KIND_VERSION} (up to "
        f"{KIND_UNTESTED}, not included), whose node image {NODE_IMAGE_TAG} the suite pins: it "
        f"may work; for a tested run: {KIND_INSTALL}"
    )


def get_clusters_command() -> list[str]:
    """`kind get clusters`."""
    return ["kind", "get", "clusters"]


def create_command(config_path: Path, kubeconfig: Path) -> list[str]:
    """`kind create cluster` for the suite's cluster."""
    return [
        "kind",
        "create",
        "cluster",
        "--name",
        CLUSTER_NAME,
        "--config",
        str(config_path),
        "--kubeconfig",
        str(kubeconfig),
        "--wait",
        "120s",
    ]


def kubeconfig_command() -> list[str]:
    """`kind get kubeconfig` of the suite's cluster."""
    return ["kind", "get", "kubeconfig", "--name", CLUSTER_NAME]


def load_command(ref: str) -> list[str]:
    """`kind load docker-image` of one image into every node."""
    return ["kind", "load", "docker-image", ref, "--name", CLUSTER_NAME]


def delete_command() -> list[str]:
    """`kind delete cluster` of the suite's cluster."""
    return ["kind", "delete", "cluster", "--name", CLUSTER_NAME]


def docker_inspect_command(ref: str) -> list[str]:
    """Does docker have the image?"""
    return ["docker", "image", "inspect", "--format", "{{.Id}}", ref]


def docker_build_command(ref: str, repo_root: Path) -> list[str]:
    """Build one workload image version from the repository root (see workloads/Dockerfile),
    tagged with its content tag and, for the demo, its plain version tag."""
    version = images.version_of(images.tag_of(ref))
    return [
        "docker",
        "build",
        "-f",
        str(repo_root / "workloads" / "Dockerfile"),
        "--build-arg",
        f"VERSION={version}",
        "-t",
        ref,
        "-t",
        images.with_tag(ref, version),
        str(repo_root),
    ]


def export_logs_command(directory: Path) -> list[str]:
    """Every node's journal, kubelet and container logs into `directory`."""
    return ["kind", "export", "logs", str(directory), "--name", CLUSTER_NAME]


def nodes_command() -> list[str]:
    """`kind get nodes` of the suite's cluster."""
    return ["kind", "get", "nodes", "--name", CLUSTER_NAME]


def node_exec_command(node: str, *args: str) -> list[str]:
    """A command inside a kind node (kind's nodes are docker containers)."""
    return ["docker", "exec", node, *args]


def kubectl_command(kubeconfig: Path, *args: str) -> list[str]:
    """kubectl against the kind cluster."""
    return ["kubectl", "--kubeconfig", str(kubeconfig), "--context", CONTEXT, *args]


def metrics_server_commands(kubeconfig: Path) -> list[list[str]]:
    """Install metrics-server (pinned release) and let it accept kind's kubelet certificates."""
    return [
        kubectl_command(kubeconfig, "apply", "-f", METRICS_SERVER_MANIFEST),
        kubectl_command(
            kubeconfig,
            "-n",
            "kube-system",
            "patch",
            "deployment",
            "metrics-server",
            "--type=json",
            "-p",
            METRICS_SERVER_PATCH,
        ),
    ]


def users_dir(environ: dict[str, str] | None = None) -> Path:
    """The directory of ClusterUsers: one per Docker engine ($DOCKER_HOST), since the cluster
    named kube-alive on one engine is not the one on another."""
    env = os.environ if environ is None else environ
    if env.get(USERS_DIR_ENV):
        return Path(env[USERS_DIR_ENV])
    engine = hashlib.sha256(env.get("DOCKER_HOST", "").encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"kube-alive-kind-{CLUSTER_NAME}-{engine}"


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), None when
    there is no such process: with the pid it names one process, never a later one with the pid
    reused."""
    if not Path("/proc/self/stat").exists():
        # No /proc (macOS): whether the pid is alive is all there is to go on.
        try:
            os.kill(pid, 0)
        except PermissionError:
            return "alive"
        except OSError:
            return None
        return "alive"
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count after it.
    return stat.rsplit(")", 1)[-1].split()[19]


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    return " ".join(raw.split())[:120]


class ClusterUsers:
    """The runs using the kind cluster now, one record per process in `directory`, and the lock
    under which a run decides to create, replace or delete the cluster.

    A record names its process by pid and start time, so a run that was killed (no teardown)
    stops counting as soon as its process is gone. `delete-when-unused` is left by a run that
    created the cluster and would have deleted it, but found others using it: the last of them
    deletes it (unless it was told to keep it).
    """

    LOCK = "lock"
    DELETE_WHEN_UNUSED = "delete-when-unused"

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid

    @contextlib.contextmanager
    def lock(self, log: Log) -> Iterator[None]:
        """Held while deciding; a run waiting for it says who holds it, and fails after
        USERS_LOCK_WAIT_S (ProviderError, one line)."""
        what = f"kind: cluster {CLUSTER_NAME} (one run at a time creates, replaces or deletes it)"
        held = contextlib.ExitStack()
        try:
            held.enter_context(
                file_lock(self.directory / self.LOCK, what, log, wait_s=USERS_LOCK_WAIT_S)
            )
        except (ClusterError, OSError) as error:
            raise ProviderError(str(error)) from None
        with held:
            yield

    def _records(self) -> Path:
        return self.directory / "users"

    def join(self) -> None:
        """Record this process as a user of the cluster."""
        self._records().mkdir(parents=True, exist_ok=True)
        record = {
            "pid": self.pid,
            "started": _process_start(self.pid),
            "command": _command_of(self.pid),
        }
        write_atomic(self._records() / f"{self.pid}.json", json.dumps(record))

    def leave(self) -> None:
        """This process no longer uses the cluster."""
        (self._records() / f"{self.pid}.json").unlink(missing_ok=True)

    def others(self) -> list[str]:
        """`pid N (command)` of every other live user; dead ones' records are removed."""
        found = []
        for path in sorted(self._records().glob("*.json")) if self._records().is_dir() else []:
            try:
                record = json.loads(path.read_text())
                pid = int(record["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if pid == self.pid:
                continue
            if _process_start(pid) is None or _process_start(pid) != record.get("started"):
                path.unlink(missing_ok=True)
                continue
            found.append(f"pid {pid} ({record.get('command', '?')})")
        return found

    def mark_delete_when_unused(self, marked: bool) -> None:
        """Set or remove the note that the last user deletes the cluster."""
        note = self.directory / self.DELETE_WHEN_UNUSED
        if marked:
            note.touch()
        else:
            note.unlink(missing_ok=True)

    @property
    def delete_when_unused(self) -> bool:
        """True when a run that created the cluster left its deletion to the last user."""
        return (self.directory / self.DELETE_WHEN_UNUSED).exists()


class KindProvider(Provider):
    """A kind cluster (Kubernetes in docker containers)."""

    name = "kind"
    help = (
        f"a kind cluster named {CLUSTER_NAME!r} (1 control plane + {WORKERS} workers, "
        f"--kind-node-image or {NODE_IMAGE_TAG} by digest, kind CLI {KIND_VERSION}; kubectl "
        "and docker), reused if it "
        "exists and is healthy, else created and deleted after the run (kept with "
        "--keep-cluster, or while another run still uses it); images are built with docker "
        "and copied in with `kind load`; "
        "metrics-server is installed if missing"
    )
    deletes_its_cluster = True
    tools = TOOLS

    def __init__(self, options: ProviderOptions, log: Log) -> None:
        super().__init__(options, log)
        self.node_image = node_image_choice(options.kind_node_image)
        #: Set by check_cli when the kind CLI is newer than the tested range.
        self.version_warning: str | None = None
        # Made when first needed (prepare), removed by teardown: constructing a provider (as
        # unit tests and `--help` do) leaves nothing behind.
        self._workdir: Path | None = None
        self._own_kubeconfig = options.kubeconfig is None
        self._kubeconfig = options.kubeconfig or Path("kubeconfig")
        #: The runs using the cluster (nothing is written before prepare).
        self.users = ClusterUsers(users_dir())
        #: True once prepare got as far as deciding (under the users' lock).
        self._decided = False

    def _work(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="kube-alive-kind-"))
            if self._own_kubeconfig:
                self._kubeconfig = self._workdir / "kubeconfig"
        return self._workdir

    @classmethod
    def usage_errors(cls, options: ProviderOptions) -> list[str]:
        """kind chooses the context and loads images itself."""
        errors = []
        if options.context:
            errors.append(f"--context does not go with --cluster=kind (it uses {CONTEXT})")
        if options.image_registry:
            errors.append(
                "--image-registry does not go with --cluster=kind (images are copied in with "
                "`kind load`); use it with --cluster=existing"
            )
        return errors

    def _run(self, args: Sequence[str], timeout_s: float, input_text: str | None = None) -> str:
        return run_command(args, timeout_s=timeout_s, log=self.log, input_text=input_text).stdout

    def check_cli(self) -> None:
        """The kind CLI is KIND_VERSION or newer, else one line with the fix; newer than the
        tested range, one line of warning (logged, and in describe())."""
        output = self._run(version_command(), 60)
        problem = version_problem(output)
        if problem:
            raise ProviderError(problem)
        self.log(f"kind: {output.strip()}")
        self.version_warning = version_warning(output)
        if self.version_warning:
            self.log(self.version_warning)

    def check_docker(self) -> None:
        """docker is on PATH and its engine answers; else one line with the fix."""
        which = shutil.which("docker")
        answered, error = False, ""
        if which is not None:
            try:
                self.log(f"docker engine {self._run(docker_version_command(), 30).strip()}")
                answered = True
            except ProviderError as failure:
                error = str(failure)
        problem = docker_problem(which, answered, error)
        if problem:
            raise ProviderError(problem)

    def prepare(self) -> None:
        """Check the tools (kind, docker, kubectl), kind's version and the Docker engine, then
        reuse the healthy `kube-alive` kind cluster, or create it (replacing an unhealthy one
        that no other live run uses); the decision is taken under ClusterUsers' lock."""
        self.check_tools()
        self.check_cli()
        self.check_docker()
        self._work()
        with self.users.lock(self.log):
            self._reuse_or_create()

    def _reuse_or_create(self) -> None:
        self._decided = True
        clusters = self._run(get_clusters_command(), 60).split()
        if CLUSTER_NAME in clusters:
            kubeconfig = self._run(kubeconfig_command(), 60)
            if self._own_kubeconfig:
                self._kubeconfig.write_text(kubeconfig)
                self._kubeconfig.chmod(0o600)
            problem = self._unready_nodes()
            if problem is None:
                self.users.join()
                self.log(f"kind: reusing cluster {CLUSTER_NAME} (every node Ready)")
                return
            others = self.users.others()
            if others:
                raise ProviderError(
                    f"kind: cluster {CLUSTER_NAME} is not healthy ({problem}) and in use by "
                    f"{', '.join(others)}: not deleting it under that run; run again once it "
                    "is done"
                )
            self.log(
                f"kind: cluster {CLUSTER_NAME} exists but is not healthy ({problem}), "
                "probably left by a crashed run: deleting it and creating a new one"
            )
            self._run(delete_command(), DELETE_TIMEOUT_S)
        config_path = self._work() / "kind.yaml"
        config_path.write_text(kind_config(node_image=self.node_image))
        self.log(
            f"kind: creating cluster {CLUSTER_NAME} (1 control plane, {WORKERS} workers, "
            f"{self.node_image}; about a minute)"
        )
        # Marked before kind runs: an interrupted or failed create still gets deleted.
        self.created = True
        self.users.join()
        # A new cluster is this run's to delete or keep, whatever was noted about an older one.
        self.users.mark_delete_when_unused(False)
        self._run(create_command(config_path, self._kubeconfig), CREATE_TIMEOUT_S)
        # `kind create --wait` waits for the control plane only; the scenarios spread pods over
        # every node, so the workers must be Ready too (a worker joins seconds later).
        problem = self._unready_nodes()
        if problem is not None:
            raise ProviderError(
                f"kind: not every node of {CLUSTER_NAME} was Ready {REUSE_READY_S}s after "
                f"`kind create` ({problem}); look at `kind export logs --name {CLUSTER_NAME}`"
            )

    def _unready_nodes(self) -> str | None:
        """None when every node of the cluster is Ready, else what was seen."""
        try:
            out = self._run(
                kubectl_command(
                    self._kubeconfig,
                    "wait",
                    "--for=condition=Ready",
                    "node",
                    "--all",
                    f"--timeout={REUSE_READY_S}s",
                ),
                REUSE_READY_S + 30,
            )
        except ProviderError as error:
            return str(error).splitlines()[-1]
        return None if "condition met" in out else out.strip()

    def kubeconfig(self) -> Access:
        """The kubeconfig kind wrote, context `kind-kube-alive`."""
        return Access(self._kubeconfig, CONTEXT)

    def make_images_available(self, refs: Sequence[str]) -> None:
        """Build missing images with docker, then `kind load` each one. The tags carry the
        workloads' content digest (suite.images), so an edited workload is a missing image."""
        for ref in refs:
            try:
                run_command(docker_inspect_command(ref), timeout_s=60)
            except ProviderError:
                self.log(f"kind: building {ref} (docker has no image of these workload sources)")
                self._run(docker_build_command(ref, self.options.repo_root), BUILD_TIMEOUT_S)
            self._run(load_command(ref), LOAD_TIMEOUT_S)

    def image_architectures(self) -> set[str] | None:
        """docker builds for this machine's architecture, which is also the nodes'."""
        return {host_architecture()}

    def ensure_metrics_api(self, kube: Kube) -> str | None:
        """Install metrics-server when the metrics API is missing, and wait for it: from the
        node image when it carries it (no registry needed), else the upstream release."""
        if metrics_api_problem(kube) is None:
            return None
        try:
            control_plane = next(
                n for n in self._run(nodes_command(), 60).split() if n.endswith("control-plane")
            )
            on_node = ["test", "-f", NODE_METRICS_MANIFEST]
            try:
                self._run(node_exec_command(control_plane, *on_node), 30)
                commands = [
                    node_exec_command(
                        control_plane,
                        "kubectl",
                        "--kubeconfig=/etc/kubernetes/admin.conf",
                        "apply",
                        "-f",
                        NODE_METRICS_MANIFEST,
                    )
                ]
                self.log(f"kind: installing metrics-server from the node image ({control_plane})")
            except ProviderError:
                commands = metrics_server_commands(self._kubeconfig)
                self.log(f"kind: installing metrics-server {METRICS_SERVER_VERSION} (release)")
            for command in commands:
                self._run(command, 120)
            wait_apiservice_available(kube, METRICS_APISERVICE, timeout_s=METRICS_READY_S)
        except (ProviderError, WaitFailed) as error:
            return f"metrics-server could not be installed: {error}"
        return metrics_api_problem(kube)

    def teardown(self) -> None:
        """Delete the cluster if this run created it (or a creator left that to the last user)
        and --keep-cluster was not given, unless another live run still uses it: then the last
        of them deletes it. The provider's temporary folder goes in any case."""
        try:
            if not (self._decided or self.created):
                return
            with self.users.lock(self.log):
                self.users.leave()
                wanted = self.created or self.users.delete_when_unused
                if not wanted:
                    return
                if self.options.keep_cluster:
                    self.users.mark_delete_when_unused(False)
                    self.log(f"kind: keeping cluster {CLUSTER_NAME} (--keep-cluster)")
                    return
                others = self.users.others()
                if others:
                    self.users.mark_delete_when_unused(True)
                    self.log(
                        f"kind: leaving cluster {CLUSTER_NAME} to {', '.join(others)}, still "
                        "using it; the last of them deletes it"
                    )
                    return
                self._run(delete_command(), DELETE_TIMEOUT_S)
                self.users.mark_delete_when_unused(False)
        finally:
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    def export_logs(self, directory: Path) -> str:
        """`kind export logs` of the cluster into `directory`."""
        self._run(export_logs_command(directory), EXPORT_LOGS_TIMEOUT_S)
        return f"kind: exported the logs of cluster {CLUSTER_NAME}"

    def describe(self) -> str:
        """One line for the header."""
        if not self.created:
            how = "reused, left as it was"
        elif self.options.keep_cluster:
            how = "created by this run, kept (--keep-cluster)"
        else:
            how = "created by this run, deleted at the end"
        warning = f"; {self.version_warning}" if self.version_warning else ""
        return f"kind (cluster {CLUSTER_NAME}, node image {self.node_image}, {how}{warning})"


PROVIDER = KindProvider

"""The small interface every cluster provider implements.

A provider knows how to make *its kind* of cluster exist, how to reach it (kubeconfig and
context), how to make the workload images available to its nodes, and whether/how to provide
the resource metrics API. It never runs scenarios and never creates test namespaces.
"""

from __future__ import annotations

import abc
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from suite import images, timing
from suite.kube import Kube
from suite.preflight import metrics_api_problem

Log = Callable[[str], None]

REPO_ROOT = Path(__file__).resolve().parents[2]


class ProviderError(Exception):
    """The provider could not do its part; the message says what and how to fix it."""


@dataclass(frozen=True)
class Tool:
    """An external program a provider runs, and how to get it."""

    name: str
    how: str


def missing_tools_problem(
    cluster: str, tools: Sequence[Tool], which: Callable[[str], str | None] | None = None
) -> str | None:
    """None when every tool is on PATH (`which`, default shutil.which), else one line naming
    each missing one and how to get it."""
    find = which or shutil.which
    missing = [tool for tool in tools if find(tool.name) is None]
    if not missing:
        return None
    names = [tool.name for tool in missing]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    hows = "; ".join(f"{tool.name}: {tool.how}" for tool in missing)
    return f"--cluster={cluster} needs {listed} on PATH: {hows}"


@dataclass(frozen=True)
class ProviderOptions:
    """What a provider may use from the command line."""

    kubeconfig: Path | None = None
    context: str | None = None
    image_registry: str | None = None
    keep_cluster: bool = False
    #: --cluster=kind: the node image (None: $KUBE_ALIVE_KIND_NODE_IMAGE, else the release's).
    kind_node_image: str | None = None
    repo_root: Path = REPO_ROOT


@dataclass(frozen=True)
class Access:
    """How to reach the cluster: a kubeconfig file (None: the default) and a context (None:
    its current context)."""

    kubeconfig: Path | None
    context: str | None


class Provider(abc.ABC):
    """One way of getting a cluster for the scenarios."""

    #: The `--cluster` choice.
    name: ClassVar[str]
    #: One sentence for `pytest --help`.
    help: ClassVar[str]
    #: True when the provider deletes a cluster it created at the end of the run, which
    #: `--keep-cluster` prevents (the option goes with such providers only).
    deletes_its_cluster: ClassVar[bool] = False
    #: Every external program the provider runs itself, checked before it does anything
    #: (check_tools), so a missing one is one line that says how to get it, not a failure
    #: half-way (kind without kubectl would take a kept cluster for a broken one).
    tools: ClassVar[tuple[Tool, ...]] = ()

    def __init__(self, options: ProviderOptions, log: Log) -> None:
        self.options = options
        self.log = log
        #: True when this provider created the cluster in this run.
        self.created = False

    @classmethod
    def usage_errors(cls, options: ProviderOptions) -> list[str]:
        """Option combinations this provider cannot honour (checked before any cluster work)."""
        return []

    def check_tools(self) -> None:
        """Raise ProviderError, in one line with the fix, when a tool of `tools` is missing."""
        problem = missing_tools_problem(self.name, self.tools)
        if problem:
            raise ProviderError(problem)

    @abc.abstractmethod
    def prepare(self) -> None:
        """Make sure the cluster exists and runs (may start or create one)."""

    def export_logs(self, directory: Path) -> str | None:
        """Keep the cluster's own logs (nodes, components) in `directory` after a failed test;
        return what was done in a few words, or None when this provider has none to keep.
        May raise ProviderError."""
        return None

    @abc.abstractmethod
    def kubeconfig(self) -> Access:
        """Where the kubeconfig is and which context to use."""

    def image_ref(self, ref: str) -> str:
        """The reference the cluster's nodes should use for a workload image: a plain version
        (`...workloads:v1`, as the manifests name it) pinned to its content tag."""
        return images.pin(ref)

    @abc.abstractmethod
    def make_images_available(self, refs: Sequence[str]) -> None:
        """Put the workload images (canonical references) where the nodes find them."""

    def image_architectures(self) -> set[str] | None:
        """Architectures the images exist for, when known (None: unknown, not checked)."""
        return None

    def images_problem(self, kube: Kube, refs: Sequence[str]) -> str | None:
        """After make_images_available: None when the nodes can get the images (canonical
        references), else one line saying which node lacks which image and what to do."""
        return None

    @property
    def image_hint(self) -> str:
        """What to do when a node cannot pull a workload image (used in failure messages)."""
        return f"the {self.name} provider should have loaded it: rerun, or check the image build"

    def ensure_metrics_api(self, kube: Kube) -> str | None:
        """Make the resource metrics API available if this provider can; return None when it is
        there, else the one line that says it is missing and how to fix it."""
        return metrics_api_problem(kube)

    def timing(self, kube: Kube) -> timing.ClusterTiming:
        """The HPA sync period and metrics resolution this cluster runs with (suite.timing): read
        through the API from a kubeadm-style control plane and the metrics-server Deployment."""
        return timing.read(
            timing.controller_manager_from_api(kube), timing.metrics_server_from_api(kube)
        )

    def teardown(self) -> None:  # noqa: B027 - most providers leave the cluster as it is
        """Undo what this run created, if this provider undoes anything at all."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line about this provider for the report header."""


def run_command(
    args: Sequence[str],
    *,
    timeout_s: float,
    log: Log | None = None,
    input_text: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, check=True, bounded, output captured); raise ProviderError
    with the command and the tail of its stderr when it fails."""
    if log is not None:
        log("$ " + " ".join(args))
    try:
        return subprocess.run(
            list(args),
            check=True,
            timeout=timeout_s,
            capture_output=True,
            text=True,
            input=input_text,
            cwd=cwd,
        )
    except FileNotFoundError as error:
        raise ProviderError(f"{args[0]} not found on PATH") from error
    except subprocess.TimeoutExpired as error:
        raise ProviderError(f"{' '.join(args)} took longer than {timeout_s:.0f}s") from error
    except subprocess.CalledProcessError as error:
        tail = "\n".join((error.stderr or error.stdout or "").strip().splitlines()[-15:])
        raise ProviderError(
            f"{' '.join(args)} failed with exit code {error.returncode}:\n{tail}"
        ) from error


def workload_images() -> list[str]:
    """The canonical workload image references."""
    return images.workload_refs()

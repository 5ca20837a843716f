"""`--cluster=local`: the single-node cluster of this repository's `localcluster` package."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

from suite import timing
from suite.kube import Kube
from suite.preflight import host_architecture
from suite.providers.base import Access, Log, Provider, ProviderError, ProviderOptions, Tool


class LocalClusterAPI(Protocol):
    """The part of `localcluster.api` this provider uses."""

    def is_healthy(self) -> bool:
        """True when the local cluster runs and answers."""
        ...

    def up(self, log: Callable[[str], None], *, restore: bool = False) -> None:
        """Start the cluster if it is not healthy (idempotent); an applied fault or variant
        fails it unless `restore` (the provider never restores: that is the user's call)."""
        ...

    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig of the local cluster."""
        ...

    def load_images(self, refs: Sequence[str], log: Callable[[str], None]) -> None:
        """Build (cached) and import workload images into the node's containerd."""
        ...

    def component_argv(self, name: str) -> list[str] | None:
        """The argument list of a running component process, None if it does not run."""
        ...


def localcluster_api() -> LocalClusterAPI:
    """Import `localcluster.api` (late: only `--cluster=local` needs it)."""
    try:
        module = importlib.import_module("localcluster.api")
    except ImportError as error:
        raise ProviderError(f"--cluster=local needs the localcluster package: {error}") from error
    return cast(LocalClusterAPI, module)


class LocalProvider(Provider):
    """Starts the local cluster when none is healthy, and leaves it running afterwards (stopping
    it is `python -m localcluster down`, or `.ci/run`'s job)."""

    name = "local"
    help = (
        "the single-node cluster of this repository (pinned upstream components run as host "
        "processes, see localcluster/); started if it is not running and left running; images "
        "are built from workloads/Dockerfile and imported into its containerd"
    )
    #: What loading the images runs on a cluster that is already up (`up` checks the rest).
    tools = (
        Tool("buildah", "apt-get install -y buildah (or sudo bash localcluster/setup.sh)"),
        Tool("ctr", "apt-get install -y containerd (or sudo bash localcluster/setup.sh)"),
    )

    def __init__(self, options: ProviderOptions, log: Log) -> None:
        super().__init__(options, log)
        self._api: LocalClusterAPI | None = None

    @classmethod
    def usage_errors(cls, options: ProviderOptions) -> list[str]:
        """The local cluster has its own kubeconfig and images."""
        errors = []
        if options.kubeconfig:
            errors.append("--kubeconfig does not go with --cluster=local (it has its own)")
        if options.context:
            errors.append("--context does not go with --cluster=local (it has its own kubeconfig)")
        if options.image_registry:
            errors.append(
                "--image-registry does not go with --cluster=local (images are imported into its "
                "containerd); use it with --cluster=existing"
            )
        return errors

    @property
    def api(self) -> LocalClusterAPI:
        """`localcluster.api`."""
        if self._api is None:
            self._api = localcluster_api()
        return self._api

    def prepare(self) -> None:
        """Start the local cluster unless a healthy one runs already."""
        if self.api.is_healthy():
            self.log("local cluster: already running")
            return
        self.log("local cluster: not running, starting it (python -m localcluster up)")
        try:
            self.api.up(self.log)
        except Exception as error:  # localcluster's own errors say what is wrong; keep them
            raise ProviderError(f"the local cluster did not start: {error}") from error
        self.created = True

    def kubeconfig(self) -> Access:
        """The local cluster's admin kubeconfig, its own current context."""
        return Access(self.api.kubeconfig_path(), None)

    def make_images_available(self, refs: Sequence[str]) -> None:
        """Build (cached) and import the images into the node's containerd."""
        try:
            self.api.load_images(list(refs), self.log)
        except Exception as error:
            raise ProviderError(f"the workload images could not be loaded: {error}") from error

    def image_architectures(self) -> set[str] | None:
        """Images are built on this machine, for its architecture."""
        return {host_architecture()}

    @property
    def image_hint(self) -> str:
        """Where local images come from."""
        return "images are imported by `python -m localcluster load-images`: check its output"

    def timing(self, kube: Kube) -> timing.ClusterTiming:
        """Read from the running kube-controller-manager and metrics-server processes."""

        def found(name: str) -> timing.Found:
            try:
                argv = self.api.component_argv(name)
            except Exception:  # cannot see the process (another user's): say "not visible"
                return None
            return None if argv is None else (argv, f"the running {name} process")

        return timing.read(found("kube-controller-manager"), found("metrics-server"))

    def teardown(self) -> None:
        """Nothing: the cluster is left running (a second run reuses it)."""

    def describe(self) -> str:
        """One line for the header."""
        started = "started by this run" if self.created else "already running"
        return f"local (localcluster, {started})"


PROVIDER = LocalProvider

"""The cluster under test: brought up by its provider, checked, and described."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localcluster.util import file_lock
from suite import images, preflight
from suite.kube import ApiKube
from suite.preflight import ClusterError, ClusterFacts
from suite.providers import Access, Log, Provider
from suite.session import SessionState
from suite.timing import ClusterTiming

IMAGES_DONE = "images.done"
PREPARE_LOCK = "prepare.lock"


@dataclass
class Cluster:
    """A connected, checked cluster and the provider that gave it."""

    provider: Provider
    kube: ApiKube
    access: Access
    facts: ClusterFacts
    run_id: str
    worker: str

    def image(self, tag: str) -> str:
        """The workload image of `tag` as this cluster's nodes should pull it."""
        return self.provider.image_ref(images.image_ref(tag))

    @property
    def image_hint(self) -> str:
        """What to do when a node cannot pull a workload image."""
        return self.provider.image_hint

    @property
    def timing(self) -> ClusterTiming:
        """The HPA sync period and metrics resolution the cluster runs with (suite.timing)."""
        if self.facts.timing is None:
            raise ClusterError("the cluster's timing settings were not read at bring-up")
        return ClusterTiming.from_dict(self.facts.timing)

    @property
    def metrics_problem(self) -> str | None:
        """None when the metrics API is there, else one line with the fix."""
        return self.facts.metrics_problem

    def describe(self) -> str:
        """One line for the terminal."""
        return f"{self.provider.describe()}: {self.facts.summary()}"

    def shared_data(self) -> dict[str, Any]:
        """What the controller needs later (final sweep, report header)."""
        return {
            "provider": self.provider.name,
            "describe": self.provider.describe(),
            "kubeconfig": str(self.access.kubeconfig) if self.access.kubeconfig else None,
            "context": self.access.context,
            "created": self.provider.created,
            "facts": self.facts.to_dict(),
        }


def bring_up(provider: Provider, state: SessionState, log: Log) -> Cluster:
    """Prepare, connect and check the cluster, and make the images available.

    Under pytest-xdist the workers do this one at a time (a file lock), and only the first one
    loads the images; the others find the cluster ready.
    """
    with file_lock(state.shared_dir / PREPARE_LOCK, "preparing the cluster", log):
        provider.check_tools()
        provider.prepare()
        access = provider.kubeconfig()
        kube, version = preflight.connect(access.kubeconfig, access.context)
        # Rights first: a user who may not list nodes should hear that, not see a bare 403.
        problem = preflight.permission_problem(kube)
        if problem:
            raise ClusterError(problem)
        nodes = preflight.gather_nodes(kube)
        problem = preflight.node_problem(nodes, provider.image_architectures())
        if problem:
            raise ClusterError(problem)
        marker = state.shared_dir / IMAGES_DONE
        if not marker.exists():
            provider.make_images_available(images.workload_refs())
            marker.touch()
        problem = provider.images_problem(kube, images.workload_refs())
        if problem:
            raise ClusterError(problem)
        metrics_problem = provider.ensure_metrics_api(kube)
        facts = ClusterFacts(
            provider=provider.name,
            context=access.context or ApiKube.current_context(access.kubeconfig),
            server=kube.host,
            server_version=str(version.get("gitVersion", "?")),
            nodes=nodes,
            metrics_problem=metrics_problem,
            timing=provider.timing(kube).to_dict(),
            images={
                **images.facts(),
                "refs": [provider.image_ref(ref) for ref in images.workload_refs()],
            },
        )
        cluster = Cluster(provider, kube, access, facts, state.run_id, state.worker)
        state.write_cluster(cluster.shared_data())
    return cluster

"""`--cluster=existing`: any cluster a kubeconfig reaches (a Raspberry Pi cluster, a cloud one)."""

from __future__ import annotations

from collections.abc import Sequence

from suite import images
from suite.kube import NODES, Kube
from suite.preflight import missing_images
from suite.providers.base import Access, Provider, ProviderOptions
from suite.waiting import Done, Pending, Source, State, Verdict, WaitTimeout, wait_until

#: The kubelet posts its node's status (the image list included) every
#: nodeStatusUpdateFrequency (10 s, the default) when something changed, such as an image that was
#: just imported; but the list it posts is its image manager's cache, refreshed every 30 s
#: (pkg/kubelet/images/image_gc_manager.go). One refresh, one update and a margin before an image
#: counts as missing (seen: an image imported at session start was not listed after 25 s).
NODE_STATUS_UPDATE_S = 10.0
KUBELET_IMAGE_CACHE_S = 30.0
IMAGES_LISTED_S = KUBELET_IMAGE_CACHE_S + NODE_STATUS_UPDATE_S + 5.0

METRICS_SERVER_MANIFEST = (
    "https://github.com/kubernetes-sigs/metrics-server/releases/latest/download/components.yaml"
)


class ExistingProvider(Provider):
    """Uses the cluster as it is: nothing is created, installed or torn down. The nodes pull the
    workload images from `--image-registry`."""

    name = "existing"
    help = (
        "any running cluster your kubeconfig reaches (--kubeconfig, --context; default "
        "$KUBECONFIG or ~/.kube/config and its current context), e.g. a Raspberry Pi cluster; "
        "nothing is installed; nodes pull the workload images from --image-registry"
    )

    @classmethod
    def usage_errors(cls, options: ProviderOptions) -> list[str]:
        """A registry is given as host[:port][/path], without a scheme."""
        registry = options.image_registry
        if registry and ("://" in registry or registry.strip("/") != registry.strip()):
            return [
                f"--image-registry={registry}: give host[:port][/path] without scheme or slashes"
            ]
        return []

    def prepare(self) -> None:
        """Nothing to start: the cluster is expected to run."""

    def kubeconfig(self) -> Access:
        """The kubeconfig and context from the command line (or the defaults)."""
        return Access(self.options.kubeconfig, self.options.context)

    def image_ref(self, ref: str) -> str:
        """`localhost/kube-alive/workloads:v1` -> `<registry>/kube-alive/workloads:v1-<digest>`
        (the content tag scripts/build-images.sh pushes)."""
        return images.rewrite(images.pin(ref), self.options.image_registry)

    def make_images_available(self, refs: Sequence[str]) -> None:
        """Nothing to copy: the nodes pull from the registry (a missing image fails fast, naming
        the image and --image-registry)."""
        where = self.options.image_registry or "(no --image-registry: the nodes must have them)"
        self.log(
            f"existing cluster: images {', '.join(self.image_ref(r) for r in refs)} from {where}"
        )

    def image_architectures(self) -> set[str] | None:
        """With --image-registry: what scripts/build-images.sh pushes (a node of another
        architecture fails here, not at its first pull). Without: whatever is on the nodes
        (images_problem)."""
        return set(images.PUSHED_ARCHITECTURES) if self.options.image_registry else None

    def images_problem(
        self, kube: Kube, refs: Sequence[str], *, timeout_s: float = IMAGES_LISTED_S
    ) -> str | None:
        """Without --image-registry every Ready node must have the images already.

        A node lists its images in its status at the kubelet's next status update, so images
        imported a moment ago (e.g. onto the local cluster) appear up to one update later: the
        nodes are watched for `timeout_s` before an image is called missing.
        """
        if self.options.image_registry:
            return None
        last: dict[str, list[str]] = {}

        def check(state: State) -> Verdict:
            missing = missing_images(list(state["nodes"].values()), refs)
            last.clear()
            last.update(missing)
            if not missing:
                return Done(None)
            return Pending(_missing_text(missing))

        try:
            wait_until(
                kube,
                [Source("nodes", NODES, None)],
                check,
                timeout_s=timeout_s,
                what="workload images in the nodes' status",
                where="the cluster's nodes",
                expected="every Ready node lists them",
            )
        except WaitTimeout:
            return (
                "no --image-registry given and the nodes lack workload images ("
                + _missing_text(last)
                + f", still after {timeout_s:.0f} s of node status updates): push them with "
                "scripts/build-images.sh REGISTRY --push and pass --image-registry=REGISTRY"
            )
        return None

    @property
    def image_hint(self) -> str:
        """What to do when a node cannot pull a workload image."""
        if self.options.image_registry:
            tags = ", ".join(images.content_tag(tag) for tag in images.TAGS)
            return (
                f"push the workload images to {self.options.image_registry}/kube-alive/workloads "
                f"(tags {tags}, for every node architecture: scripts/build-images.sh "
                f"{self.options.image_registry} --push, again after any change to workloads/) "
                "or fix --image-registry"
            )
        return (
            "on an existing cluster the nodes pull the images themselves: push them with "
            "scripts/build-images.sh REGISTRY --push (tags "
            + ", ".join(images.content_tag(tag) for tag in images.TAGS)
            + ") to a registry they reach and pass --image-registry=<host[:port]>"
        )

    def ensure_metrics_api(self, kube: Kube) -> str | None:
        """Check only: installing into someone's cluster is not this suite's call."""
        problem = super().ensure_metrics_api(kube)
        if problem:
            return f"{problem}, e.g. kubectl apply -f {METRICS_SERVER_MANIFEST}"
        return None

    def describe(self) -> str:
        """One line for the header."""
        where = self.options.image_registry or "no registry"
        return f"existing (images from {where})"


PROVIDER = ExistingProvider


def _missing_text(missing: dict[str, list[str]]) -> str:
    return "; ".join(f"node {node}: {', '.join(absent)}" for node, absent in missing.items())

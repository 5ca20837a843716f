"""Questions asked of a cluster before any scenario runs: can we reach it, what is it, is it
usable (nodes Ready, architectures, permission to create namespaces), is there a metrics API."""

from __future__ import annotations

import os
import platform
import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suite.kube import (
    JSON,
    NODES,
    ApiKube,
    Kube,
    KubeconfigError,
    KubeError,
    condition,
    list_objects,
    name_of,
)

CONNECT_TIMEOUT_S = 15.0
METRICS_APISERVICE = "v1beta1.metrics.k8s.io"
METRICS_FIX = "install metrics-server"
NO_METRICS = f"no metrics API ({METRICS_APISERVICE}): {METRICS_FIX}"
#: What the suite does outside its test namespaces: create, sweep and delete them; list nodes.
NEEDED_RIGHTS = (
    ("create", "namespaces"),
    ("delete", "namespaces"),
    ("list", "namespaces"),
    ("list", "nodes"),
)
#: The kubelet reports only this many images per node (--node-status-max-images, the largest
#: first), so an image missing from a full list may still be there.
NODE_STATUS_MAX_IMAGES = 50

_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


class ClusterError(Exception):
    """The cluster cannot be used for the scenarios; the message says why and what to do."""


def host_architecture() -> str:
    """This machine's architecture in Kubernetes terms (amd64, arm64, ...)."""
    machine = platform.machine().lower()
    return _ARCH_ALIASES.get(machine, machine)


@dataclass(frozen=True)
class NodeFact:
    """One node as the report header shows it."""

    name: str
    ready: bool
    architecture: str
    os_image: str = ""
    kubelet: str = ""


@dataclass
class ClusterFacts:
    """What the suite learned about the cluster when it connected."""

    provider: str
    context: str
    server: str
    server_version: str
    nodes: list[NodeFact] = field(default_factory=list)
    metrics_problem: str | None = None
    #: suite.timing.ClusterTiming.to_dict(): the HPA sync and metrics resolution, and their source.
    timing: JSON | None = None
    #: The workload images this run used (suite.images.facts(), plus `refs`: each as the nodes
    #: got it): which build of workloads/ ran, by its content digest.
    images: JSON | None = None

    @property
    def architectures(self) -> list[str]:
        """Distinct node architectures."""
        return sorted({node.architecture for node in self.nodes})

    def summary(self) -> str:
        """One line for the terminal and the report header."""
        ready = sum(1 for node in self.nodes if node.ready)
        metrics = "metrics API present" if self.metrics_problem is None else self.metrics_problem
        digest = (self.images or {}).get("digest")
        return (
            f"cluster {self.provider}, context {self.context or '(none)'}, server {self.server}, "
            f"Kubernetes {self.server_version}, {ready}/{len(self.nodes)} nodes Ready "
            f"({', '.join(self.architectures) or 'no nodes'}), {metrics}"
            + (f", workload images {digest}" if digest else "")
        )

    def to_dict(self) -> JSON:
        """JSON-serialisable form."""
        data = asdict(self)
        data["architectures"] = self.architectures
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterFacts:
        """Inverse of to_dict."""
        return cls(
            provider=str(data.get("provider", "")),
            context=str(data.get("context", "")),
            server=str(data.get("server", "")),
            server_version=str(data.get("server_version", "")),
            nodes=[NodeFact(**node) for node in data.get("nodes", [])],
            metrics_problem=data.get("metrics_problem"),
            timing=data.get("timing"),
            images=data.get("images"),
        )


def kubeconfig_files(
    kubeconfig: Path | None, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """The files a kubeconfig is read from: the one given, else each of $KUBECONFIG's (kubectl
    merges them), else ~/.kube/config."""
    if kubeconfig is not None:
        return [kubeconfig]
    env = os.environ if environ is None else environ
    listed = [Path(part) for part in env.get("KUBECONFIG", "").split(os.pathsep) if part]
    return listed or [Path.home() / ".kube" / "config"]


def kubeconfig_problem(
    kubeconfig: Path | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """One line when a kubeconfig file is not a YAML mapping at all (the client library would
    fail with e.g. "'str' object does not support item assignment"); None otherwise (missing
    files and bad contents inside a mapping are the client library's to explain)."""
    for path in kubeconfig_files(kubeconfig, environ):
        try:
            document = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as error:
            return f"cannot read the kubeconfig {path}: {error}"
        except yaml.YAMLError as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            return f"the kubeconfig {path} is not valid YAML ({first})"
        if document is not None and not isinstance(document, dict):
            return (
                f"the kubeconfig {path} is not a kubeconfig: it holds a YAML "
                f"{type(document).__name__}, not a mapping with clusters, users and contexts "
                "(kubectl config view --raw writes one)"
            )
    return None


def connect(
    kubeconfig: Path | None, context: str | None, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> tuple[ApiKube, JSON]:
    """Build a client and ask for /version; a clear ClusterError within `timeout_s` otherwise."""
    problem = kubeconfig_problem(kubeconfig)
    if problem:
        raise KubeconfigError(problem)
    kube = ApiKube.from_kubeconfig(kubeconfig, context)
    shown_context = context or ApiKube.current_context(kubeconfig) or "(current)"
    shown_config = str(kubeconfig) if kubeconfig else "$KUBECONFIG or ~/.kube/config"
    per_try = (min(5.0, timeout_s / 3), min(8.0, timeout_s / 2))
    answers: queue.Queue[Any] = queue.Queue()

    def ask() -> None:
        try:
            answers.put(kube.request("GET", "/version", timeout=per_try))
        except Exception as error:
            answers.put(error)

    # A daemon thread bounds the total time even if DNS, TLS or an exec credential plugin hangs,
    # and does not hold up the interpreter's exit if it does.
    threading.Thread(target=ask, name="connect", daemon=True).start()
    where = f"the API server {kube.host} (context {shown_context}, kubeconfig {shown_config})"
    try:
        answer = answers.get(timeout=timeout_s)
    except queue.Empty:
        raise ClusterError(f"cannot reach {where}: no answer within {timeout_s:.0f}s") from None
    if isinstance(answer, KubeError):
        raise ClusterError(f"cannot reach {where}: {answer}") from answer
    if isinstance(answer, Exception):
        raise answer
    return kube, dict(answer)


def node_facts(nodes: Iterable[Mapping[str, Any]]) -> list[NodeFact]:
    """Facts of each Node object."""
    facts = []
    for node in nodes:
        info = (node.get("status") or {}).get("nodeInfo") or {}
        ready = condition(node, "Ready")
        facts.append(
            NodeFact(
                name=name_of(node),
                ready=bool(ready and ready.get("status") == "True"),
                architecture=str(info.get("architecture", "?")),
                os_image=str(info.get("osImage", "")),
                kubelet=str(info.get("kubeletVersion", "")),
            )
        )
    return facts


def node_problem(nodes: list[NodeFact], image_architectures: set[str] | None) -> str | None:
    """Why the nodes cannot run the scenarios (none Ready, a Ready node whose architecture has
    no workload image), in one line that names the nodes and what to do."""
    if not nodes:
        return "the cluster has no nodes: add one (kubectl get nodes shows none)"
    ready = [node for node in nodes if node.ready]
    if not ready:
        return (
            f"no node is Ready (not Ready: {', '.join(node.name for node in nodes)}): "
            "the scenarios need at least one; see kubectl describe nodes"
        )
    if image_architectures is not None:
        without = [node for node in ready if node.architecture not in image_architectures]
        if without:
            missing = sorted({node.architecture for node in without})
            return (
                "no workload image for "
                + ", ".join(f"node {node.name} ({node.architecture})" for node in without)
                + f": the images are built for {', '.join(sorted(image_architectures))}, "
                f"not {', '.join(missing)}; build them for {', '.join(missing)} too "
                "(scripts/build-images.sh) or use nodes of those architectures"
            )
    return None


def missing_images(nodes: Iterable[Mapping[str, Any]], refs: Sequence[str]) -> dict[str, list[str]]:
    """For each Ready Node object, the image references it does not report in status.images
    (nodes whose list is full are left out: the kubelet reports only the largest images)."""
    missing: dict[str, list[str]] = {}
    for node in nodes:
        ready = condition(node, "Ready")
        if not (ready and ready.get("status") == "True"):
            continue
        listed = (node.get("status") or {}).get("images") or []
        if len(listed) >= NODE_STATUS_MAX_IMAGES:
            continue
        names = {str(name) for image in listed for name in image.get("names") or []}
        absent = [ref for ref in refs if ref not in names]
        if absent:
            missing[name_of(node)] = absent
    return missing


def gather_nodes(kube: Kube) -> list[NodeFact]:
    """List the nodes."""
    items, _ = list_objects(kube, NODES)
    return node_facts(items)


def can_i(
    kube: Kube, verb: str, resource: str, *, group: str = "", namespace: str | None = None
) -> tuple[bool, str]:
    """SelfSubjectAccessReview: may the current user `verb` `resource`? (allowed, reason)"""
    attributes: JSON = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attributes["namespace"] = namespace
    review = kube.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        },
    )
    status = review.get("status") or {}
    return bool(status.get("allowed")), str(
        status.get("reason") or status.get("evaluationError") or ""
    )


def who_am_i(kube: Kube) -> str:
    """The user name the API server sees (SelfSubjectReview); "the current user" when it
    cannot tell."""
    try:
        review = kube.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    except KubeError:
        return "the current user"
    name = ((review.get("status") or {}).get("userInfo") or {}).get("username")
    return f"user {name}" if name else "the current user"


def permission_problem(kube: Kube) -> str | None:
    """Why the current user cannot run the scenarios (NEEDED_RIGHTS: it creates, lists and
    deletes namespaces and lists nodes), naming the user, every missing right and the fix."""
    denied = []
    for verb, resource in NEEDED_RIGHTS:
        allowed, reason = can_i(kube, verb, resource)
        if not allowed:
            denied.append(f"{verb} {resource}" + (f" ({reason})" if reason else ""))
    if not denied:
        return None
    return (
        f"{who_am_i(kube)} may not {', '.join(denied)}: use a context with those rights "
        "(e.g. cluster-admin on a test cluster)"
    )


def apiservice_path(apiservice: str) -> str:
    """`v1beta1.metrics.k8s.io` -> `/apis/metrics.k8s.io/v1beta1` (an APIService is named
    <version>.<group>)."""
    version, _, group = apiservice.partition(".")
    return f"/apis/{group}/{version}"


def metrics_api_problem(kube: Kube, apiservice: str = METRICS_APISERVICE) -> str | None:
    """None when the resource metrics API (served through `apiservice`) answers, else the one
    line with the fix."""
    try:
        kube.request("GET", apiservice_path(apiservice), timeout=(5.0, 10.0))
    except KubeError as error:
        if error.status in (404, 503, 0):
            detail = "not registered" if error.status == 404 else error.message
            return f"no metrics API ({apiservice}): {METRICS_FIX} ({detail})"
        raise
    return None

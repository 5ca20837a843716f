"""Apply a workload's manifests (from `manifests/<app>/`) into a test namespace.

Only the `resources:` list of each `kustomization.yaml` is read: the suite needs the objects, not
kustomize's transformations. Objects are put into the test namespace, their workload images are
pointed at the provider's images, optional overrides are merged in, and they are sent with
server-side apply, so applying twice is harmless.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from suite.kube import JSON, Kube, KubeError, Resource

MANIFESTS_DIR = Path(__file__).parents[1] / "manifests"
FIELD_MANAGER = "kube-alive"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

#: Kinds that live outside namespaces: they get no metadata.namespace. The suite does not apply
#: them into test namespaces (they would outlive the namespace and clash between tests).
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "APIService",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
_POD_TEMPLATE_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
)


class ManifestError(Exception):
    """A kustomization or manifest that the suite cannot use."""


def kustomization_path(directory: Path) -> Path:
    """The kustomization file of a directory."""
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise ManifestError(f"{directory}: no kustomization.yaml")


def resource_files(directory: Path) -> list[Path]:
    """The manifest files listed (recursively) under `resources:` of a kustomization."""
    path = kustomization_path(directory)
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ManifestError(f"{path}: expected a mapping")
    files: list[Path] = []
    for entry in document.get("resources") or []:
        entry = str(entry)
        if "://" in entry or entry.startswith("github.com/"):
            raise ManifestError(f"{path}: remote resource {entry!r} is not supported")
        target = (directory / entry).resolve()
        if target.is_dir():
            files.extend(resource_files(target))
        elif target.is_file():
            files.append(target)
        else:
            raise ManifestError(f"{path}: resource {entry!r} does not exist")
    return files


def load_app(app: str, root: Path = MANIFESTS_DIR) -> list[JSON]:
    """All objects of one workload's kustomization, in file order."""
    directory = root / app
    if not directory.is_dir():
        raise ManifestError(f"no manifests for {app!r}: {directory} does not exist")
    objects: list[JSON] = []
    for file in resource_files(directory):
        for document in yaml.safe_load_all(file.read_text()):
            if document is None:
                continue
            if not isinstance(document, dict) or "kind" not in document:
                raise ManifestError(f"{file}: a document without kind")
            if document["kind"] == "List":
                objects.extend(dict(item) for item in document.get("items") or [])
            else:
                objects.append(dict(document))
    return objects


def deep_merge(base: JSON, patch: Mapping[str, Any]) -> JSON:
    """Merge `patch` into a copy of `base`: mappings recursively, everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def pod_spec(obj: Mapping[str, Any]) -> JSON | None:
    """The pod spec inside a workload object (or a Pod's own spec)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return dict(spec)
    if kind in _POD_TEMPLATE_KINDS:
        return dict((spec.get("template") or {}).get("spec") or {})
    if kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return dict((job.get("template") or {}).get("spec") or {})
    return None


def rewrite_images(obj: JSON, rewrite: Callable[[str], str]) -> JSON:
    """A copy of `obj` with every container image passed through `rewrite`."""
    result = copy.deepcopy(obj)
    kind = result.get("kind")
    spec = result.get("spec") or {}
    if kind == "Pod":
        target = spec
    elif kind in _POD_TEMPLATE_KINDS:
        target = (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        target = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get(
            "spec"
        ) or {}
    else:
        return result
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in target.get(key) or []:
            if "image" in container:
                container["image"] = rewrite(str(container["image"]))
    return result


def prepare(
    objects: Iterable[JSON],
    namespace: str,
    *,
    rewrite: Callable[[str], str] = lambda ref: ref,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[JSON]:
    """Objects ready to apply: namespaced into `namespace`, images rewritten, overrides merged.

    `overrides` maps `Kind/name` to a patch merged into that object, e.g.
    `{"Deployment/getip": {"spec": {"replicas": 4}}}`. An override naming no object is an error
    (a typo would otherwise silently test the wrong thing).
    """
    pending = dict(overrides or {})
    prepared: list[JSON] = []
    for obj in objects:
        kind = str(obj.get("kind"))
        if kind in CLUSTER_SCOPED:
            continue
        item = rewrite_images(obj, rewrite)
        metadata = item.setdefault("metadata", {})
        metadata["namespace"] = namespace
        if kind in ("RoleBinding",):
            for subject in item.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
        key = f"{kind}/{metadata.get('name')}"
        if key in pending:
            item = deep_merge(item, pending.pop(key))
        prepared.append(item)
    if pending:
        raise ManifestError(
            f"overrides for objects that are not in the manifests: {sorted(pending)}"
        )
    return prepared


class RestMapper:
    """Finds the REST path of a kind through API discovery (cached per group/version)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._cache: dict[str, dict[str, Resource]] = {}

    def resource(self, api_version: str, kind: str) -> Resource:
        """The collection that serves `kind` in `api_version`."""
        if api_version not in self._cache:
            prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            listing = self.kube.request("GET", prefix)
            found: dict[str, Resource] = {}
            for entry in listing.get("resources") or []:
                name = str(entry.get("name", ""))
                if "/" in name:
                    continue  # a subresource (pods/log, deployments/scale)
                found[str(entry.get("kind"))] = Resource(
                    str(entry.get("kind")), prefix, name, bool(entry.get("namespaced"))
                )
            self._cache[api_version] = found
        try:
            return self._cache[api_version][kind]
        except KeyError:
            raise ManifestError(f"the cluster does not serve {kind} in {api_version}") from None


def apply_objects(
    kube: Kube, objects: Sequence[JSON], *, mapper: RestMapper | None = None
) -> list[JSON]:
    """Server-side apply each object (field manager `kube-alive`, forced); return what the server
    answered."""
    mapper = mapper or RestMapper(kube)
    applied: list[JSON] = []
    for obj in objects:
        resource = mapper.resource(str(obj["apiVersion"]), str(obj["kind"]))
        metadata = obj.get("metadata") or {}
        path = resource.path(metadata.get("namespace"), str(metadata["name"]))
        try:
            result = kube.request(
                "PATCH",
                path,
                query={"fieldManager": FIELD_MANAGER, "force": True},
                body=obj,
                content_type="application/apply-patch+yaml",
            )
        except KubeError as error:
            raise ManifestError(
                f"could not apply {obj['kind']}/{metadata['name']}: {error}"
            ) from error
        applied.append(dict(result))
    return applied


def apply_app(
    kube: Kube,
    app: str,
    namespace: str,
    *,
    rewrite: Callable[[str], str] = lambda ref: ref,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    root: Path = MANIFESTS_DIR,
    mapper: RestMapper | None = None,
) -> list[JSON]:
    """Load, prepare and apply one workload's manifests into `namespace`."""
    objects = prepare(load_app(app, root), namespace, rewrite=rewrite, overrides=overrides)
    return apply_objects(kube, objects, mapper=mapper)

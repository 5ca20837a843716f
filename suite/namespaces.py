"""Test namespaces: created per test with the run's labels, deleted after, swept at the end."""

from __future__ import annotations

from collections.abc import Callable

from suite import naming
from suite.kube import NAMESPACES, Kube, KubeError, list_objects, name_of


def create(kube: Kube, *, run_id: str, worker: str, test_name: str, nodeid: str) -> str:
    """Create the namespace of one test; return its name.

    The readable name is tried first; if it is taken (two tests with the same name in different
    modules, or a rerun while the old namespace is still terminating) the hashed form is used.
    """
    labels = naming.namespace_labels(run_id, worker)
    annotations = {naming.NODEID_ANNOTATION: nodeid[:1000]}
    last_error: KubeError | None = None
    for hashed in (False, True):
        name = naming.namespace_name(run_id, test_name, nodeid, hashed=hashed)
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
        }
        try:
            kube.request("POST", NAMESPACES.path(), body=body)
        except KubeError as error:
            if error.status == 409:
                last_error = error
                continue
            raise
        return name
    assert last_error is not None
    raise last_error


def delete(kube: Kube, name: str) -> bool:
    """Ask for a namespace's deletion (background: its contents go with it); False if it was
    already gone."""
    try:
        kube.request(
            "DELETE",
            NAMESPACES.path(name=name),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )
    except KubeError as error:
        if error.status == 404:
            return False
        raise
    return True


def sweep(kube: Kube, label_selector: str, log: Callable[[str], None] | None = None) -> list[str]:
    """Delete every namespace matching `label_selector` that is not already terminating; return
    their names."""
    items, _ = list_objects(kube, NAMESPACES, label_selector=label_selector)
    swept = []
    for item in items:
        if (item.get("metadata") or {}).get("deletionTimestamp"):
            continue
        name = name_of(item)
        try:
            if delete(kube, name):
                swept.append(name)
        except KubeError as error:
            if log is not None:
                log(f"could not delete namespace {name}: {error}")
    return swept

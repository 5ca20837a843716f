"""The existing provider's preflight checks, each against this real cluster, without changing it.

`--cluster=existing` is for clusters we do not own (a Raspberry Pi cluster), so each check it
runs before any scenario must fail with one line that names what is wrong, where, and the fix.
Here every check meets the real API server twice: once as the run's own user (it passes) and
once with the one input that makes it fail, chosen so nothing cluster-wide changes:

- node architectures: the real nodes against images for an architecture they do not have;
- metrics API: the same request for an APIService name nobody registers;
- rights: a real token of a ServiceAccount with no RBAC bindings, made in the test namespace;
- images on the nodes without `--image-registry`: the real node image lists against a tag that
  was never built.

Covered by unit tests instead, because faking them here would disturb the cluster: no node
Ready (`suite/tests/test_session.py::test_node_problems`), an unreachable API server or unknown
context (`suite/tests/test_plugin.py`, `suite/tests/test_session.py::test_connect_*`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from suite import images
from suite.cluster import Cluster, bring_up
from suite.kube import APISERVICES, NODES, KubeError, client_configuration, get_object, list_objects
from suite.preflight import (
    NODE_STATUS_MAX_IMAGES,
    ClusterError,
    connect,
    gather_nodes,
    metrics_api_problem,
    node_problem,
    permission_problem,
)
from suite.providers import ProviderOptions
from suite.providers.existing import IMAGES_LISTED_S, ExistingProvider
from suite.session import STATE_KEY, SessionState
from suite.waiting import retry_transient

#: An architecture no node of a test cluster has, and Kubernetes knows.
FOREIGN_ARCHITECTURE = "s390x"
#: An APIService name under a test-only domain that nobody registers.
UNREGISTERED_APISERVICE = "v1beta1.nonexistent.kube-alive.test"
#: A workload image tag that is never built.
ABSENT_IMAGE = images.image_ref("not-on-any-node")
#: How long the provider watches the nodes before calling that tag missing: its default waits two
#: node status updates for images imported a moment ago; a tag never built needs no such wait.
ABSENT_WAIT_S = 2.0
#: The restricted identity: a ServiceAccount of the test namespace, bound to nothing.
NOBODY = "kube-alive-nobody"
#: The shortest lifetime a TokenRequest accepts.
TOKEN_LIFETIME_S = 600
#: The token authenticator looks the ServiceAccount up; right after it was created the lookup may
#: miss for a moment (401). Seconds on a busy 2-core machine.
TOKEN_ACCEPTED_S = 20.0
#: pytest-timeout backstop (suite/plugin.py): a token accepted, the nodes' image lists watched
#: until the kubelet's image cache and status update have caught up (IMAGES_LISTED_S), API
#: calls; plus a margin.
BACKSTOP_S = TOKEN_ACCEPTED_S + IMAGES_LISTED_S + 120.0
FIX_RIGHTS = "use a context with those rights (e.g. cluster-admin on a test cluster)"


def existing_options(cluster: Cluster, request: pytest.FixtureRequest) -> ProviderOptions:
    """This run's provider options, pointed at this cluster's kubeconfig and context."""
    settings = request.config.stash[STATE_KEY].settings
    return dataclasses.replace(
        settings.provider_options(),
        kubeconfig=cluster.access.kubeconfig,
        context=cluster.access.context,
    )


def private_state(request: pytest.FixtureRequest, directory: Path) -> SessionState:
    """A session state of this run whose shared directory is `directory`, so a second bring_up
    neither waits on nor writes into the run's own."""
    state = request.config.stash[STATE_KEY]
    return SessionState(
        settings=state.settings,
        run_id=state.run_id,
        worker=state.worker,
        is_worker=True,
        _shared_dir=directory,
    )


def test_the_existing_provider_passes_every_preflight_check_on_this_cluster(
    cluster: Cluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The whole --cluster=existing preflight (connect, rights, nodes and their architectures,
    images on the nodes, metrics API) as the run's own user: no problem anywhere."""
    log: list[str] = []
    provider = ExistingProvider(existing_options(cluster, request), log.append)
    checked = bring_up(provider, private_state(request, tmp_path), log.append)
    assert checked.facts.metrics_problem is None, checked.facts.metrics_problem
    assert checked.facts.server == cluster.kube.host
    assert [node.name for node in checked.facts.nodes] == [n.name for n in cluster.facts.nodes]


def test_a_node_architecture_without_workload_images_is_named_with_its_node_and_the_fix(
    cluster: Cluster,
) -> None:
    """Images built only for s390x: one line naming every Ready node with its architecture, what
    the images are built for, and how to build the missing ones; the nodes' own architectures
    pass."""
    nodes = gather_nodes(cluster.kube)
    ready = [node for node in nodes if node.ready]
    assert ready, f"no Ready node: {nodes}"
    assert FOREIGN_ARCHITECTURE not in {node.architecture for node in nodes}
    problem = node_problem(nodes, {FOREIGN_ARCHITECTURE})
    assert problem is not None, "a node architecture without images was not reported"
    assert "\n" not in problem
    for node in ready:
        assert f"node {node.name} ({node.architecture})" in problem, problem
    missing = ", ".join(sorted({node.architecture for node in ready}))
    assert f"the images are built for {FOREIGN_ARCHITECTURE}, not {missing}" in problem, problem
    assert f"build them for {missing} too (scripts/build-images.sh)" in problem, problem
    assert node_problem(nodes, {node.architecture for node in ready}) is None


def test_a_missing_metrics_api_is_one_line_that_says_install_metrics_server(
    cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    """The metrics check asked about an APIService nobody registered says so and names the fix;
    about the real v1beta1.metrics.k8s.io it finds nothing wrong."""
    with pytest.raises(KubeError) as absent:
        get_object(cluster.kube, APISERVICES, None, UNREGISTERED_APISERVICE)
    assert absent.value.status == 404, f"{UNREGISTERED_APISERVICE} should not exist: {absent.value}"
    assert metrics_api_problem(cluster.kube, UNREGISTERED_APISERVICE) == (
        f"no metrics API ({UNREGISTERED_APISERVICE}): install metrics-server (not registered)"
    )
    assert metrics_api_problem(cluster.kube) is None
    provider = ExistingProvider(existing_options(cluster, request), lambda message: None)
    assert provider.ensure_metrics_api(cluster.kube) is None


def token_kubeconfig(cluster: Cluster, token: str, path: Path) -> Path:
    """A kubeconfig for this cluster's API server (its CA, its address) that authenticates with
    `token` and nothing else."""
    configuration = client_configuration(cluster.access.kubeconfig, cluster.access.context)
    server: dict[str, Any] = {"server": configuration.host}
    if not configuration.verify_ssl:
        server["insecure-skip-tls-verify"] = True
    elif configuration.ssl_ca_cert:
        server["certificate-authority"] = str(Path(configuration.ssl_ca_cert).resolve())
    if getattr(configuration, "tls_server_name", None):
        server["tls-server-name"] = configuration.tls_server_name
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "this", "cluster": server}],
        "users": [{"name": NOBODY, "user": {"token": token}}],
        "contexts": [{"name": NOBODY, "context": {"cluster": "this", "user": NOBODY}}],
        "current-context": NOBODY,
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


@pytest.fixture
def nobody_kubeconfig(cluster: Cluster, namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig holding a fresh 10-minute token of ServiceAccount kube-alive-nobody in the
    test namespace (no RBAC binding anywhere); it goes with the namespace."""
    cluster.kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NOBODY}},
    )
    answer = cluster.kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{NOBODY}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_LIFETIME_S},
        },
    )
    return token_kubeconfig(cluster, str(answer["status"]["token"]), tmp_path / "nobody.kubeconfig")


def test_a_user_without_cluster_rights_is_told_which_rights_are_missing_and_the_fix(
    cluster: Cluster,
    namespace: str,
    nobody_kubeconfig: Path,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    figures: dict[str, Any],
) -> None:
    """With a real token of a ServiceAccount bound to nothing, the rights check names the user,
    every missing right (create/delete/list namespaces, list nodes) and the fix, and the whole
    existing-provider preflight stops with that line (not a bare 403 on listing nodes); the
    run's own user has every right."""
    nobody, _ = connect(nobody_kubeconfig, None)
    user = f"system:serviceaccount:{namespace}:{NOBODY}"

    def username() -> str:
        review = nobody.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        return str(review["status"]["userInfo"]["username"])

    seen = retry_transient(
        username,
        timeout_s=TOKEN_ACCEPTED_S,
        what=f"a token of serviceaccount/{NOBODY}",
        where=namespace,
        expected="accepted by the API server",
        transient=lambda error: isinstance(error, KubeError) and error.status == 401,
    )
    assert seen == user

    problem = permission_problem(nobody)
    figures.update(user=user, preflight_line=problem)
    assert problem is not None, f"{user} was not reported as missing rights"
    assert problem.startswith(f"user {user} may not create namespaces"), problem
    for right in ("delete namespaces", "list namespaces", "list nodes"):
        assert right in problem, problem
    assert problem.endswith(f": {FIX_RIGHTS}"), problem
    assert "\n" not in problem

    provider = ExistingProvider(ProviderOptions(kubeconfig=nobody_kubeconfig), lambda message: None)
    with pytest.raises(ClusterError) as stopped:
        bring_up(provider, private_state(request, tmp_path / "state"), lambda message: None)
    assert str(stopped.value) == problem

    assert permission_problem(cluster.kube) is None


def test_images_missing_from_the_nodes_without_a_registry_are_named_with_the_fix(
    cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    """Without --image-registry the existing provider wants the images on every Ready node: a
    tag that was never built is reported per node with the --image-registry fix; the run's
    own images (and settings) pass."""
    items, _ = list_objects(cluster.kube, NODES)
    checkable = [
        node["metadata"]["name"]
        for node in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in node["status"].get("conditions") or []
        )
        and len(node["status"].get("images") or []) < NODE_STATUS_MAX_IMAGES
    ]
    assert checkable, "no Ready node lists its images completely (more than 50 images each?)"
    without_registry = ExistingProvider(
        dataclasses.replace(existing_options(cluster, request), image_registry=None),
        lambda message: None,
    )
    problem = without_registry.images_problem(cluster.kube, [ABSENT_IMAGE], timeout_s=ABSENT_WAIT_S)
    assert problem is not None, f"{ABSENT_IMAGE} is on no node, yet nothing was reported"
    assert problem.startswith("no --image-registry given and the nodes lack workload images")
    for name in checkable:
        assert f"node {name}: {ABSENT_IMAGE}" in problem, problem
    assert problem.endswith(
        "push them with scripts/build-images.sh REGISTRY --push and pass --image-registry=REGISTRY"
    )
    as_run = ExistingProvider(existing_options(cluster, request), lambda message: None)
    assert as_run.images_problem(cluster.kube, images.workload_refs()) is None

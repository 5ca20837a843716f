"""The plugin's fixtures. Cluster work starts here, lazily, the first time a test needs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from suite import evidence, manifests, namespaces, naming, providers, waits
from suite.cluster import Cluster, bring_up
from suite.context import CONTEXT_KEY, TestContext
from suite.kube import (
    DEPLOYMENTS,
    JSON,
    PODS,
    KubeconfigError,
    KubeError,
    get_object,
    is_terminating,
    list_objects,
    name_of,
    selector_string,
)
from suite.preflight import ClusterError
from suite.recorder import Recorder
from suite.session import STATE_KEY, SessionState, make_log
from suite.settings import no_cluster_reason
from suite.traffic import Prober

#: Deadline for a freshly applied workload to be Ready: scheduling and container start of a
#: small, already-present image take seconds; the rest is room for a busy 2-core CI machine.
#: Image pull failures and crash loops fail long before it.
READY_S = 120.0
#: The prober answers through its Service once its endpoint is published (a second or two).
PROBER_REACHABLE_S = 30.0
#: Every watch of the recorder lists once before the test acts.
RECORDER_SYNC_S = 15.0
#: A new namespace's serviceaccount/default, without which no pod can be created there: the
#: ServiceAccount controller makes it within a second; its watches may back off up to 30 s
#: (client-go's most) after the API server was unreachable, e.g. restarted; plus a margin.
DEFAULT_SERVICE_ACCOUNT_S = 45.0


def _state(config: pytest.Config) -> SessionState:
    return config.stash[STATE_KEY]


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The Kubernetes cluster under test (`--cluster`), prepared, connected and checked on first
    use: nodes Ready, architectures covered by the images, permission to create namespaces,
    workload images available, metrics API looked for. Test namespaces of this worker are swept
    when the session ends."""
    state = _state(pytestconfig)
    settings = state.settings
    if settings.cluster is None:
        pytest.skip(no_cluster_reason())
    log = make_log(pytestconfig, state)
    try:
        provider = providers.create(settings.cluster, settings.provider_options(), log)
    except providers.ProviderError as error:
        state.write_cluster_error(settings.cluster, str(error))
        pytest.fail(f"kube-alive --cluster={settings.cluster}: {error}", pytrace=False)
    try:
        connected = bring_up(provider, state, log)
    except (ClusterError, providers.ProviderError, KubeconfigError, KubeError) as error:
        state.write_cluster_error(settings.cluster, str(error))
        _undo(provider, state, log)
        pytest.fail(f"kube-alive --cluster={settings.cluster}: {error}", pytrace=False)
    except BaseException:
        # Ctrl-C or SIGTERM while the cluster is being made (kind create, image loads): undo
        # what the provider made so far, e.g. half-created kind nodes, then stop.
        _undo(provider, state, log)
        raise
    log(connected.describe())
    yield connected
    if state.evidence_kept and evidence.claim_once(state.shared_dir, "cluster-logs"):
        # Once per run, while the cluster still exists (the provider may delete it next).
        evidence.export_cluster_logs(provider.export_logs, settings.report_dir, log)
    if not settings.keep_namespaces:
        try:
            namespaces.sweep(connected.kube, naming.run_selector(state.run_id, state.worker), log)
        except KubeError as error:
            log(f"sweeping this worker's namespaces failed: {error}")
    if not state.is_worker:
        # Under xdist no worker knows whether the others are done; tearing down is left to the
        # provider's own tooling there (see the provider's describe()).
        provider.teardown()


def _undo(provider: providers.Provider, state: SessionState, log: Callable[[str], None]) -> None:
    if state.is_worker:
        return
    try:
        provider.teardown()
    except providers.ProviderError as error:
        log(f"undoing what --cluster={provider.name} made failed: {error}")


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for this test, `ka-<run id>-<test name>`, labelled with the run id and
    Pod Security `restricted`, ready for pods (its serviceaccount/default exists); deleted
    afterwards, also when the test fails (kept with --keep-namespaces)."""
    state = _state(request.config)
    name = namespaces.create(
        cluster.kube,
        run_id=state.run_id,
        worker=state.worker,
        test_name=request.node.name,
        nodeid=request.node.nodeid,
    )
    request.node.stash[CONTEXT_KEY] = TestContext(cluster.kube, name)
    try:
        waits.wait_default_service_account(cluster.kube, name, timeout_s=DEFAULT_SERVICE_ACCOUNT_S)
        yield name
    finally:
        if state.settings.keep_namespaces:
            make_log(request.config, state)(f"kept namespace {name} (--keep-namespaces)")
        else:
            namespaces.delete(cluster.kube, name)


def _context(request: pytest.FixtureRequest) -> TestContext:
    context: TestContext = request.node.stash[CONTEXT_KEY]
    return context


@pytest.fixture
def recorder(
    cluster: Cluster, namespace: str, request: pytest.FixtureRequest
) -> Iterator[Recorder]:
    """Records pods, events, ReplicaSets, Deployments and HPAs of the test namespace from before
    the first workload is applied; `mark()` the test's actions on it. Goes into the report."""
    rec = Recorder(cluster.kube, namespace).start()
    _context(request).recorder = rec
    try:
        rec.wait_synced(RECORDER_SYNC_S)
        yield rec
    finally:
        rec.stop()


@pytest.fixture
def figures(namespace: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The test's headline numbers (a dict the test fills in); they go into the report."""
    return _context(request).figures


class Workloads:
    """Applies workload manifests into the test namespace and waits for them."""

    def __init__(self, cluster: Cluster, namespace: str, recorder: Recorder) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.recorder = recorder
        self._mapper = manifests.RestMapper(cluster.kube)

    def apply(
        self,
        app: str,
        *,
        replicas: int | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[JSON]:
        """Apply `manifests/<app>/` (images as the provider wants them, optional overrides)."""
        merged: dict[str, Any] = {key: dict(value) for key, value in (overrides or {}).items()}
        if replicas is not None:
            key = f"Deployment/{app}"
            merged[key] = manifests.deep_merge(
                merged.get(key, {}), {"spec": {"replicas": replicas}}
            )
        self.recorder.mark(f"apply {app}")
        return manifests.apply_app(
            self.cluster.kube,
            app,
            self.namespace,
            rewrite=self.cluster.provider.image_ref,
            overrides=merged,
            mapper=self._mapper,
        )

    def wait_ready(self, name: str, *, timeout_s: float = READY_S) -> JSON:
        """Wait until deployment/`name` is rolled out and every replica is Ready."""
        deployment = waits.wait_deployment_ready(
            self.cluster.kube,
            self.namespace,
            name,
            timeout_s=timeout_s,
            image_hint=self.cluster.image_hint,
        )
        self.recorder.mark(f"{name} ready")
        return deployment

    def deploy(self, app: str, *, timeout_s: float = READY_S, **kwargs: Any) -> JSON:
        """Apply, then wait until Ready; returns the Deployment."""
        self.apply(app, **kwargs)
        return self.wait_ready(app, timeout_s=timeout_s)

    def deployment(self, name: str) -> JSON:
        """GET deployment/`name`."""
        return get_object(self.cluster.kube, DEPLOYMENTS, self.namespace, name)

    def pods(self, app: str) -> list[JSON]:
        """The app's pods that are not terminating, by name."""
        deployment = self.deployment(app)
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        items, _ = list_objects(
            self.cluster.kube, PODS, self.namespace, label_selector=selector_string(labels)
        )
        return sorted(
            (pod for pod in items if not is_terminating(pod)),
            key=lambda pod: str(pod["metadata"]["name"]),
        )


@pytest.fixture
def workloads(cluster: Cluster, namespace: str, recorder: Recorder) -> Workloads:
    """Deploys the scenario's workloads (from `manifests/`) into the test namespace."""
    return Workloads(cluster, namespace, recorder)


@pytest.fixture
def prober(
    cluster: Cluster, namespace: str, workloads: Workloads, request: pytest.FixtureRequest
) -> Prober:
    """The prober workload, deployed and answering through its Service: drives traffic from
    inside the cluster (every probe result goes into the report)."""
    workloads.deploy("prober")
    context = _context(request)
    # Reached through its pod, not its Service: the suite's own path must not depend on the
    # Service routing (EndpointSlices, the service proxy) that the scenarios put to the test.
    pod = name_of(workloads.pods("prober")[0])
    driver = Prober(cluster.kube, namespace, on_result=context.probes.append, pod=pod)
    driver.wait_ready(PROBER_REACHABLE_S)
    return driver

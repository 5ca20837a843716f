"""Load balancing: a Service spreads new connections evenly over every ready replica, on every
node the replicas were spread to.

The prober sends every request on a new TCP connection (a kept-alive connection would stick to
one pod and hide the balancing), from inside the cluster, to the Service's DNS name. The Service
is checked first: a ClusterIP with a virtual IP and no session affinity, so the node's service
proxy picks a replica per connection (a headless Service or client-IP affinity would prove
something else).

How many requests, and how even: with k = 4 replicas and a fair spread, each replica's count is
Binomial(N, 1/4). The claim is that every replica's share lies within D = 4 percentage points of
25 %. For N = 2400 the exact binomial tail gives P(one given replica outside 21..29 %) = 5.6e-6,
so by the union bound P(any of the 4 outside) <= 2.2e-5: a healthy cluster fails this less than
once in 10,000 runs (45,000 on average). (N = 1600 would give 7.9e-4, N = 2000 1.3e-4: not
enough.) The same bound fails a replica taking a third (33 %) or 120/120/80/80 (30/30/20/20 %),
which a chi-square test at p = 0.001 over 400 requests let through. `suite.tests.test_proofs`
recomputes these numbers.

Every node's dataplane, both ways of finding the Service: before the measured run, a client pod
on every schedulable node (a prober pinned there) sends requests through the ClusterIP the kubelet
put into its environment (no DNS) and through the Service's DNS name; from every node, by both
paths, every ready replica must answer and no request may fail. A node whose service proxy does
not route, or a cluster DNS that does not resolve, is named in the failure, from the evidence:
the EndpointSlice read back from the API, and which node and path failed.

What the cluster admitted is read back first: the live Service (ClusterIP, no affinity, traffic
policy Cluster) and the live replicas (no readiness gates, the readiness probe as submitted).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from typing import Any

from suite import admitted, claims, floors, timing
from suite.admitted import ABSENT
from suite.behaviours.load_balancing import proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    JSON,
    NODES,
    PODS,
    SERVICES,
    KubeError,
    get_object,
    is_pod_ready,
    list_objects,
    name_of,
)
from suite.recorder import Recorder
from suite.stats import chi_square_uniform
from suite.traffic import ProbeError, Prober, ProbeRequest, ProbeResult
from suite.waiting import Done, Pending, Verdict
from suite.waits import wait_pods

APP = "getip"
REPLICAS = 4
#: Requests and the per-replica share bound (percentage points around 100 / REPLICAS), derived
#: in the module docstring: a fair spread fails with probability below 1e-4.
REQUESTS = 2400
SHARE_BOUND_PP = 4.0
#: The healthy-cluster failure probability the two numbers above are chosen for.
FALSE_ALARM_AT_MOST = 1e-4
CONCURRENCY = 8
#: Per request (prober timeout): getip answers in milliseconds; a timeout is a failure.
REQUEST_TIMEOUT_S = 2.0
#: Upper bound of the probe run: 2400 requests at concurrency 8 take seconds to tens of seconds on
#: a busy 2-core machine; this only stops a hung run.
PROBE_BOUND_S = 180.0
#: Ready pods reach the Service's rules after the EndpointSlice update and the next kube-proxy
#: sync (at most once a second): 30 s covers a busy machine; the measurement starts after.
CONVERGE_S = 30.0
#: pytest-timeout backstop behind the deadlines above (suite/plugin.py): the workload becomes
#: Ready (120 s, suite/fixtures.py READY_S), converges, and the probe run ends, plus a margin.
BACKSTOP_S = 120.0 + CONVERGE_S + PROBE_BOUND_S + 60.0
#: manifests/getip readinessProbe periodSeconds; kube-proxy's minSyncPeriod (its 1 s default).
READINESS_PERIOD_S = 2
PROXY_SYNC_S = timing.PROXY_SYNC_S
#: Physical floor (suite.floors): the replicas Ready and in the node's rules. The requests
#: themselves (2400 at concurrency 8, a few seconds) and pod start come on top: the multiple in the
#: report is mostly those.
FLOOR = Floor.of(
    ("getip Ready (one readiness period)", READINESS_PERIOD_S),
    ("endpoints reach kube-proxy (one sync)", PROXY_SYNC_S),
)

#: Per node and per path (ClusterIP from the environment, DNS name): requests from that node's
#: client. A fair spread leaves a given replica out of 120 with probability 0.75^120 = 1e-15, so
#: "every replica answered from every node by both paths" cannot fail on a healthy cluster.
PATH_REQUESTS = 120
PATHS = ("service-env", "dns")
PATH_WORDS = {"service-env": "the ClusterIP (no DNS)", "dns": "the DNS name"}
#: One try of one path lasts at most this long (120 requests take well under a second when the
#: path works); a path is tried again until it passes or CONVERGE_S is over.
ROUND_S = 5.0
#: The node clients (prober pods pinned to a node) are Ready: pod start + one readiness period
#: of the prober (2 s); 60 s covers a busy machine.
NODE_CLIENTS_READY_S = 60.0
NODE_CLIENT_NAME = "prober-node"
#: What the scenario depends on, read back from the live objects (suite.admitted).
SERVICE_ADMITTED: dict[str, Any] = {
    "spec": {
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "sessionAffinityConfig": ABSENT,
        "internalTrafficPolicy": "Cluster",
        "ports": [{"name": "http", "port": 80}],
    }
}
POD_ADMITTED: dict[str, Any] = {
    "spec": {
        "readinessGates": ABSENT,
        "containers": [
            {
                "name": APP,
                "readinessProbe": {"periodSeconds": READINESS_PERIOD_S},
            }
        ],
    }
}


def _schedulable_nodes(cluster: Cluster) -> list[str]:
    """Ready nodes without a NoSchedule/NoExecute taint (where the replicas may land)."""
    items, _ = list_objects(cluster.kube, NODES, None)
    names = []
    for node in items:
        taints = (node.get("spec") or {}).get("taints") or []
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (node.get("status") or {}).get("conditions") or []
        )
        blocked = any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints)
        if ready and not blocked and not (node.get("spec") or {}).get("unschedulable"):
            names.append(name_of(node))
    return sorted(names)


def _create_node_clients(cluster: Cluster, namespace: str, nodes: Sequence[str]) -> dict[str, str]:
    """One prober pod pinned to each node (the prober's own pod template; a label its Service
    does not select), created after Service getip so its environment holds the ClusterIP;
    returns node -> pod."""
    template = get_object(cluster.kube, DEPLOYMENTS, namespace, "prober")["spec"]["template"]
    labels = {"app.kubernetes.io/name": NODE_CLIENT_NAME, "app.kubernetes.io/part-of": "kube-alive"}
    clients = {}
    for number, node in enumerate(nodes):
        name = f"{NODE_CLIENT_NAME}-{number}"
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {**template["spec"], "nodeName": node},
        }
        cluster.kube.request("POST", PODS.path(namespace), body=body)
        clients[node] = name
    return clients


def _wait_node_clients(cluster: Cluster, namespace: str, clients: dict[str, str]) -> dict[str, str]:
    """Wait until every node client is Ready; returns them."""
    nodes = sorted(clients)

    def ready(pods: list[JSON]) -> Verdict:
        up = sorted(name_of(pod) for pod in pods if is_pod_ready(pod))
        if len(up) == len(clients):
            return Done(up)
        return Pending(f"{len(up)}/{len(clients)} Ready: {up}")

    wait_pods(
        cluster.kube,
        namespace,
        f"app.kubernetes.io/name={NODE_CLIENT_NAME}",
        ready,
        timeout_s=NODE_CLIENTS_READY_S,
        what="the node clients (a prober pinned to each schedulable node)",
        expected=f"{len(clients)} Ready, one on each of {list(nodes)}",
    )
    return clients


def _ready_endpoints(cluster: Cluster, namespace: str) -> list[str]:
    """The pods the Service's EndpointSlices list as ready (what the service proxy is given)."""
    slices, _ = list_objects(
        cluster.kube, ENDPOINTSLICES, namespace, label_selector=f"kubernetes.io/service-name={APP}"
    )
    return sorted(
        str((endpoint.get("targetRef") or {}).get("name") or endpoint.get("addresses"))
        for item in slices
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
    )


def _path_problem(result: ProbeResult, ready: Sequence[str], cluster_ip: str) -> str | None:
    """What is wrong with one node's requests by one path (None: every replica answered, none
    failed, and the ClusterIP path really went to the ClusterIP)."""
    if result.errors and not result.answers:
        return f"no answers: {result.errors[-1]}"
    silent = sorted(set(ready) - set(result.by_pod()))
    if result.failed or silent:
        return result.describe() + (f"; never answered: {silent}" if silent else "")
    addresses = {str(s.get("address", "")).rsplit(":", 1)[0] for s in result.summaries}
    if result.request.via == "service-env" and addresses != {cluster_ip}:
        return f"sent to {sorted(addresses)}, not the Service's ClusterIP {cluster_ip}"
    return None


def _diagnosis(
    failing: Mapping[tuple[str, str], str],
    nodes: Sequence[str],
    endpoints: Sequence[str],
    ready: Sequence[str],
    cluster_ip: str,
) -> str:
    """Which part the evidence points at: the EndpointSlice (what the proxy is given), the node
    whose ClusterIP path fails (its service proxy), or the DNS path alone (cluster DNS)."""
    missing = sorted(set(ready) - set(endpoints))
    if missing:
        return (
            f"the Service's EndpointSlice lists {len(endpoints)} ready endpoints, not the "
            f"{len(ready)} ready replicas (missing {missing}): the EndpointSlice controller "
            "(kube-controller-manager) did not publish them"
        )
    proxy_nodes = sorted({node for node, path in failing if path == "service-env"})
    dns_only = sorted({node for node, path in failing if path == "dns"} - set(proxy_nodes))
    words = []
    if proxy_nodes:
        where = "every node" if len(proxy_nodes) == len(nodes) > 1 else ", ".join(proxy_nodes)
        words.append(
            f"the EndpointSlice lists all {len(endpoints)} ready replicas, yet connections to "
            f"the ClusterIP {cluster_ip} from {where} did not reach them: the service proxy "
            f"(kube-proxy) on {where} does not route Service {APP}"
        )
    if dns_only:
        words.append(
            f"from {', '.join(dns_only)} the ClusterIP path worked but the DNS name did not: "
            "cluster DNS (CoreDNS) does not answer for the Service"
        )
    return "; ".join(words)


def _through_every_node(
    cluster: Cluster, namespace: str, clients: Mapping[str, str], ready: Sequence[str], ip: str
) -> dict[str, dict[str, Any]]:
    """From every node's client, by both paths, until every replica answers with no failure
    (the rules reach each node's proxy a moment after the pods are Ready), for CONVERGE_S;
    returns per node and path what the last round saw, and fails naming what the evidence
    points at."""
    started = time.monotonic()
    drivers = {node: Prober(cluster.kube, namespace, pod=pod) for node, pod in clients.items()}

    def one(node: str, via: str, bound_s: float) -> ProbeResult:
        request = ProbeRequest(
            url=f"http://{APP}/",
            count=PATH_REQUESTS,
            concurrency=CONCURRENCY,
            duration_s=bound_s,
            timeout_s=REQUEST_TIMEOUT_S,
            via=via,
        )
        try:
            return drivers[node].run(request)
        except (ProbeError, KubeError) as error:  # one node's failure is evidence, not a crash
            return ProbeResult(request, errors=[str(error)])

    def until_it_passes(node: str, via: str) -> tuple[ProbeResult, str | None]:
        # Each path on its own: one that passed stays passed (its rules were there), and a slow
        # failing one (DNS timing out) never holds back the others' retries.
        while True:
            left = CONVERGE_S - (time.monotonic() - started)
            result = one(node, via, max(1.0, min(ROUND_S, left)))
            problem = _path_problem(result, ready, ip)
            if problem is None or time.monotonic() - started >= CONVERGE_S:
                return result, problem

    keys = list(product(drivers, PATHS))
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        outcomes = dict(zip(keys, pool.map(lambda key: until_it_passes(*key), keys), strict=True))
    results = {key: result for key, (result, _) in outcomes.items()}
    failing = {key: problem for key, (_, problem) in outcomes.items() if problem is not None}
    seen = {
        node: {
            via: {
                "answered": len(results[node, via].ok),
                "failed": len(results[node, via].failed),
                "replicas_answering": len(results[node, via].by_pod()),
            }
            for via in PATHS
        }
        for node in drivers
    }
    if failing:
        endpoints = _ready_endpoints(cluster, namespace)
        lines = "; ".join(
            f"from {node} via {PATH_WORDS[via]}: {problem}"
            for (node, via), problem in sorted(failing.items())
        )
        raise AssertionError(
            f"Service {APP} did not answer from every ready replica on every node's path after "
            f"{time.monotonic() - started:.0f}s: "
            + _diagnosis(failing, list(drivers), endpoints, ready, ip)
            + f" ({lines}; look at: kubectl -n {namespace} get endpointslices,pods -o wide)"
        )
    return seen


def test_service_spreads_new_connections_over_every_replica(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """2400 new-connection requests through Service getip (a ClusterIP without session affinity)
    are all answered, every ready replica answers within 4 percentage points of a fair 25 %, and
    the replicas on every node they were spread to answer."""
    figures[floors.FIGURE_KEY] = FLOOR.to_dict()
    workloads.apply(APP, replicas=REPLICAS)
    # The node clients start while the replicas do: created after Service getip (so their
    # environment holds its ClusterIP), waited for after the replicas are Ready.
    schedulable = _schedulable_nodes(cluster)
    created = _create_node_clients(cluster, namespace, schedulable)
    workloads.wait_ready(APP)
    service = get_object(cluster.kube, SERVICES, namespace, APP)
    pods = [pod for pod in workloads.pods(APP) if is_pod_ready(pod)]
    ready = sorted(name_of(pod) for pod in pods)
    node_of_pod = {name_of(pod): str(pod["spec"].get("nodeName") or "") for pod in pods}
    figures.update(node_of_pod=node_of_pod)
    assert len(ready) == REPLICAS, f"expected {REPLICAS} ready getip pods, found {ready}"
    clients = _wait_node_clients(cluster, namespace, created)
    cluster_ip = str((service.get("spec") or {}).get("clusterIP") or "")

    with claims.behaviour():
        rewritten = admitted.problems(service, SERVICE_ADMITTED, kind="service")
        rewritten += admitted.all_problems(pods, POD_ADMITTED, kind="pod")
        assert not rewritten, admitted.rewritten(rewritten, f"Service {APP} and its replicas")
        problems = proofs.service_problems(service)
        assert not problems, "; ".join(problems) + " (manifests/getip/service.yaml)"
        spread = proofs.spread_problem(node_of_pod, len(schedulable))
        assert spread is None, spread
        converged = time.monotonic()
        figures.update(paths=_through_every_node(cluster, namespace, clients, ready, cluster_ip))
        figures.update(service_converged_s=round(time.monotonic() - converged, 1))
    recorder.mark("Service converged")
    recorder.mark("traffic start")
    with claims.behaviour():
        result = prober.run(
            ProbeRequest(
                url=f"http://{APP}/",
                count=REQUESTS,
                concurrency=CONCURRENCY,
                duration_s=PROBE_BOUND_S,
                timeout_s=REQUEST_TIMEOUT_S,
            ),
            label=APP,
        )
    recorder.mark("traffic end")
    by_pod = result.by_pod()
    by_node: Counter[str] = Counter()
    for pod, count in by_pod.items():
        by_node[node_of_pod.get(pod, "?")] += count
    total = max(1, len(result.ok))
    figures.update(
        replicas=REPLICAS,
        requests=result.sent,
        answered=len(result.ok),
        failed=len(result.failed),
        by_pod=dict(sorted(by_pod.items())),
        share_pct={pod: round(100.0 * by_pod.get(pod, 0) / total, 1) for pod in ready},
        share_bound_pp=SHARE_BOUND_PP,
        by_node=dict(sorted(by_node.items())),
        schedulable_nodes=len(schedulable),
    )
    # Reported, not asserted: the share bound below is the stated claim.
    test = chi_square_uniform([by_pod.get(pod, 0) for pod in ready])
    figures.update(chi_square=round(test.statistic, 3), p_value=round(test.p_value, 4))

    with claims.behaviour():
        if result.failed:
            endpoints = _ready_endpoints(cluster, namespace)
            evidence = (
                f"the EndpointSlice now lists {len(endpoints)} of {REPLICAS} replicas ready"
                if sorted(endpoints) != ready
                else "every replica stayed Ready in the EndpointSlice, so the requests were lost "
                "between the service proxy (kube-proxy) and the pods"
            )
            raise AssertionError(
                f"{len(result.failed)} of {result.sent} requests through Service {APP} were not "
                f"answered ({result.describe()}): {evidence}"
            )
        assert result.sent == REQUESTS, (
            f"the prober sent {result.sent} of {REQUESTS} requests to http://{APP}/ "
            f"({result.describe()})"
        )
        strangers = sorted(set(by_pod) - set(ready))
        assert not strangers, f"answers from pods that are not ready {APP} replicas: {strangers}"
        silent = sorted(set(ready) - set(by_pod))
        assert not silent, (
            f"{len(silent)} of {REPLICAS} ready replicas never answered: {silent}; answers per "
            f"pod: {dict(by_pod)}; the EndpointSlice lists {_ready_endpoints(cluster, namespace)}"
        )
        nodes = proofs.node_problems(node_of_pod, by_pod)
        assert not nodes, "; ".join(nodes) + f"; answers per node: {dict(by_node)}"
        shares = proofs.share_problems(by_pod, ready, SHARE_BOUND_PP)
        assert not shares, (
            f"the Service's spread over {REPLICAS} replicas is uneven: " + "; ".join(shares) + " "
            f"(answers per pod {dict(by_pod)}; every replica answered, so the per-connection "
            "choice of the service proxy (kube-proxy) is skewed; a fair spread fails this bound "
            f"with probability < {FALSE_ALARM_AT_MOST:g})"
        )

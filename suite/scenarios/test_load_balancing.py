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
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from suite import floors, proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import NODES, SERVICES, get_object, is_pod_ready, list_objects, name_of
from suite.recorder import Recorder
from suite.stats import chi_square_uniform
from suite.traffic import Prober, ProbeRequest

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
PROXY_SYNC_S = 1
#: Physical floor (suite.floors): the replicas Ready and in the node's rules. The requests
#: themselves (2400 at concurrency 8, a few seconds) and pod start come on top: the multiple in the
#: report is mostly those.
FLOOR = Floor.of(
    ("getip Ready (one readiness period)", READINESS_PERIOD_S),
    ("endpoints reach kube-proxy (one sync)", PROXY_SYNC_S),
)

SERVICE_HINT = (
    "no answer through a Service usually means kube-proxy (or the cluster's service proxy) is "
    "not running, or cluster DNS does not resolve the Service name"
)


def _schedulable_nodes(cluster: Cluster) -> int:
    """Ready nodes without a NoSchedule/NoExecute taint (where the replicas may land)."""
    items, _ = list_objects(cluster.kube, NODES, None)
    count = 0
    for node in items:
        taints = (node.get("spec") or {}).get("taints") or []
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (node.get("status") or {}).get("conditions") or []
        )
        blocked = any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints)
        count += ready and not blocked and not (node.get("spec") or {}).get("unschedulable")
    return count


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
    workloads.deploy(APP, replicas=REPLICAS)
    service = get_object(cluster.kube, SERVICES, namespace, APP)
    problems = proofs.service_problems(service)
    assert not problems, "; ".join(problems) + " (manifests/getip/service.yaml)"
    pods = [pod for pod in workloads.pods(APP) if is_pod_ready(pod)]
    ready = sorted(name_of(pod) for pod in pods)
    node_of_pod = {name_of(pod): str(pod["spec"].get("nodeName") or "") for pod in pods}
    figures.update(node_of_pod=node_of_pod)
    assert len(ready) == REPLICAS, f"expected {REPLICAS} ready getip pods, found {ready}"
    schedulable = _schedulable_nodes(cluster)
    spread = proofs.spread_problem(node_of_pod, schedulable)
    assert spread is None, spread

    converged_s = prober.converge(f"http://{APP}/", ready, timeout_s=CONVERGE_S)
    recorder.mark("Service converged")
    recorder.mark("traffic start")
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
        schedulable_nodes=schedulable,
        service_converged_s=round(converged_s, 1),
    )

    assert not result.failed, (
        f"{len(result.failed)} of {result.sent} requests through Service {APP} were not "
        f"answered ({result.describe()}); {SERVICE_HINT}"
    )
    assert result.sent == REQUESTS, (
        f"the prober sent {result.sent} of {REQUESTS} requests to http://{APP}/ "
        f"({result.describe()})"
    )
    strangers = sorted(set(by_pod) - set(ready))
    assert not strangers, f"answers from pods that are not ready {APP} replicas: {strangers}"
    silent = sorted(set(ready) - set(by_pod))
    assert not silent, (
        f"{len(silent)} of {REPLICAS} ready replicas never answered: {silent}; answers per pod: "
        f"{dict(by_pod)} (does the Service select every replica? is kube-proxy balancing?)"
    )
    nodes = proofs.node_problems(node_of_pod, by_pod)
    assert not nodes, "; ".join(nodes) + f"; answers per node: {dict(by_node)}"

    # Reported, not asserted: the share bound above is the stated claim.
    test = chi_square_uniform([by_pod[pod] for pod in ready])
    figures.update(chi_square=round(test.statistic, 3), p_value=round(test.p_value, 4))
    shares = proofs.share_problems(by_pod, ready, SHARE_BOUND_PP)
    assert not shares, (
        f"the Service's spread over {REPLICAS} replicas is uneven: " + "; ".join(shares) + " "
        f"(answers per pod {dict(by_pod)}; a fair spread fails this bound with probability < "
        f"{FALSE_ALARM_AT_MOST:g}; is kube-proxy picking endpoints at random per connection?)"
    )

"""Load balancing: a Service spreads new connections evenly over every ready replica.

The prober sends every request on a new TCP connection (a kept-alive connection would stick to
one pod and hide the balancing), from inside the cluster, to the Service's DNS name.
"""

from __future__ import annotations

from typing import Any

from suite.fixtures import Workloads
from suite.kube import is_pod_ready, name_of
from suite.recorder import Recorder
from suite.stats import chi_square_uniform
from suite.traffic import Prober, ProbeRequest

REPLICAS = 4
#: 100 answers expected per replica: enough for the chi-square approximation (it wants at least
#: 5 per cell) and to make a silent replica impossible by chance (0.75^400 ~ 1e-50).
REQUESTS = 400
CONCURRENCY = 8
#: Per request (prober timeout): getip answers in milliseconds; a timeout is a failure.
REQUEST_TIMEOUT_S = 2.0
#: Upper bound of the probe run: 400 requests at concurrency 8 take seconds, this only stops a
#: hung run.
PROBE_BOUND_S = 120.0
#: Uniformity is rejected below this p-value, so a healthy spread fails about 1 run in 1000.
SIGNIFICANCE = 0.001
#: Ready pods reach the Service's rules after the EndpointSlice update and the next kube-proxy
#: sync (at most once a second): 30 s covers a busy machine; the measurement starts after.
CONVERGE_S = 30.0
#: pytest-timeout backstop behind the deadlines above (suite/plugin.py): the workload becomes
#: Ready (120 s, suite/fixtures.py READY_S), converges, and the probe run ends, plus a margin.
BACKSTOP_S = 120.0 + CONVERGE_S + PROBE_BOUND_S + 60.0

SERVICE_HINT = (
    "no answer through a Service usually means kube-proxy (or the cluster's service proxy) is "
    "not running, or cluster DNS does not resolve the Service name"
)


def test_service_spreads_new_connections_over_every_replica(
    workloads: Workloads, prober: Prober, recorder: Recorder, figures: dict[str, Any]
) -> None:
    """400 new-connection requests through Service getip are all answered, every ready replica
    answers some, and the counts per replica are consistent with a uniform spread."""
    workloads.deploy("getip", replicas=REPLICAS)
    ready = sorted(name_of(pod) for pod in workloads.pods("getip") if is_pod_ready(pod))
    assert len(ready) == REPLICAS, f"expected {REPLICAS} ready getip pods, found {ready}"

    converged_s = prober.converge("http://getip/", ready, timeout_s=CONVERGE_S)
    recorder.mark("Service converged")
    recorder.mark("traffic start")
    result = prober.run(
        ProbeRequest(
            url="http://getip/",
            count=REQUESTS,
            concurrency=CONCURRENCY,
            duration_s=PROBE_BOUND_S,
            timeout_s=REQUEST_TIMEOUT_S,
        ),
        label="getip",
    )
    recorder.mark("traffic end")
    by_pod = result.by_pod()
    figures.update(
        replicas=REPLICAS,
        requests=result.sent,
        answered=len(result.ok),
        failed=len(result.failed),
        by_pod=dict(sorted(by_pod.items())),
        service_converged_s=round(converged_s, 1),
    )

    assert not result.failed, (
        f"{len(result.failed)} of {result.sent} requests through Service getip were not answered "
        f"({result.describe()}); {SERVICE_HINT}"
    )
    assert result.sent == REQUESTS, (
        f"the prober sent {result.sent} of {REQUESTS} requests to http://getip/ "
        f"({result.describe()})"
    )
    strangers = sorted(set(by_pod) - set(ready))
    assert not strangers, f"answers from pods that are not ready getip replicas: {strangers}"
    silent = sorted(set(ready) - set(by_pod))
    assert not silent, (
        f"{len(silent)} of {REPLICAS} ready replicas never answered: {silent}; answers per pod: "
        f"{dict(by_pod)} (does the Service select every replica? is kube-proxy balancing?)"
    )

    test = chi_square_uniform([by_pod[pod] for pod in ready])
    figures.update(chi_square=round(test.statistic, 3), p_value=round(test.p_value, 4))
    assert test.consistent_with_uniform(SIGNIFICANCE), (
        f"answers per replica {dict(by_pod)} are not consistent with a uniform spread: "
        f"chi-square {test.statistic:.1f} with {test.df} degrees of freedom, "
        f"p = {test.p_value:.2g} < {SIGNIFICANCE}"
    )

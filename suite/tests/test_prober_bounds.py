"""The prober's server-side bounds (workloads/prober.py) fit what the scenarios ask of it, so a
scenario never meets a 400 or 429 it did not cause."""

import importlib

import pytest

from suite import behaviours, traffic
from suite.traffic import ProbeRequest
from workloads import prober

#: Every behaviour's scenario module (the registry's), by its import name.
SCENARIOS = [f"suite.behaviours.{b.package}.test_{b.package}" for b in behaviours.ALL]


def fits(request: ProbeRequest, what: str) -> None:
    assert 1 <= request.concurrency <= prober.MAX_CONCURRENCY, what
    assert 0 < request.duration_s <= prober.MAX_DURATION_S, what
    assert 1 <= request.count <= prober.MAX_COUNT, what
    assert 0 < request.timeout_s <= prober.MAX_TIMEOUT_S, what
    assert 0 <= request.interval_ms <= prober.MAX_INTERVAL_MS, what
    assert request.url.startswith("http://"), what
    host = request.url.removeprefix("http://").split("/", 1)[0].split(":", 1)[0]
    prober.service_name(host, "ns", "cluster.local")  # a Service of the namespace: no 400


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_request_a_scenario_states_fits_the_probers_bounds(name):
    module = importlib.import_module(name)
    stated = [value for value in vars(module).values() if isinstance(value, ProbeRequest)]
    for request in stated:
        # Background traffic goes out in chunks of the module's *_CHUNK_S, "as many as fit".
        chunks = [v for k, v in vars(module).items() if k.endswith("_CHUNK_S")]
        duration = min([request.duration_s, *chunks])
        fits(
            ProbeRequest(
                url=request.url,
                count=traffic._UNBOUNDED_COUNT,
                concurrency=request.concurrency,
                duration_s=duration,
                interval_ms=request.interval_ms,
                timeout_s=request.timeout_s,
            ),
            f"{name}: {request}",
        )
    if name == "test_load_balancing":
        fits(
            ProbeRequest(
                url="http://getip/",
                count=module.REQUESTS,
                concurrency=module.CONCURRENCY,
                duration_s=module.PROBE_BOUND_S,
                timeout_s=module.REQUEST_TIMEOUT_S,
            ),
            "the load-balancing run",
        )


def test_the_convergence_batches_fit():
    # suite/traffic.py Prober.converge: batches at concurrency 4 for at most 30 s.
    fits(ProbeRequest(url="http://getip/", count=40, concurrency=4, duration_s=30.0), "converge")


def test_one_test_never_needs_more_runs_than_the_prober_admits():
    # A scenario has at most one background run and one foreground probe at a time.
    widest = max(prober.MAX_CONCURRENCY, 4) + 4
    assert widest <= prober.MAX_TOTAL_CONCURRENCY
    assert prober.MAX_RUNS >= 2

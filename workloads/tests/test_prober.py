"""prober: validation, one new connection per request, bounds, errors, streaming, disconnects."""

from __future__ import annotations

import json
import time
from typing import Any

import flask
import pytest

from workloads import prober
from workloads.tests.conftest import LocalServer, Responder, wait_until


def loopback(name: str, port: int) -> tuple[str, int]:
    """Every Service name resolves to this machine (where the tests' servers listen)."""
    return "127.0.0.1", port


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    return prober.create_app(resolve=loopback).test_client()


def svc(server: LocalServer, path: str = "") -> str:
    """The local server under a Service name, as the prober accepts it."""
    return f"http://getip:{server.port}{path}"


def run_probe(client: flask.testing.FlaskClient, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/probe", json=body, buffered=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_every_request_opens_a_new_connection_and_asks_to_close_it(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    lines = run_probe(client, url=svc(local_server, "/who?x=1"), count=30, concurrency=3)
    records, summary = lines[:-1], lines[-1]["summary"]
    assert len(records) == 30
    assert len(local_server.requests) == 30
    assert len(local_server.connections) == 30
    assert len(local_server.client_ports) == 30
    assert {r[1] for r in local_server.requests} == {"/who?x=1"}
    assert {r[3] for r in local_server.requests} == {"close"}
    assert sorted(r["seq"] for r in records) == list(range(30))
    assert summary["sent"] == 30
    assert summary["ok"] == 30
    assert summary["failed"] == 0
    assert summary["by_pod"] == {"pod-0": 10, "pod-1": 10, "pod-2": 10}
    assert summary["by_version"] == {"v1": 30}
    assert summary["prober"] == {"pod": "test-pod-0", "version": "v9"}


def test_a_record_says_when_what_and_who(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    before = time.time()
    record = run_probe(client, url=svc(local_server), count=1)[0]
    assert set(record) == {"seq", "start", "end", "status", "ok", "pod", "version", "error"}
    assert before <= record["start"] <= record["end"] <= time.time()
    assert record["status"] == 200
    assert record["ok"] is True
    assert record["pod"] == "pod-0"
    assert record["version"] == "v1"
    assert record["error"] is None


def test_the_run_stops_at_the_duration_before_the_count(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    started = time.monotonic()
    lines = run_probe(
        client,
        url=svc(local_server),
        count=prober.MAX_COUNT,
        duration_s=0.3,
        interval_ms=50,
        concurrency=2,
    )
    elapsed = time.monotonic() - started
    summary = lines[-1]["summary"]
    assert 0.3 <= elapsed < 2.0
    # Two workers, one request per ~50 ms each, for 0.3 s.
    assert 2 <= summary["sent"] <= 20
    assert summary["sent"] == len(lines) - 1


def test_the_run_stops_at_the_count(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    lines = run_probe(client, url=svc(local_server), count=7, concurrency=4, duration_s=30)
    assert lines[-1]["summary"]["sent"] == 7
    assert len(local_server.requests) == 7


def test_refused_connections_are_recorded_as_errors(
    client: flask.testing.FlaskClient, refused_url: str
) -> None:
    port = refused_url.rstrip("/").rsplit(":", 1)[1]
    lines = run_probe(client, url=f"http://closed:{port}/", count=3)
    records, summary = lines[:-1], lines[-1]["summary"]
    assert len(records) == 3
    for record in records:
        assert record["ok"] is False
        assert record["status"] is None
        assert record["pod"] is None
        assert record["error"].startswith("ConnectionRefusedError")
    assert summary["failed"] == 3
    assert summary["ok"] == 0
    assert summary["errors"] == {"ConnectionRefusedError": 3}


class TestNonSuccess:
    @pytest.fixture
    def responder(self) -> Responder:
        def sick(method: str, path: str, n: int) -> tuple[int, bytes]:
            if n % 2:
                return 503, json.dumps({"pod": "sick", "version": "v1"}).encode()
            return 200, b"not json"

        return sick

    def test_non_2xx_is_not_ok_and_a_non_json_answer_has_no_pod(
        self, client: flask.testing.FlaskClient, local_server: LocalServer
    ) -> None:
        records = run_probe(client, url=svc(local_server), count=2)[:-1]
        by_seq = {r["seq"]: r for r in records}
        assert (by_seq[0]["status"], by_seq[0]["ok"], by_seq[0]["pod"]) == (200, True, None)
        assert (by_seq[1]["status"], by_seq[1]["ok"], by_seq[1]["pod"]) == (503, False, "sick")
        assert by_seq[1]["error"] is None


class TestSlowServer:
    @pytest.fixture
    def responder(self) -> Responder:
        def slow(method: str, path: str, n: int) -> tuple[int, bytes]:
            time.sleep(0.5)
            return 200, b"{}"

        return slow

    def test_a_request_slower_than_timeout_s_is_a_timeout(
        self, client: flask.testing.FlaskClient, local_server: LocalServer
    ) -> None:
        record = run_probe(client, url=svc(local_server), count=1, timeout_s=0.1)[0]
        assert record["error"] == "timeout"
        assert record["ok"] is False


def test_lines_are_streamed_and_a_disconnect_stops_the_run(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    response = client.post(
        "/probe", json={"url": svc(local_server), "count": 20_000, "interval_ms": 20}
    )
    lines = iter(response.response)
    first = json.loads(next(lines))
    assert first["seq"] == 0
    response.close()  # the client goes away
    assert wait_until(lambda: _stable(local_server), timeout_s=3)
    assert len(local_server.requests) < 100


def test_a_run_with_an_id_is_read_back_whole_after_its_stream_broke(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    response = client.post(
        "/probe",
        json={"url": svc(local_server), "count": 20_000, "interval_ms": 20, "run": "ab12-3"},
    )
    lines = iter(response.response)
    streamed = [json.loads(next(lines)) for _ in range(2)]
    response.close()  # the stream breaks on the way: the run stops, its records stay
    read = client.get("/runs/ab12-3")
    assert read.status_code == 200, read.get_data(as_text=True)
    assert read.json is not None
    records, summary = read.json["records"], read.json["summary"]
    assert {r["seq"] for r in streamed} <= {r["seq"] for r in records}
    assert len(records) >= 2
    # Every request the prober sent is in the read-back, and nothing else.
    assert len(records) == len(local_server.requests)
    assert summary["sent"] == len(records)
    assert summary["ok"] == sum(r["ok"] for r in records)
    assert summary["read_back"] is True


def test_a_finished_run_reads_back_what_it_streamed(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    lines = run_probe(client, url=svc(local_server), count=5, concurrency=2, run="x-0")
    read = client.get("/runs/x-0")
    assert read.status_code == 200
    assert read.json is not None
    assert sorted(r["seq"] for r in read.json["records"]) == sorted(r["seq"] for r in lines[:-1])
    assert read.json["summary"]["sent"] == lines[-1]["summary"]["sent"] == 5


def test_an_unknown_run_is_404_and_a_run_without_an_id_is_not_kept(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    run_probe(client, url=svc(local_server), count=1)
    response = client.get("/runs/nope-1")
    assert response.status_code == 404
    assert response.json is not None
    assert "no run 'nope-1'" in response.json["reason"]


def test_only_the_last_runs_are_kept() -> None:
    kept = prober.KeptRuns(keep=2)
    runs = [
        prober._Run(prober.ProbeSpec.parse({"url": "http://getip", "run": f"r-{n}"}))
        for n in range(3)
    ]
    for run in runs:
        kept.add(run)
    assert kept.get("r-0") is None
    assert kept.get("r-1") is runs[1]
    assert kept.get("r-2") is runs[2]


def _stable(server: LocalServer) -> bool:
    before = len(server.requests)
    time.sleep(0.2)
    return len(server.requests) == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "url is required"),
        ({"url": 5}, "url is required"),
        ({"url": "https://x/"}, "must start with http://"),
        ({"url": "ftp://x/"}, "must start with http://"),
        ({"url": "http:///path"}, "url has no host"),
        ({"url": "http://x:99999/"}, "not a valid URL"),
        ({"url": "http://u:p@x/"}, "credentials"),
        ({"url": "http://x/", "count": 0}, "count must be an integer from 1 to 20000"),
        ({"url": "http://x/", "count": 20_001}, "count must be"),
        ({"url": "http://x/", "count": "5"}, "count must be"),
        ({"url": "http://x/", "count": 1.5}, "count must be"),
        ({"url": "http://x/", "count": True}, "count must be"),
        ({"url": "http://x/", "concurrency": 9}, "concurrency must be an integer from 1 to 8"),
        ({"url": "http://x/", "duration_s": 0}, "duration_s must be a number above 0"),
        (
            {"url": "http://x/", "duration_s": 181},
            "duration_s must be a number above 0 and at most 180",
        ),
        ({"url": "http://x/", "interval_ms": -1}, "interval_ms must be an integer from 0"),
        ({"url": "http://x/", "interval_ms": 10_001}, "interval_ms must be"),
        ({"url": "http://x/", "timeout_s": 0}, "timeout_s must be a number above 0"),
        (
            {"url": "http://x/", "timeout_s": 11},
            "timeout_s must be a number above 0 and at most 10",
        ),
        ({"url": "http://x/", "timeout_s": "2"}, "timeout_s must be"),
        ({"url": "http://x/", "extra": 1}, "unknown field(s): extra"),
        ({"url": "http://x/", "run": "Upper"}, "run must be a lower-case id"),
        ({"url": "http://x/", "run": 5}, "run must be a lower-case id"),
        ({"url": "http://x/", "run": "a/../b"}, "run must be a lower-case id"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_input_is_400_with_the_reason(
    client: flask.testing.FlaskClient, body: object, reason: str
) -> None:
    response = client.post("/probe", json=body)
    assert response.status_code == 400
    assert response.json is not None
    assert reason in response.json["reason"]
    assert response.json["pod"] == "test-pod-0"


def test_a_body_that_is_not_json_is_400(client: flask.testing.FlaskClient) -> None:
    response = client.post("/probe", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json is not None
    assert "JSON object" in response.json["reason"]


def test_defaults() -> None:
    spec = prober.ProbeSpec.parse({"url": "http://getip"})
    assert (spec.host, spec.port, spec.target) == ("getip", 80, "/")
    assert (spec.count, spec.concurrency, spec.duration_s) == (100, 1, 60.0)
    assert (spec.interval_ms, spec.timeout_s) == (0, 2.0)


def test_probe_is_post_only(client: flask.testing.FlaskClient) -> None:
    assert client.get("/probe").status_code == 405


# Targets: Services of the prober's own namespace, nothing else.

NAMESPACE = "ka-run1-lb"


@pytest.fixture
def in_cluster() -> flask.testing.FlaskClient:
    """The prober as deployed: its namespace known, the default resolver."""
    resolve = prober.in_cluster_resolver(NAMESPACE, "cluster.local")
    return prober.create_app(resolve=resolve).test_client()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/", "is not a Service name"),
        ("http://[::1]/", "is not a Service name"),
        ("http://10.96.0.1/", "is not a Service name"),
        ("http://0x7f000001/", "is not a Service name"),
        ("http://2130706433/", "is not a Service name"),
        ("http://127.1/", "is not a Service name"),
        ("http://0177.0.0.1/", "is not a Service name"),
        ("http://localhost:8080/healthz", "is not a target (the prober or this machine)"),
        ("http://prober/probe", "is not a target (the prober or this machine)"),
        (f"http://prober.{NAMESPACE}.svc/", "is not a target"),
        ("http://kubernetes.default/", "is outside namespace ka-run1-lb"),
        ("http://getip.other.svc.cluster.local/", "is outside namespace ka-run1-lb"),
        (f"http://getip.{NAMESPACE}.svc.evil.example/", "is outside namespace"),
        ("http://metadata.google.internal/", "is outside namespace"),
        ("http://getip..x/", "is not a Service name"),
        ("http://-getip/", "is not a Service name"),
    ],
)
def test_only_services_of_its_own_namespace_are_targets(
    in_cluster: flask.testing.FlaskClient, url: str, reason: str
) -> None:
    response = in_cluster.post("/probe", json={"url": url, "count": 1})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json is not None
    assert reason in response.json["reason"]
    assert "only to Services of its own namespace" in response.json["reason"]


@pytest.mark.parametrize(
    "host",
    [
        "getip",
        f"getip.{NAMESPACE}",
        f"getip.{NAMESPACE}.svc",
        f"getip.{NAMESPACE}.svc.cluster.local",
        f"getip.{NAMESPACE}.svc.cluster.local.",
        "GetIP",
    ],
)
def test_a_service_name_is_sent_to_its_fully_qualified_name(host: str) -> None:
    resolve = prober.in_cluster_resolver(NAMESPACE, "cluster.local")
    spec = prober.ProbeSpec.parse({"url": f"http://{host}:8080/x"}, resolve)
    assert (spec.host, spec.port, spec.target) == (
        f"getip.{NAMESPACE}.svc.cluster.local.",
        8080,
        "/x",
    )
    assert spec.service == "getip"


def test_without_its_namespace_the_prober_sends_nothing_and_says_why() -> None:
    client = prober.create_app(resolve=prober.in_cluster_resolver(None, "cluster.local"))
    response = client.test_client().post("/probe", json={"url": "http://getip/"})
    assert response.status_code == 400
    assert response.json is not None
    assert "POD_NAMESPACE is not set" in response.json["reason"]


def test_the_cluster_domain_comes_from_the_pods_search_list(tmp_path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        f"search {NAMESPACE}.svc.k8s.example svc.k8s.example k8s.example\nnameserver 10.96.0.10\n"
    )
    assert prober.cluster_domain(NAMESPACE, str(resolv)) == "k8s.example"
    assert prober.cluster_domain(NAMESPACE, str(tmp_path / "none")) == "cluster.local"
    assert prober.cluster_domain(None, str(resolv)) == "cluster.local"


def test_the_deployed_prober_knows_its_namespace() -> None:
    from workloads.tests.test_manifests import the

    env = the("prober", "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    } in env


# Bounds of the process: runs beyond them are refused at once, and health answers meanwhile.


def test_runs_beyond_the_process_bounds_get_429_with_retry_after(local_server: LocalServer) -> None:
    room = prober.Admission(max_runs=2, max_concurrency=3)
    client = prober.create_app(resolve=loopback, admission=room).test_client()
    body = {"url": svc(local_server), "count": 1000, "interval_ms": 50, "duration_s": 5}
    first = client.post("/probe", json=dict(body, concurrency=2))
    assert first.status_code == 200
    too_wide = client.post("/probe", json=dict(body, concurrency=2))
    assert too_wide.status_code == 429
    assert too_wide.headers["Retry-After"] == "1"
    assert too_wide.json is not None
    assert "2 requests are in flight, at most 3 at once" in too_wide.json["reason"]
    second = client.post("/probe", json=dict(body, concurrency=1))
    assert second.status_code == 200
    third = client.post("/probe", json=dict(body, concurrency=1))
    assert third.status_code == 429
    assert third.json is not None
    assert "2 probe runs are going, at most 2 at once" in third.json["reason"]
    assert client.get("/healthz").status_code == 200
    first.close()
    second.close()
    assert (room.runs, room.concurrency) == (0, 0)
    again = client.post("/probe", json=dict(body, count=1))
    assert again.status_code == 200


def test_the_process_bounds_leave_gunicorn_threads_for_the_health_probes() -> None:
    from workloads.__main__ import SERVING

    assert SERVING["prober"].threads > prober.MAX_RUNS
    assert prober.MAX_CONCURRENCY <= prober.MAX_TOTAL_CONCURRENCY


def test_under_eight_concurrent_probes_the_real_server_still_answers_healthz() -> None:
    """The prober as the container runs it (gunicorn, 8 threads): 8 long probes at once used to
    take every thread, so /healthz (the liveness probe) waited for them."""
    import os
    import socket
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from workloads.__main__ import BIND_ENV

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, BIND_ENV: f"127.0.0.1:{port}", "POD_NAMESPACE": NAMESPACE}
    server = subprocess.Popen(
        [sys.executable, "-m", "workloads", "prober"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(base + "/healthz"), timeout_s=20)
        body = {"url": "http://getip/", "count": 1000, "interval_ms": 200, "duration_s": 2.5}

        def probe(_: int) -> int:
            with httpx.stream("POST", base + "/probe", json=body, timeout=20) as response:
                for _line in response.iter_lines():
                    pass
                return response.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = pool.map(probe, range(8))
            time.sleep(1.0)  # the admitted probes are running now (they last 2.5 s)
            started = time.monotonic()
            health = httpx.get(base + "/healthz", timeout=5)
            took = time.monotonic() - started
            assert health.status_code == 200
            assert took < 1.0
            assert sorted(statuses) == [200] * prober.MAX_RUNS + [429] * (8 - prober.MAX_RUNS)
    finally:
        server.terminate()
        server.wait(timeout=20)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_via_service_env_goes_to_the_cluster_ip_from_the_environment_without_dns(
    local_server: LocalServer,
) -> None:
    def no_dns(name: str, port: int) -> tuple[str, int]:
        raise AssertionError(f"DNS path used for {name}")

    by_env = prober.service_env_resolver(
        "ns", "cluster.local", {"GETIP_SERVICE_HOST": "127.0.0.1", "MY_APP_SERVICE_HOST": "::1"}
    )
    client = prober.create_app(resolve=no_dns, by_env=by_env).test_client()
    lines = run_probe(client, url=svc(local_server), count=3, via="service-env")
    summary = lines[-1]["summary"]
    assert summary["ok"] == 3
    assert summary["via"] == "service-env"
    assert summary["address"] == f"127.0.0.1:{local_server.port}"
    assert by_env("my-app.ns.svc", 80) == ("::1", 80)


@pytest.mark.parametrize(
    ("environ", "host", "why"),
    [
        ({}, "getip", "not in this pod's environment"),
        ({"GETIP_SERVICE_HOST": "evil.example"}, "getip", "not in this pod's environment"),
        ({"GETIP_SERVICE_HOST": "10.0.0.1"}, "getip.other", "outside namespace"),
        ({"PROBER_SERVICE_HOST": "10.0.0.1"}, "prober", "not a target"),
    ],
)
def test_via_service_env_refuses_what_the_environment_does_not_hold(environ, host, why) -> None:
    by_env = prober.service_env_resolver("ns", "cluster.local", environ)
    client = prober.create_app(resolve=loopback, by_env=by_env).test_client()
    response = client.post("/probe", json={"url": f"http://{host}/", "via": "service-env"})
    assert response.status_code == 400
    assert why in response.get_data(as_text=True)


def test_via_must_be_known(client: flask.testing.FlaskClient) -> None:
    response = client.post("/probe", json={"url": "http://getip/", "via": "ip"})
    assert response.status_code == 400
    assert "via must be one of dns, service-env" in response.get_data(as_text=True)

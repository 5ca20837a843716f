"""prober: validation, one new connection per request, bounds, errors, streaming, disconnects."""

from __future__ import annotations

import json
import time
from typing import Any

import flask
import pytest

from workloads import prober
from workloads.tests.conftest import LocalServer, Responder, wait_until


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    return prober.create_app().test_client()


def run_probe(client: flask.testing.FlaskClient, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/probe", json=body, buffered=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_every_request_opens_a_new_connection_and_asks_to_close_it(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    lines = run_probe(client, url=local_server.url + "/who?x=1", count=30, concurrency=3)
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
    record = run_probe(client, url=local_server.url, count=1)[0]
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
        client, url=local_server.url, count=20_000, duration_s=0.3, interval_ms=50, concurrency=2
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
    lines = run_probe(client, url=local_server.url, count=7, concurrency=4, duration_s=30)
    assert lines[-1]["summary"]["sent"] == 7
    assert len(local_server.requests) == 7


def test_refused_connections_are_recorded_as_errors(
    client: flask.testing.FlaskClient, refused_url: str
) -> None:
    lines = run_probe(client, url=refused_url, count=3)
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
        records = run_probe(client, url=local_server.url, count=2)[:-1]
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
        record = run_probe(client, url=local_server.url, count=1, timeout_s=0.1)[0]
        assert record["error"] == "timeout"
        assert record["ok"] is False


def test_lines_are_streamed_and_a_disconnect_stops_the_run(
    client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    response = client.post(
        "/probe", json={"url": local_server.url, "count": 20_000, "interval_ms": 20}
    )
    lines = iter(response.response)
    first = json.loads(next(lines))
    assert first["seq"] == 0
    response.close()  # the client goes away
    assert wait_until(lambda: _stable(local_server), timeout_s=3)
    assert len(local_server.requests) < 100


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
        ({"url": "http://x/", "concurrency": 33}, "concurrency must be an integer from 1 to 32"),
        ({"url": "http://x/", "duration_s": 0}, "duration_s must be a number above 0"),
        ({"url": "http://x/", "duration_s": 601}, "duration_s must be"),
        ({"url": "http://x/", "interval_ms": -1}, "interval_ms must be an integer from 0"),
        ({"url": "http://x/", "interval_ms": 10_001}, "interval_ms must be"),
        ({"url": "http://x/", "timeout_s": 0}, "timeout_s must be a number above 0"),
        ({"url": "http://x/", "timeout_s": 31}, "timeout_s must be"),
        ({"url": "http://x/", "timeout_s": "2"}, "timeout_s must be"),
        ({"url": "http://x/", "extra": 1}, "unknown field(s): extra"),
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

"""Behaviour every app shares: identity, JSON errors, JSON access log, health routes."""

from __future__ import annotations

import importlib
import json
import logging
import platform

import flask
import pytest

from workloads import APPS
from workloads.common import Identity, JsonFormatter, answer, int_param, new_app
from workloads.incver import LIFECYCLE_KEY

# A path each app serves with GET, and a method it does not accept there.
GET_PATHS = {
    "getip": "/",
    "healthcheck": "/",
    "cpuhog": "/?ms=1",
    "incver": "/version",
    "prober": "/healthz",
    "frontend": "/healthz",
    "memhog": "/",
}


def make(app: str) -> flask.Flask:
    return importlib.import_module(f"workloads.{app}").create_app()  # type: ignore[no-any-return]


def test_identity_reads_the_downward_api_and_the_image_version() -> None:
    ident = Identity.from_env(
        {"POD_NAME": "p", "POD_IP": "10.0.0.1", "NODE_NAME": "n", "APP_VERSION": "v2"}
    )
    assert ident == Identity(pod="p", ip="10.0.0.1", node="n", version="v2")


def test_identity_falls_back_to_the_hostname_and_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "my-host")
    assert Identity.from_env({}) == Identity(pod="my-host", ip=None, node=None, version="dev")


@pytest.mark.parametrize("app", APPS)
def test_every_app_answers_json_with_pod_and_version(app: str) -> None:
    response = make(app).test_client().get(GET_PATHS[app])
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["pod"] == "test-pod-0"
    assert response.json["version"] == "v9"


@pytest.mark.parametrize("app", APPS)
def test_unknown_path_is_a_json_404(app: str) -> None:
    response = make(app).test_client().get("/no/such/path")
    assert response.status_code == 404
    assert response.is_json
    assert response.json is not None
    assert response.json["error"] == "Not Found"
    assert response.json["pod"] == "test-pod-0"
    assert response.json["version"] == "v9"


@pytest.mark.parametrize("app", APPS)
def test_wrong_method_is_a_json_405_that_says_what_is_allowed(app: str) -> None:
    response = make(app).test_client().delete("/healthz")
    assert response.status_code == 405
    assert response.is_json
    assert response.json is not None
    assert response.json["error"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("app", APPS)
def test_every_app_has_liveness_and_readiness_routes(app: str) -> None:
    served = make(app)
    # An app with a lifecycle (incver) is ready once the server has booted it (test_incver.py).
    lifecycle = served.extensions.get(LIFECYCLE_KEY)
    if lifecycle is not None:
        assert lifecycle.boot(served)
    client = served.test_client()
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.json is not None
        assert response.json["pod"] == "test-pod-0"


def test_the_health_endpoint_says_the_machine_it_runs_on() -> None:
    # One request tells which image of a multi-platform index a node runs (armv7l on a 32-bit
    # Raspberry Pi OS): the multi-arch check reads it under qemu.
    response = make("getip").test_client().get("/healthz")
    assert response.json is not None
    assert response.json["machine"] == platform.machine()
    assert response.json["status"] == "ok"


def test_access_log_is_one_json_line_per_request_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make("getip").test_client()
    client.get("/?x=1", buffered=True)
    client.get("/healthz", buffered=True)  # a healthy probe is not logged
    client.get("/missing", buffered=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["path"], r["status"]) for r in lines] == [("/", 200), ("/missing", 404)]
    first = lines[0]
    assert first["kind"] == "access"
    assert first["app"] == "getip"
    assert first["pod"] == "test-pod-0"
    assert first["method"] == "GET"
    assert first["query"] == "x=1"
    assert first["duration_ms"] >= 0


def test_an_unexpected_error_is_a_json_500() -> None:
    app = new_app("boom")

    @app.get("/boom")
    def boom() -> flask.Response:
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.json is not None
    assert response.json["reason"] == "RuntimeError"
    assert "secret detail" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 7), ("1", 1), ("10", 10)],
)
def test_int_param_accepts_plain_integers_in_range(raw: str | None, expected: int) -> None:
    app = new_app("t")
    query = "" if raw is None else f"?n={raw}"
    with app.test_request_context(f"/{query}"):
        assert int_param("n", 7, 1, 10) == expected


@pytest.mark.parametrize("raw", ["0", "11", "-1", "+5", "1.5", "abc", "", " 5", "1e3", "9" * 20])
def test_int_param_rejects_everything_else_with_a_reason(raw: str) -> None:
    app = new_app("t")
    with app.test_request_context("/", query_string={"n": raw}):
        with pytest.raises(Exception, match="n must be an integer from 1 to 10") as info:
            int_param("n", 7, 1, 10)
        assert getattr(info.value, "code", None) == 400


def test_answer_merges_the_payload_after_pod_and_version() -> None:
    app = new_app("t")
    with app.test_request_context("/"):
        body = answer({"x": 1}, status=201)
        assert body.status_code == 201
        assert body.json == {"pod": "test-pod-0", "version": "v9", "x": 1}


def test_json_formatter_writes_one_json_object() -> None:
    record = logging.LogRecord("gunicorn.error", logging.INFO, "f.py", 1, "hello %s", ("x",), None)
    line = JsonFormatter().format(record)
    assert json.loads(line)["msg"] == "hello x"
    assert json.loads(line)["level"] == "info"

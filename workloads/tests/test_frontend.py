"""frontend: the page, the proxies (one new upstream connection each), and the pod list."""

from __future__ import annotations

import io
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import flask
import pytest

from workloads import frontend
from workloads.tests.conftest import LocalServer

UPSTREAMS = ("GETIP_URL", "HEALTHCHECK_URL", "CPUHOG_URL", "INCVER_URL")


@pytest.fixture
def upstream_client(
    local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> flask.testing.FlaskClient:
    """A frontend whose every upstream is the local server."""
    for name in UPSTREAMS:
        monkeypatch.setenv(name, local_server.url)
    return frontend.create_app().test_client()


@pytest.fixture
def refused_client(refused_url: str, monkeypatch: pytest.MonkeyPatch) -> flask.testing.FlaskClient:
    for name in UPSTREAMS:
        monkeypatch.setenv(name, refused_url)
    return frontend.create_app().test_client()


def test_the_page_is_html_with_a_strict_policy_and_escaped_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POD_NAME", "<script>alert(1)</script>")
    response = frontend.create_app().test_client().get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in html
    # Self-contained: nothing is loaded from elsewhere.
    assert "src=" not in html.replace(f'nonce="{nonce}"', "")
    assert "http://" not in html
    assert "https://" not in html


def test_each_page_load_gets_a_fresh_nonce() -> None:
    client = frontend.create_app().test_client()
    first = client.get("/").headers["Content-Security-Policy"]
    assert first != client.get("/").headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("method", "path", "upstream"),
    [
        ("GET", "/getip", "/"),
        ("GET", "/healthcheck/", "/"),
        ("GET", "/healthcheck/healthz", "/healthz"),
        ("GET", "/healthcheck/readyz", "/readyz"),
        ("POST", "/healthcheck/infect", "/infect"),
        ("POST", "/healthcheck/cure", "/cure"),
        ("POST", "/healthcheck/kill", "/kill"),
        ("GET", "/cpuhog?ms=250", "/?ms=250"),
        ("GET", "/cpuhog", "/?ms=1000"),
        ("GET", "/incver/version", "/version"),
    ],
)
def test_proxies_pass_the_upstream_answer_through(
    upstream_client: flask.testing.FlaskClient,
    local_server: LocalServer,
    method: str,
    path: str,
    upstream: str,
) -> None:
    response = upstream_client.open(path, method=method)
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["pod"] == "pod-0"  # the upstream's pod, not the frontend's
    assert response.headers["X-Kube-Alive-Frontend-Pod"] == "test-pod-0"
    assert local_server.requests == [(method, upstream, local_server.requests[0][2], "close")]


def test_every_proxied_request_opens_a_new_upstream_connection(
    upstream_client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    pods = [upstream_client.get("/getip").json["pod"] for _ in range(6)]  # type: ignore[index]
    assert pods == ["pod-0", "pod-1", "pod-2"] * 2
    assert len(local_server.connections) == 6
    assert len(local_server.client_ports) == 6


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/getip"), ("GET", "/healthcheck/"), ("POST", "/healthcheck/kill"),
     ("GET", "/cpuhog?ms=1"), ("GET", "/incver/version")],
)  # fmt: skip
def test_an_unreachable_upstream_is_a_json_502(
    refused_client: flask.testing.FlaskClient, method: str, path: str
) -> None:
    response = refused_client.open(path, method=method)
    assert response.status_code == 502
    assert response.json is not None
    assert "ConnectionRefusedError" in response.json["reason"]
    assert response.json["pod"] == "test-pod-0"


class TestUpstreamErrors:
    @pytest.fixture
    def responder(self) -> Any:
        def answer(method: str, path: str, n: int) -> tuple[int, bytes]:
            if path == "/":
                return 503, json.dumps({"pod": "sick", "version": "v1", "healthy": False}).encode()
            return 200, b"<html>not json</html>"

        return answer

    def test_an_upstream_error_answer_is_passed_through(
        self, upstream_client: flask.testing.FlaskClient
    ) -> None:
        response = upstream_client.get("/healthcheck/")
        assert response.status_code == 503
        assert response.json is not None
        assert response.json["pod"] == "sick"

    def test_an_upstream_that_does_not_answer_json_is_a_502(
        self, upstream_client: flask.testing.FlaskClient
    ) -> None:
        response = upstream_client.get("/incver/version")
        assert response.status_code == 502
        assert response.json is not None
        assert "without a JSON object" in response.json["reason"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthcheck/infect", 405),
        ("POST", "/healthcheck/healthz", 405),
        ("GET", "/healthcheck/../etc", 404),
        ("POST", "/healthcheck/explode", 404),
        ("POST", "/getip", 405),
        ("GET", "/cpuhog?ms=0", 400),
        ("GET", "/cpuhog?ms=99999", 400),
        ("GET", "/cpuhog?ms=x", 400),
    ],
)
def test_the_proxy_refuses_what_the_workloads_would_not_take(
    upstream_client: flask.testing.FlaskClient,
    local_server: LocalServer,
    method: str,
    path: str,
    status: int,
) -> None:
    response = upstream_client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json
    assert local_server.requests == []


def test_a_non_http_upstream_url_is_a_502(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GETIP_URL", "file:///etc/passwd")
    response = frontend.create_app().test_client().get("/getip")
    assert response.status_code == 502


# The pod list.

POD_LIST = {
    "kind": "PodList",
    "items": [
        {
            "metadata": {
                "name": "incver-abc",
                "labels": {"app.kubernetes.io/name": "incver"},
            },
            "spec": {
                "nodeName": "node-a",
                "containers": [{"image": "localhost/kube-alive/workloads:v2"}],
            },
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"restartCount": 2}],
            },
        },
        {
            "metadata": {
                "name": "getip-xyz",
                "labels": {"app.kubernetes.io/name": "getip", "app.kubernetes.io/version": "v1"},
                "deletionTimestamp": "2025-01-01T00:00:00Z",
            },
            "spec": {"containers": [{"image": "localhost:5000/kube-alive/workloads"}]},
            "status": {"phase": "Pending"},
        },
    ],
}


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "token").write_text("the-token\n")
    (tmp_path / "namespace").write_text("kube-alive-test")
    (tmp_path / "ca.crt").write_text("not read in these tests")
    monkeypatch.setenv("SERVICE_ACCOUNT_DIR", str(tmp_path))
    return tmp_path


class FakeApi:
    """Stands in for urllib.request.urlopen against the in-cluster API."""

    def __init__(self, body: object = POD_LIST, error: Exception | None = None) -> None:
        self.body = body
        self.error = error
        self.requests: list[urllib.request.Request] = []
        self.contexts: list[object] = []

    def __call__(self, request: urllib.request.Request, timeout: float, context: object) -> Any:
        self.requests.append(request)
        self.contexts.append(context)
        if self.error is not None:
            raise self.error
        return io.BytesIO(json.dumps(self.body).encode())


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi()
    monkeypatch.setattr(frontend.urllib.request, "urlopen", api)
    monkeypatch.setattr(
        frontend.ssl, "create_default_context", lambda cafile: ("context-for", cafile)
    )
    return api


def test_pods_lists_the_namespace_with_the_service_account_token(
    service_account: Path, fake_api: FakeApi
) -> None:
    response = frontend.create_app().test_client().get("/api/pods")
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["namespace"] == "kube-alive-test"
    assert body["pod"] == "test-pod-0"
    assert body["pods"] == [
        {
            "name": "getip-xyz",
            "app": "getip",
            "phase": "Pending",
            "ready": False,
            "restarts": 0,
            "node": None,
            "ip": None,
            "version": "v1",
            "deleting": True,
        },
        {
            "name": "incver-abc",
            "app": "incver",
            "phase": "Running",
            "ready": True,
            "restarts": 2,
            "node": "node-a",
            "ip": "10.0.0.7",
            "version": "v2",
            "deleting": False,
        },
    ]
    (request,) = fake_api.requests
    assert (
        request.full_url == "https://kubernetes.default.svc/api/v1/namespaces/kube-alive-test/pods"
    )
    assert request.get_header("Authorization") == "Bearer the-token"
    assert fake_api.contexts == [("context-for", str(service_account / "ca.crt"))]


def test_the_token_is_read_again_for_every_request(
    service_account: Path, fake_api: FakeApi
) -> None:
    client = frontend.create_app().test_client()
    client.get("/api/pods")
    (service_account / "token").write_text("rotated")
    client.get("/api/pods")
    assert [r.get_header("Authorization") for r in fake_api.requests] == [
        "Bearer the-token",
        "Bearer rotated",
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            urllib.error.HTTPError("u", 403, "Forbidden", {}, None),  # type: ignore[arg-type]
            "answered 403",
        ),
        (ConnectionRefusedError(111, "refused"), "ConnectionRefusedError"),
        (ssl.SSLError("bad cert"), "SSLError"),
    ],
)
def test_an_api_failure_is_a_json_502(
    service_account: Path,
    fake_api: FakeApi,
    error: Exception,
    reason: str,
) -> None:
    fake_api.error = error
    response = frontend.create_app().test_client().get("/api/pods")
    assert response.status_code == 502
    assert response.json is not None
    assert reason in response.json["reason"]


def test_outside_a_cluster_the_pod_list_says_why_it_cannot_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_ACCOUNT_DIR", str(tmp_path / "missing"))
    response = frontend.create_app().test_client().get("/api/pods")
    assert response.status_code == 502
    assert response.json is not None
    assert "no ServiceAccount credentials" in response.json["reason"]


def test_a_strange_namespace_file_is_refused(service_account: Path, fake_api: FakeApi) -> None:
    (service_account / "namespace").write_text("../../secrets")
    response = frontend.create_app().test_client().get("/api/pods")
    assert response.status_code == 502
    assert fake_api.requests == []


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("localhost/kube-alive/workloads:v1", "v1"),
        ("localhost:5000/kube-alive/workloads", None),
        ("localhost:5000/kube-alive/workloads:v2@sha256:abc", "v2"),
        ("workloads", None),
    ],
)
def test_image_tag(image: str, tag: str | None) -> None:
    assert frontend._image_tag(image) == tag

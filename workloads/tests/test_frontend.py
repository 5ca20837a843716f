"""frontend: the page, the proxies and actions (one new upstream connection each), the roll, the
live state and its Server-Sent Events stream, with a fake API (no cluster)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import flask
import pytest
from werkzeug.serving import make_server

from workloads import frontend, frontend_traffic
from workloads.tests.conftest import LocalServer, Responder, wait_until

UPSTREAMS = ("GETIP_URL", "HEALTHCHECK_URL", "CPUHOG_URL", "INCVER_URL")


def page_client(app: flask.Flask) -> flask.testing.FlaskClient:
    """A client that acts like the page: every request carries the X-Kube-Alive header."""
    client = app.test_client()
    client.environ_base["HTTP_X_KUBE_ALIVE"] = "1"
    return client


@pytest.fixture
def upstream_client(
    local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> flask.testing.FlaskClient:
    """A frontend whose every upstream is the local server."""
    for name in UPSTREAMS:
        monkeypatch.setenv(name, local_server.url)
    return page_client(frontend.create_app())


@pytest.fixture
def refused_client(refused_url: str, monkeypatch: pytest.MonkeyPatch) -> flask.testing.FlaskClient:
    for name in UPSTREAMS:
        monkeypatch.setenv(name, refused_url)
    return page_client(frontend.create_app())


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
        # readiness flips are for the suite (through the pod proxy), never the public page
        ("POST", "/healthcheck/unready", 404),
        ("POST", "/healthcheck/ready", 404),
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


def test_a_post_without_the_page_header_is_refused(
    local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in UPSTREAMS:
        monkeypatch.setenv(name, local_server.url)
    client = frontend.create_app().test_client()
    for path in ("/healthcheck/kill", "/api/getip/send", "/api/incver/roll", "/api/cpuhog/load"):
        response = client.post(path)
        assert response.status_code == 403, path
        assert "X-Kube-Alive" in response.json["reason"]  # type: ignore[index]
    assert local_server.requests == []


def test_the_page_has_a_panel_per_experiment_and_sets_cluster_data_as_text_only() -> None:
    html = frontend.create_app().test_client().get("/").get_data(as_text=True)
    for app in frontend.EXPERIMENTS:
        assert f'id="panel-{app}"' in html
    assert "innerHTML" not in html
    assert "insertAdjacentHTML" not in html
    assert "document.write" not in html
    assert 'new EventSource("api/stream")' in html  # relative: works behind any path prefix


# Actions through the Services.


def test_send_counts_the_answers_per_pod_over_new_connections(
    upstream_client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    response = upstream_client.post("/api/getip/send?count=50")
    assert response.status_code == 200
    run = response.json["run"]  # type: ignore[index]
    assert (run["sent"], run["ok"], run["failed"]) == (50, 50, 0)
    assert sorted(run["byPod"].values()) == [16, 17, 17]
    assert len(local_server.connections) == 50
    assert {path for _, path, _, _ in local_server.requests} == {"/"}


@pytest.mark.parametrize("count", ["0", "201", "x"])
def test_send_is_bounded(upstream_client: flask.testing.FlaskClient, count: str) -> None:
    assert upstream_client.post(f"/api/getip/send?count={count}").status_code == 400


def test_send_with_the_service_down_counts_failures(
    refused_client: flask.testing.FlaskClient,
) -> None:
    run = refused_client.post("/api/getip/send?count=5").json["run"]  # type: ignore[index]
    assert (run["sent"], run["ok"], run["failed"]) == (5, 0, 5)
    assert "ConnectionRefusedError" in run["lastError"]


def test_the_cpuhog_load_starts_bounded_and_stops_on_request(
    upstream_client: flask.testing.FlaskClient, local_server: LocalServer
) -> None:
    started = upstream_client.post("/api/cpuhog/load")
    assert started.status_code == 200
    run = started.json["run"]  # type: ignore[index]
    assert run["limits"] == {
        "count": frontend.LOAD_BOUNDS.count,
        "duration_s": frontend.LOAD_BOUNDS.duration_s,
        "concurrency": frontend.LOAD_BOUNDS.concurrency,
    }
    assert wait_until(lambda: len(local_server.requests) >= 2)
    stopped = upstream_client.post("/api/cpuhog/load/stop")
    assert stopped.status_code == 200
    live = live_of(upstream_client)
    assert live.load.run is not None
    assert live.load.run.join(10)
    assert {path for _, path, _, _ in local_server.requests} == {f"/?ms={frontend.LOAD_BURN_MS}"}
    assert live.load.to_json()["stoppedBecause"] == "stopped"  # type: ignore[index]


# The live state, with a fake API.


def pod(name: str, app: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": app}},
        "spec": {"containers": [{"image": "localhost/kube-alive/workloads:v1"}]},
        "status": status,
    }


DEPLOYMENT = "/apis/apps/v1/namespaces/kube-alive-test/deployments/incver"


class FakeApi:
    """Answers GETs from ``answers`` (path -> object or exception); records PATCHes."""

    namespace = "kube-alive-test"

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.answers = answers or {}
        self.patches: list[tuple[str, Any, str]] = []
        self.patch_error: Exception | None = None

    def get(self, path: str, query: Any = None) -> dict[str, Any]:
        answer = self.answers.get(path, {"metadata": {"resourceVersion": "1"}, "items": []})
        if isinstance(answer, Exception):
            raise answer
        result: dict[str, Any] = answer
        return result

    def patch(self, path: str, body: Any, content_type: str) -> dict[str, Any]:
        self.patches.append((path, body, content_type))
        if self.patch_error is not None:
            raise self.patch_error
        return {}

    def watch(self, path: str, query: Any) -> Any:
        raise AssertionError("the unit tests drive the watches by hand")


def live_of(client: flask.testing.FlaskClient) -> frontend.Live:
    live: frontend.Live = client.application.extensions["kube_alive_live"]
    return live


@pytest.fixture
def fake_api() -> FakeApi:
    return FakeApi(
        {
            "/api/v1/namespaces/kube-alive-test/pods": {
                "metadata": {"resourceVersion": "10"},
                "items": [
                    pod("getip-a", "getip", phase="Running"),
                    pod("healthcheck-a", "healthcheck", phase="Pending"),
                    pod("frontend-a", "frontend", phase="Running"),
                    pod("<b>x</b>", "incver", phase="Running"),
                ],
            },
            DEPLOYMENT: {
                "spec": {"template": {"spec": {"containers": [
                    {"name": "incver", "image": "localhost/kube-alive/workloads:v1"}]}}}
            },
        }
    )  # fmt: skip


@pytest.fixture
def live_client(
    fake_api: FakeApi, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> flask.testing.FlaskClient:
    """A frontend on the fake API (watches driven by hand) whose upstreams are the local server."""
    for name in UPSTREAMS:
        monkeypatch.setenv(name, local_server.url)
    client = page_client(frontend.create_app(connect=lambda: fake_api, start_threads=False))
    live = live_of(client)
    assert live.ensure_started() is fake_api
    yield client
    live.stop()


def test_the_state_groups_the_watched_pods_by_experiment(
    live_client: flask.testing.FlaskClient,
) -> None:
    live = live_of(live_client)
    assert live.pods is not None
    live.pods.list()
    state = live_client.get("/api/state").json["state"]  # type: ignore[index]
    assert state["namespace"] == "kube-alive-test"
    assert state["frontend"] == {"pod": "test-pod-0", "version": "v9"}
    experiments = state["experiments"]
    assert set(experiments) == set(frontend.EXPERIMENTS)
    assert [p["name"] for p in experiments["getip"]["pods"]] == ["getip-a"]
    assert [p["status"] for p in experiments["healthcheck"]["pods"]] == ["Pending"]
    assert [p["name"] for p in experiments["incver"]["pods"]] == ["<b>x</b>"]
    assert experiments["cpuhog"] == {"pods": [], "hpa": None, "load": None}
    assert [p["name"] for p in state["others"]] == ["frontend-a"]
    assert state["api"]["pods"]["resourceVersion"] == "10"
    assert state["api"]["pods"]["synced"] is True


def test_the_hpa_is_watched_by_name_only(live_client: flask.testing.FlaskClient) -> None:
    live = live_of(live_client)
    assert live.hpa is not None
    assert live.hpa.field_selector == "metadata.name=cpuhog"
    assert (
        live.hpa.path == "/apis/autoscaling/v2/namespaces/kube-alive-test/horizontalpodautoscalers"
    )


def test_outside_a_cluster_the_state_says_why_the_api_cannot_be_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_ACCOUNT_DIR", str(tmp_path / "missing"))
    client = page_client(frontend.create_app())
    state = client.get("/api/state").json["state"]  # type: ignore[index]
    assert "no ServiceAccount" in state["api"]["error"]
    assert state["experiments"]["getip"]["pods"] == []
    response = client.post("/api/incver/roll")
    assert response.status_code == 502
    assert "no ServiceAccount" in response.json["reason"]  # type: ignore[index]


# The roll.


@pytest.mark.parametrize(
    ("before", "after"),
    [("v1", "v2"), ("v2", "v1"), ("v1-0123456789ab", "v2-0123456789ab")],
)
def test_roll_moves_the_incver_image_to_the_next_tag_with_a_guarded_json_patch(
    live_client: flask.testing.FlaskClient,
    fake_api: FakeApi,
    local_server: LocalServer,
    before: str,
    after: str,
) -> None:
    image = f"registry.local:5000/kube-alive/workloads:{before}"
    fake_api.answers[DEPLOYMENT] = {
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}}
    }
    response = live_client.post("/api/incver/roll")
    assert response.status_code == 200
    rolled = response.json["roll"]  # type: ignore[index]
    # The versions; a content-named tag (the suite's images) keeps its digest.
    assert (rolled["from"], rolled["to"]) == (before[:2], after[:2])
    new_image = f"registry.local:5000/kube-alive/workloads:{after}"
    pointer = "/spec/template/spec/containers/0/image"
    assert fake_api.patches == [
        (
            DEPLOYMENT,
            [
                {"op": "test", "path": pointer, "value": image},
                {"op": "replace", "path": pointer, "value": new_image},
            ],
            "application/json-patch+json",
        )
    ]
    # Traffic through the incver Service starts with the roll, to count failed requests.
    live = live_of(live_client)
    assert wait_until(lambda: ("GET", "/version") in [r[:2] for r in local_server.requests])
    assert live_client.post("/api/incver/traffic/stop").status_code == 200
    assert live.roll_traffic.run is not None
    assert live.roll_traffic.run.join(10)
    state = live_client.get("/api/state").json["state"]  # type: ignore[index]
    assert state["experiments"]["incver"]["roll"]["to"] == after[:2]
    assert state["experiments"]["incver"]["traffic"]["failed"] == 0


@pytest.mark.parametrize(
    "image",
    ["localhost/kube-alive/workloads:latest", "localhost/kube-alive/workloads",
     "localhost/kube-alive/workloads:v1@sha256:0123"],
)  # fmt: skip
def test_roll_refuses_an_image_it_cannot_move(
    live_client: flask.testing.FlaskClient, fake_api: FakeApi, image: str
) -> None:
    fake_api.answers[DEPLOYMENT] = {
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}}
    }
    response = live_client.post("/api/incver/roll")
    assert response.status_code == 409
    assert fake_api.patches == []


@pytest.mark.parametrize(
    ("get_error", "patch_error", "status", "reason"),
    [
        (frontend.kube.ApiError(404, "not found"), None, 404, "no Deployment incver"),
        (frontend.kube.ApiError(403, "deployments is forbidden"), None, 502, "forbidden"),
        (None, frontend.kube.ApiError(422, "test operation failed"), 409, "changed meanwhile"),
        (None, frontend.kube.ApiError(403, "deployments is forbidden"), 502, "forbidden"),
    ],
)
def test_roll_failures_say_what_went_wrong(
    live_client: flask.testing.FlaskClient,
    fake_api: FakeApi,
    get_error: Exception | None,
    patch_error: Exception | None,
    status: int,
    reason: str,
) -> None:
    if get_error is not None:
        fake_api.answers[DEPLOYMENT] = get_error
    fake_api.patch_error = patch_error
    response = live_client.post("/api/incver/roll")
    assert response.status_code == status
    assert reason in response.json["reason"]  # type: ignore[index]
    assert live_of(live_client).roll_traffic.run is None


# Server-Sent Events.


def parse_events(text: str) -> list[dict[str, Any]]:
    """Split an SSE body into events ({field: value}; data lines joined)."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[name] = fields[name] + "\n" + value if name in fields else value
        events.append(fields)
    return events


def test_an_sse_event_is_one_data_line_whatever_the_data_holds() -> None:
    text = frontend.sse_event("state", {"name": "a\nb\r\nc", "n": 1}, event_id=7)
    assert text.endswith("\n\n")
    assert text.count("\n") == 4
    (event,) = parse_events(text)
    assert event["event"] == "state"
    assert event["id"] == "7"
    assert json.loads(event["data"]) == {"name": "a\nb\r\nc", "n": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += seconds


class FakeHub(frontend.Hub):
    """A hub whose waits take no real time: each wait either sees the next scripted change or
    times out at once (moving the fake clock on)."""

    def __init__(self, clock: Clock, changes_at: list[float]) -> None:
        super().__init__()
        self.clock = clock
        self.changes_at = changes_at

    def wait(self, seen: int, timeout_s: float) -> bool:
        if self.changes_at and self.changes_at[0] <= self.clock.now + timeout_s:
            self.clock.now = max(self.clock.now, self.changes_at.pop(0))
            self.version += 1
            return True
        self.clock.now += timeout_s
        return False


def test_the_stream_sends_the_state_after_each_change_and_keeps_alive_in_between() -> None:
    clock = Clock()
    hub = FakeHub(clock, changes_at=[5.0, 40.0])
    states = iter(range(100))
    body = list(
        frontend.event_stream(
            hub,
            lambda: {"state": next(states)},
            heartbeat_s=15,
            max_s=60,
            min_interval_s=0.2,
            clock=clock,
            pause=clock.pause,
        )
    )
    assert body[0] == f"retry: {frontend.RECONNECT_MS}\n\n"
    kinds = ["state" if chunk.startswith("event: state") else chunk.strip() for chunk in body[1:]]
    # At 0 s; the change at 5 s; quiet at 20 s and 35 s; the change at 40 s; quiet at 55 s; the
    # end at 60 s (the browser reconnects).
    alive = ": keep-alive"
    assert kinds == ["state", "state", alive, alive, "state", alive]
    assert [json.loads(parse_events(c)[0]["data"]) for c in body if "state" in c] == [
        {"state": 0},
        {"state": 1},
        {"state": 2},
    ]
    assert clock.now == pytest.approx(60.0, abs=0.5)


def test_the_stream_route_streams_state_events_as_the_watch_changes(
    live_client: flask.testing.FlaskClient,
) -> None:
    live = live_of(live_client)
    response = live_client.get("/api/stream", buffered=False)
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        chunks = iter(response.response)
        assert next(chunks) == f"retry: {frontend.RECONNECT_MS}\n\n".encode()
        first = json.loads(parse_events(next(chunks).decode())[0]["data"])
        assert first["experiments"]["getip"]["pods"] == []
        assert live.pods is not None
        live.pods.list()  # bumps the hub
        second = json.loads(parse_events(next(chunks).decode())[0]["data"])
        assert [p["name"] for p in second["experiments"]["getip"]["pods"]] == ["getip-a"]
        assert live.streams == 1
    finally:
        response.close()
    assert live.streams == 0


def test_the_number_of_streams_is_bounded(live_client: flask.testing.FlaskClient) -> None:
    open_streams = [
        live_client.get("/api/stream", buffered=False) for _ in range(frontend.MAX_STREAMS)
    ]
    try:
        assert all(r.status_code == 200 for r in open_streams)
        refused = live_client.get("/api/stream", buffered=False)
        assert refused.status_code == 503
        assert "at most" in refused.json["reason"]  # type: ignore[index]
        open_streams.pop().close()
        again = live_client.get("/api/stream", buffered=False)
        assert again.status_code == 200
        open_streams.append(again)
    finally:
        for response in open_streams:
            response.close()


# Truthful state after stop, slots freed when clients leave, bounded pace with an upstream down.


class TestSlowCpuhog:
    @pytest.fixture
    def responder(self) -> Responder:
        def burn(method: str, path: str, n: int) -> tuple[int, bytes]:
            time.sleep(0.3)  # a cpuhog burst in progress
            return 200, json.dumps({"pod": "cpuhog-a", "version": "v1"}).encode()

        return burn

    def test_load_stop_answers_running_false_once_the_last_requests_ended(
        self, upstream_client: flask.testing.FlaskClient, local_server: LocalServer
    ) -> None:
        assert upstream_client.post("/api/cpuhog/load").status_code == 200
        assert wait_until(lambda: len(local_server.requests) >= 2)
        stopped = upstream_client.post("/api/cpuhog/load/stop")
        assert stopped.status_code == 200
        run = stopped.json["run"]  # type: ignore[index]
        assert run["running"] is False
        assert run["stoppedBecause"] == "stopped"
        assert run["left_s"] == 0


def test_a_load_with_cpuhog_down_backs_off_and_gives_up(
    refused_client: flask.testing.FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bounds = frontend_traffic.Bounds(
        count=600,
        duration_s=120.0,
        concurrency=2,
        backoff_s=0.01,
        max_backoff_s=0.04,
        give_up_after=6,
    )
    monkeypatch.setattr(frontend, "LOAD_BOUNDS", bounds)
    assert refused_client.post("/api/cpuhog/load").status_code == 200
    live = live_of(refused_client)
    assert live.load.run is not None
    assert live.load.run.join(10)
    run = live.load.to_json()
    assert run is not None
    assert run["running"] is False
    # Both threads may each have one request in flight when the sixth failure gives up.
    assert 6 <= run["failed"] <= 7
    assert run["stoppedBecause"].startswith("gave up after 6 failures in a row (last: ")
    assert "ConnectionRefusedError" in run["stoppedBecause"]


def test_the_real_load_bounds_give_up_within_seconds_not_hundreds_of_failures() -> None:
    bounds = frontend.LOAD_BOUNDS
    pauses = [bounds.pause_after(n) for n in range(1, bounds.give_up_after + 1)]
    assert pauses[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(pauses) == bounds.max_backoff_s
    # Threads pause in turn, so giving up takes at most the sum of the pauses.
    assert sum(pauses) < 30
    assert bounds.give_up_after <= 10


def test_a_stream_ends_as_soon_as_its_client_is_gone() -> None:
    clock = Clock()
    hub = FakeHub(clock, changes_at=[])
    body = frontend.event_stream(
        hub,
        lambda: {"state": 0},
        heartbeat_s=15,
        max_s=300,
        clock=clock,
        pause=clock.pause,
        client_gone=lambda: clock.now >= 7.0,
        check_s=1.0,
    )
    chunks = list(body)
    assert len(chunks) == 2  # retry, the first state; no heartbeat was needed to notice
    assert clock.now == pytest.approx(7.0, abs=1.01)


def test_a_browser_that_leaves_frees_its_stream_slot_within_seconds(
    fake_api: FakeApi, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a real server and a real socket: the slot used to stay taken until the second
    heartbeat failed to write (30 s and more)."""
    for name in UPSTREAMS:
        monkeypatch.setenv(name, local_server.url)
    app = frontend.create_app(connect=lambda: fake_api, start_threads=False)
    live: frontend.Live = app.extensions["kube_alive_live"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as browser:
            browser.sendall(b"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"event: state" in _read_until(browser, b"event: state")
            assert live.streams == 1
        started = time.monotonic()
        assert wait_until(lambda: live.streams == 0, timeout_s=5)
        assert time.monotonic() - started < frontend.CLIENT_CHECK_S + 2
    finally:
        server.shutdown()
        live.stop()


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = sock.recv(4096)
        if not chunk:
            break
        seen += chunk
    return seen

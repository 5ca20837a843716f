"""frontend_kube: the watch (list, resume from resourceVersion, relist on 410), the pod and HPA
summaries, and the urllib transport against a loopback server (no cluster)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from workloads import frontend_kube as kube

PODS = "/api/v1/namespaces/ns/pods"


def pod(name: str, rv: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "resourceVersion": rv,
            "labels": {"app.kubernetes.io/name": name.split("-")[0]},
        },
        "spec": {"containers": [{"image": "localhost/kube-alive/workloads:v1"}]},
        "status": status,
    }


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


class Broken(Exception):
    """Stands for a connection that drops in the middle of a watch stream."""


class FakeApi:
    """Answers lists from ``lists`` and watches from ``streams``, in order, and records calls.

    A stream is a list of lines; an exception in it is raised there (a dropped connection); an
    exception instead of a stream is raised when the watch is opened. When the script runs out,
    ``done`` is set (the test's stop event).
    """

    namespace = "ns"

    def __init__(self, lists: list[Any], streams: list[Any]) -> None:
        self.lists = list(lists)
        self.streams = list(streams)
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.done = threading.Event()

    def get(self, path: str, query: Any = None) -> dict[str, Any]:
        self.calls.append(("list", path, dict(query or {})))
        item = self.lists.pop(0)
        if isinstance(item, Exception):
            raise item
        result: dict[str, Any] = item
        return result

    def patch(self, path: str, body: Any, content_type: str) -> dict[str, Any]:
        raise AssertionError("not used")

    @contextlib.contextmanager
    def watch(self, path: str, query: Any) -> Iterator[Iterator[bytes]]:
        self.calls.append(("watch", path, dict(query)))
        if not self.streams:
            self.done.set()
            yield iter(())
            return
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream

        def lines() -> Iterator[bytes]:
            for item in stream:
                if isinstance(item, Exception):
                    raise kube.ApiError(0, f"the watch stream broke: {item}")
                yield item

        yield lines()


def listing(rv: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "items": list(items)}


def run(api: FakeApi, watch: kube.ListWatch) -> list[float]:
    """Run the watch loop until the fake's script is used up; return the back-off pauses."""
    pauses: list[float] = []

    def pause(seconds: float) -> bool:
        pauses.append(seconds)
        return False

    watch.run(api.done, sleep=pause)
    return pauses


def names(watch: kube.ListWatch) -> list[str]:
    return [kube._name(item) for item in watch.items()]


def watches(api: FakeApi) -> list[str]:
    """The resourceVersion each watch started from, and 'list' for each list, in order."""
    return ["list" if kind == "list" else query["resourceVersion"] for kind, _, query in api.calls]


def test_it_lists_then_watches_from_the_list_and_moves_with_every_event() -> None:
    changes: list[int] = []
    api = FakeApi(
        [listing("10", pod("getip-a", "9"))],
        [
            [
                line("ADDED", pod("getip-b", "11")),
                line("MODIFIED", pod("getip-a", "12", phase="Running")),
                line("BOOKMARK", {"metadata": {"resourceVersion": "15"}}),
                line("DELETED", pod("getip-b", "16")),
                b"\n",
            ]
        ],
    )
    watch = kube.ListWatch(api, PODS, on_change=lambda: changes.append(1))
    watch.step()
    assert watches(api) == ["list", "10"]
    _, path, query = api.calls[1]
    assert path == PODS
    assert query == {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": "10",
        "timeoutSeconds": str(kube.WATCH_TIMEOUT_S),
    }
    assert names(watch) == ["getip-a"]
    assert watch.items()[0]["status"] == {"phase": "Running"}
    assert watch.status.resource_version == "16"
    assert watch.status.events == 4 - 1  # the bookmark moves the version, changes nothing
    assert len(changes) >= 4


def test_a_stream_that_ends_is_resumed_from_the_last_version_without_listing() -> None:
    api = FakeApi(
        [listing("10")],
        [[line("ADDED", pod("getip-a", "11"))], [line("ADDED", pod("getip-b", "12"))]],
    )
    watch = kube.ListWatch(api, PODS)
    assert run(api, watch) == []
    assert watches(api) == ["list", "10", "11", "12"]
    assert watch.status.lists == 1
    assert watch.status.resumes == 2
    assert names(watch) == ["getip-a", "getip-b"]


def test_a_dropped_stream_is_resumed_after_a_short_pause() -> None:
    api = FakeApi(
        [listing("10")],
        [
            [line("ADDED", pod("getip-a", "11")), Broken("connection reset")],
            [line("ADDED", pod("getip-b", "12"))],
        ],
    )
    watch = kube.ListWatch(api, PODS)
    pauses = run(api, watch)
    assert watches(api) == ["list", "10", "11", "12"]
    assert pauses == [0.5]
    assert names(watch) == ["getip-a", "getip-b"]
    assert watch.status.lists == 1


def test_410_gone_in_the_stream_leads_to_a_fresh_list_that_replaces_everything() -> None:
    gone = {"kind": "Status", "code": 410, "message": "too old resource version: 11 (99)"}
    api = FakeApi(
        [listing("10", pod("getip-a", "9")), listing("100", pod("getip-c", "99"))],
        [[line("ADDED", pod("getip-b", "11")), line("ERROR", gone)], []],
    )
    watch = kube.ListWatch(api, PODS)
    assert run(api, watch) == []  # no pause: list again at once
    assert watches(api) == ["list", "10", "list", "100", "100"]
    assert names(watch) == ["getip-c"]
    assert watch.status.lists == 2


def test_410_gone_when_opening_the_watch_also_relists() -> None:
    api = FakeApi([listing("10"), listing("20")], [kube.Gone("expired"), []])
    watch = kube.ListWatch(api, PODS)
    run(api, watch)
    assert watches(api) == ["list", "10", "list", "20", "20"]


def test_a_refused_watch_backs_off_then_lists_again_and_says_why() -> None:
    statuses: list[str | None] = []
    api = FakeApi(
        [listing("10"), listing("30")],
        [kube.ApiError(403, 'pods is forbidden: User "x" cannot watch')],
    )
    watch = kube.ListWatch(api, PODS)
    watch.on_change = lambda: statuses.append(watch.status.error)
    pauses = run(api, watch)
    assert pauses == [0.5]
    assert watches(api) == ["list", "10", "list", "30"]
    assert any(s and "forbidden" in s for s in statuses)
    assert watch.status.error is None  # the next list succeeded


def test_repeated_connection_failures_end_in_a_relist_with_growing_pauses() -> None:
    refused = kube.ApiError(0, "ConnectionRefusedError")
    api = FakeApi([listing("10"), listing("40")], [refused, refused, refused])
    watch = kube.ListWatch(api, PODS)
    pauses = run(api, watch)
    assert pauses == [0.5, 1.0, 2.0]
    assert watches(api) == ["list", "10", "10", "10", "list", "40"]


def test_an_error_event_other_than_410_is_an_api_error() -> None:
    watch = kube.ListWatch(FakeApi([], []), PODS)
    with pytest.raises(kube.ApiError) as caught:
        watch.apply_line(line("ERROR", {"code": 500, "message": "etcd is down"}))
    assert caught.value.status == 500
    with pytest.raises(kube.ApiError):
        watch.apply_line(b"{not json\n")


def test_a_field_selector_goes_to_the_list_and_the_watch() -> None:
    api = FakeApi([listing("5")], [[]])
    kube.ListWatch(api, "/hpas", field_selector="metadata.name=cpuhog").step()
    assert [query.get("fieldSelector") for _, _, query in api.calls] == [
        "metadata.name=cpuhog",
        "metadata.name=cpuhog",
    ]


def test_the_loop_stops_when_asked() -> None:
    stop = threading.Event()
    stop.set()
    api = FakeApi([], [])
    kube.ListWatch(api, PODS).run(stop)
    assert api.calls == []


# What the page shows.


def test_a_terminated_container_is_shown_as_terminated_with_reason_and_exit_code() -> None:
    summary = kube.summarize_pod(
        pod(
            "healthcheck-a",
            "1",
            phase="Running",
            containerStatuses=[
                {
                    "name": "healthcheck",
                    "restartCount": 3,
                    "state": {"terminated": {"reason": "Error", "exitCode": 1}},
                    "lastState": {"terminated": {"reason": "Completed", "exitCode": 0}},
                }
            ],
        )
    )
    assert summary["status"] == "Terminated: Error (exit 1)"
    (container,) = summary["containers"]
    assert container["state"]["state"] == "terminated"
    assert container["last"]["reason"] == "Completed"
    assert container["last"]["exitCode"] == 0
    assert summary["restarts"] == 3


@pytest.mark.parametrize(
    ("status", "deleting", "shown"),
    [
        ({"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}, False, "Running"),
        (
            {"phase": "Running", "containerStatuses": [
                {"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
            False,
            "CrashLoopBackOff",
        ),
        ({"phase": "Pending"}, False, "Pending"),
        ({"phase": "Running"}, True, "Terminating"),
        ({}, False, "Unknown"),
    ],
)  # fmt: skip
def test_the_status_reads_like_kubectl(status: dict[str, Any], deleting: bool, shown: str) -> None:
    obj = pod("getip-a", "1", **status)
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert kube.summarize_pod(obj)["status"] == shown


def test_a_pod_summary_has_what_a_row_shows() -> None:
    obj = pod(
        "incver-a",
        "1",
        phase="Running",
        conditions=[{"type": "Ready", "status": "True"}],
        containerStatuses=[{"name": "incver", "ready": True, "restartCount": 2, "state": {}}],
    )
    obj["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
    obj["metadata"]["labels"]["app.kubernetes.io/version"] = "v7"  # stale: the image says v2
    obj["spec"]["containers"][0]["image"] = "registry:5000/kube-alive/workloads:v2"
    obj["spec"]["nodeName"] = "node-a"
    summary = kube.summarize_pod(obj)
    assert {k: summary[k] for k in ("name", "app", "node", "ready", "restarts", "version")} == {
        "name": "incver-a",
        "app": "incver",
        "node": "node-a",
        "ready": True,
        "restarts": 2,
        "version": "v2",
    }
    assert summary["created"] == 1735689600.0
    assert summary["deleting"] is False
    # The suite's images are named by content: the page still shows the version.
    obj["spec"]["containers"][0]["image"] = "localhost/kube-alive/workloads:v2-0123456789ab"
    assert kube.summarize_pod(obj)["version"] == "v2"


def test_the_hpa_summary_has_replicas_and_cpu() -> None:
    hpa = {
        "metadata": {"name": "cpuhog"},
        "spec": {
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
        },
        "status": {
            "currentReplicas": 2,
            "desiredReplicas": 3,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 140}},
                }
            ],
            "conditions": [
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}
            ],
        },
    }
    summary = kube.summarize_hpa(hpa)
    assert (summary["currentReplicas"], summary["desiredReplicas"]) == (2, 3)
    assert (summary["currentCPU"], summary["targetCPU"]) == (140, 50)
    assert summary["problem"] is None
    hpa["status"] = {
        "conditions": [
            {
                "type": "ScalingActive",
                "status": "False",
                "reason": "FailedGetResourceMetric",
                "message": "no metrics",
            }
        ]
    }
    summary = kube.summarize_hpa(hpa)
    assert summary["currentCPU"] is None
    assert summary["problem"] == "FailedGetResourceMetric: no metrics"


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
    assert kube.image_tag(image) == tag


# The urllib transport, against a loopback HTTP server.


@pytest.fixture
def service_account(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("the-token\n")
    (tmp_path / "namespace").write_text("kube-alive-test\n")
    return tmp_path


@pytest.fixture
def api_server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, list[str]], str]]]]:
    """A loopback 'API server': lists, a chunked watch stream, a 410 and a 403."""
    seen: list[tuple[str, str, dict[str, list[str]], str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            seen.append(("GET", parts.path, query, self.headers["Authorization"]))
            if parts.path.endswith("/gone"):
                self._send(410, b'{"kind":"Status","code":410,"message":"too old"}')
            elif parts.path.endswith("/secrets"):
                self._send(403, b'{"kind":"Status","code":403,"message":"secrets is forbidden"}')
            elif "watch" not in query:
                self._send(200, json.dumps(listing("7", pod("getip-a", "7"))).encode())
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in (
                    line("ADDED", pod("getip-b", "8")),
                    line("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
                ):
                    # Split each event over two chunks: lines must be put back together.
                    for piece in (event[:10], event[10:]):
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        def do_PATCH(self) -> None:
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length).decode()
            seen.append(("PATCH", self.path, {}, self.headers["Content-Type"] + " " + body))
            self._send(200, b'{"kind":"Deployment"}')

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_transport_lists_and_watches_with_the_token(
    service_account: Path, api_server: tuple[str, list[Any]]
) -> None:
    url, seen = api_server
    api = kube.InClusterApi(url, service_account)
    assert api.namespace == "kube-alive-test"
    watch = kube.ListWatch(api, PODS)
    watch.step()
    assert names(watch) == ["getip-a", "getip-b"]
    assert watch.status.resource_version == "9"
    (_, _, list_query, list_auth), (_, _, watch_query, _) = seen
    assert list_auth == "Bearer the-token"
    assert list_query == {}
    assert watch_query["resourceVersion"] == ["7"]
    assert watch_query["watch"] == ["true"]


def test_the_token_is_read_again_for_every_request(
    service_account: Path, api_server: tuple[str, list[Any]]
) -> None:
    url, seen = api_server
    api = kube.InClusterApi(url, service_account)
    api.get(PODS)
    (service_account / "token").write_text("rotated")
    api.get(PODS)
    assert [auth for *_, auth in seen] == ["Bearer the-token", "Bearer rotated"]


def test_the_transport_maps_errors(service_account: Path, api_server: tuple[str, Any]) -> None:
    url, _ = api_server
    api = kube.InClusterApi(url, service_account)
    with pytest.raises(kube.Gone):
        api.get("/gone")
    with pytest.raises(kube.ApiError) as caught:
        api.get("/api/v1/namespaces/ns/secrets")
    assert caught.value.status == 403
    assert caught.value.message == "secrets is forbidden"


def test_the_transport_sends_a_json_patch(
    service_account: Path, api_server: tuple[str, list[Any]]
) -> None:
    url, seen = api_server
    kube.InClusterApi(url, service_account).patch(
        "/apis/apps/v1/namespaces/ns/deployments/incver",
        [{"op": "replace", "path": "/x", "value": 1}],
        "application/json-patch+json",
    )
    ((method, path, _, detail),) = seen
    assert (method, path) == ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/incver")
    assert detail == 'application/json-patch+json [{"op": "replace", "path": "/x", "value": 1}]'


def test_no_answer_is_an_api_error_with_status_0(service_account: Path, refused_url: str) -> None:
    api = kube.InClusterApi(refused_url, service_account)
    with pytest.raises(kube.ApiError) as caught:
        api.get(PODS)
    assert caught.value.status == 0
    assert "ConnectionRefusedError" in caught.value.message


def test_the_token_only_goes_to_an_https_api(service_account: Path) -> None:
    with pytest.raises(kube.ApiError, match="https"):
        kube.InClusterApi.from_service_account("http://kubernetes.default.svc", service_account)


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "no ServiceAccount credentials"), ("../../secrets", "not a namespace name")],
)
def test_a_missing_or_strange_namespace_file_is_refused(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    if content is not None:
        (tmp_path / "namespace").write_text(content)
    with pytest.raises(kube.ApiError, match=problem):
        kube.read_namespace(tmp_path)


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v1", "v1"), ("v2-0123456789ab", "v2"), ("v1-arm64", "v1-arm64"), ("latest", "latest")],
)
def test_a_content_named_tag_shows_its_version(tag: str, version: str) -> None:
    assert kube.version_of_tag(tag) == version

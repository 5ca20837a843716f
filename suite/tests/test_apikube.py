"""`ApiKube` against a tiny HTTP server on loopback: the official client's plumbing (auth header,
query strings, JSON, errors, chunked streams, closing a blocked stream) as the suite uses it."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from suite.kube import PODS, ApiKube, KubeconfigError, KubeError, client_configuration
from suite.listwatch import ListWatcher
from suite.traffic import Prober, ProbeRequest

SEEN: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunks(self, lines, *, hold=0.0):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            data = (line + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        SEEN.append({"path": self.path, "auth": self.headers.get("Authorization")})
        if self.path == "/version":
            return self._json(200, {"gitVersion": "v1.34.1"})
        if self.path.startswith("/api/v1/namespaces/ns/pods?") and "watch=true" in self.path:
            pod = {"metadata": {"name": "b", "resourceVersion": "11"}}
            return self._chunks([json.dumps({"type": "ADDED", "object": pod})], hold=30)
        if self.path.startswith("/api/v1/namespaces/ns/pods?"):
            return self._json(
                200, {"items": [{"metadata": {"name": "a"}}], "metadata": {"resourceVersion": "10"}}
            )
        if self.path.startswith("/api/v1/namespaces/ns/pods/a/log"):
            data = b"line 1\nline 2\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        return self._json(404, {"kind": "Status", "message": f"{self.path} not found", "code": 404})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        SEEN.append({"path": self.path, "body": body, "type": self.headers.get("Content-Type")})
        if self.path.endswith("/proxy/probe"):
            record = {
                "seq": 0,
                "start": 1.0,
                "end": 1.1,
                "status": 200,
                "ok": True,
                "pod": "getip-a",
                "version": "v1",
                "error": None,
            }
            return self._chunks([json.dumps(record), json.dumps({"summary": {"sent": 1}})])
        return self._json(201, body)


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path_factory.mktemp("kc") / "kubeconfig"
    kubeconfig.write_text(
        f"""
apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "http://127.0.0.1:{server.server_port}"}}}}]
users: [{{name: me, user: {{token: "not-a-secret"}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: me}}}}]
current-context: fake
"""
    )
    yield ApiKube.from_kubeconfig(kubeconfig, None)
    server.shutdown()


def test_json_requests_carry_the_token_and_query(kube):
    assert kube.request("GET", "/version") == {"gitVersion": "v1.34.1"}
    assert SEEN[-1]["auth"] == "Bearer not-a-secret"
    kube.request(
        "GET", "/api/v1/namespaces/ns/pods", query={"labelSelector": "a=b,c=d", "limit": 5}
    )
    assert "labelSelector=a%3Db%2Cc%3Dd" in SEEN[-1]["path"]
    assert kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "x"}}) == {
        "metadata": {"name": "x"}
    }
    assert SEEN[-1]["type"] == "application/json"


def test_text_answers_and_errors(kube):
    assert kube.request("GET", "/api/v1/namespaces/ns/pods/a/log") == "line 1\nline 2\n"
    with pytest.raises(KubeError) as error:
        kube.request("GET", "/nope")
    assert error.value.status == 404
    assert error.value.message == "/nope not found"


def test_streams_are_read_line_by_line(kube):
    prober = Prober(kube, "ns")
    result = prober.run(ProbeRequest(url="http://getip/", count=1))
    assert result.complete
    assert result.by_pod() == {"getip-a": 1}
    assert SEEN[-1]["body"]["url"] == "http://getip/"


def test_a_blocked_watch_stops_promptly(kube):
    events = []
    got_event = threading.Event()

    def on_event(kind, obj):
        events.append((kind, obj["metadata"]["name"]))
        got_event.set()

    watcher = ListWatcher(kube, PODS, "ns", on_sync=lambda items: None, on_event=on_event).start()
    assert got_event.wait(10)
    started = time.monotonic()
    watcher.stop(timeout=5)
    assert time.monotonic() - started < 3
    assert events == [("ADDED", "b")]
    assert watcher.resource_version == "11"


def test_unreachable_server_is_a_kube_error_with_status_0(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
clusters: [{name: x, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: me, user: {token: t}}]
contexts: [{name: x, context: {cluster: x, user: me}}]
current-context: x
"""
    )
    with pytest.raises(KubeError) as error:
        ApiKube.from_kubeconfig(kubeconfig, None).request("GET", "/version")
    assert error.value.status == 0


TWO_CONTEXTS = """
apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}
- {name: b, cluster: {server: "https://127.0.0.2:6443", insecure-skip-tls-verify: true}}
users: [{name: me, user: {token: "not-a-secret"}}]
contexts:
- {name: a, context: {cluster: a, user: me}}
- {name: b, context: {cluster: b, user: me}}
current-context: a
"""


def test_a_kubeconfig_becomes_the_named_contexts_address_and_credentials(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(TWO_CONTEXTS)
    assert client_configuration(kubeconfig, None).host == "https://127.0.0.1:6443"
    chosen = client_configuration(kubeconfig, "b")
    assert chosen.host == "https://127.0.0.2:6443"
    assert chosen.api_key == {"BearerToken": "Bearer not-a-secret"}
    assert not chosen.verify_ssl
    assert ApiKube.from_kubeconfig(kubeconfig, "b").host == "https://127.0.0.2:6443"


def test_an_unknown_context_names_the_context_and_the_file(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(TWO_CONTEXTS)
    with pytest.raises(KubeconfigError, match=f"cannot use context 'c' of {kubeconfig}: "):
        client_configuration(kubeconfig, "c")

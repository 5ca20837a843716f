"""Fixtures for the workload unit tests: a tiny HTTP server on 127.0.0.1 and a clean identity."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

Responder = Callable[[str, str, int], tuple[int, bytes]]


@dataclass
class LocalServer:
    """What the local server saw: one entry per accepted connection and per request."""

    url: str
    port: int
    connections: list[int] = field(default_factory=list)
    requests: list[tuple[str, str, int, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def client_ports(self) -> set[int]:
        """Distinct client ports over all requests (a new connection gets a new port)."""
        with self.lock:
            return {port for _, _, port, _ in self.requests}


def json_responder(method: str, path: str, n: int) -> tuple[int, bytes]:
    """Answers like a workload: three pods in turn, version v1."""
    body = {"pod": f"pod-{n % 3}", "version": "v1", "method": method, "path": path}
    return 200, json.dumps(body).encode()


@pytest.fixture
def responder() -> Responder:
    """How the local server answers; override in a test module to change it."""
    return json_responder


@pytest.fixture
def local_server(responder: Responder) -> Iterator[LocalServer]:
    """An HTTP/1.1 server on a free 127.0.0.1 port that would keep connections alive if asked."""
    state = LocalServer(url="", port=0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive unless the client says Connection: close

        def setup(self) -> None:
            super().setup()
            with state.lock:
                state.connections.append(self.client_address[1])

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with state.lock:
                n = len(state.requests)
                state.requests.append(
                    (self.command, self.path, self.client_address[1], self.headers["Connection"])
                )
            status, body = responder(self.command, self.path, n)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    class QuietServer(ThreadingHTTPServer):
        # A client that gave up (the timeout test) breaks the pipe: expected, not worth a traceback.
        def handle_error(self, request: object, client_address: object) -> None:
            pass

    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    state.url = f"http://127.0.0.1:{state.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An http:// URL on 127.0.0.1 where nothing listens (the port is held, so stays unused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        sock.close()


@pytest.fixture(autouse=True)
def pod_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app under test believes it runs as pod test-pod-0, version v9."""
    monkeypatch.setenv("POD_NAME", "test-pod-0")
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    monkeypatch.setenv("NODE_NAME", "node-a")
    monkeypatch.setenv("APP_VERSION", "v9")


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``check`` until true or ``timeout_s`` passes; returns the last result."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()

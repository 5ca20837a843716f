"""Unit tests of the slow API proxy: on this machine's loopback only, no cluster."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import yaml

from localcluster import slowapi

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "local",
    "contexts": [{"name": "local", "context": {"cluster": "c", "user": "u"}}],
    "clusters": [{"name": "c", "cluster": {"server": "https://10.240.0.1:6443"}}],
    "users": [{"name": "u", "user": {}}],
}


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return server, int(server.getsockname()[1])


def test_every_answer_comes_late_by_the_delay_and_in_order():
    server, port = _echo_server()
    proxy = slowapi.DelayProxy(("127.0.0.1", port), delay_s=0.4).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            for word in (b"one", b"two"):
                sent = time.monotonic()
                client.sendall(word)
                answer = client.recv(1024)
                took = time.monotonic() - sent
                assert answer == word.upper()
                assert 0.4 <= took < 2.0, f"{word!r} answered after {took:.2f}s, delay 0.4s"
    finally:
        proxy.stop()
        server.close()


def test_a_kubeconfig_is_put_behind_the_proxy(tmp_path: Path):
    source = tmp_path / "admin.kubeconfig"
    source.write_text(yaml.safe_dump(KUBECONFIG))
    assert slowapi.upstream_of(source) == ("10.240.0.1", 6443)
    proxy = slowapi.DelayProxy(("10.240.0.1", 6443), delay_s=1.0)
    proxy.port = 40000
    target = slowapi.behind(source, proxy, tmp_path / "slow.kubeconfig")
    written = yaml.safe_load(target.read_text())
    assert written["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:40000"
    assert written["users"] == KUBECONFIG["users"]

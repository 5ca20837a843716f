"""``python -m workloads <app>``: usage, gunicorn settings, and a real gunicorn run."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn.errors import HaltServer

from workloads import APPS, incver
from workloads.__main__ import (
    BIND_ENV,
    ON_SIGTERM_ENV,
    ON_SIGTERM_EXIT,
    SERVING,
    _Arbiter,
    gunicorn_options,
    main,
    post_worker_init,
)

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15.0


@pytest.mark.parametrize("argv", [[], ["nope"], ["getip", "extra"]])
def test_unknown_app_exits_2_and_lists_the_apps(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    for app in APPS:
        assert app in err


def test_every_app_has_serving_settings() -> None:
    assert set(SERVING) == set(APPS)


@pytest.mark.parametrize("app", APPS)
def test_gunicorn_options_suit_a_read_only_container(app: str) -> None:
    options = gunicorn_options(app)
    assert options["bind"] == "0.0.0.0:8080"
    assert options["worker_tmp_dir"] == "/dev/shm"
    assert options["control_socket_disable"] is True
    assert options["worker_class"] == "gthread"
    assert options["graceful_timeout"] > 0


def test_healthcheck_runs_in_one_process_and_cpuhog_in_several() -> None:
    assert gunicorn_options("healthcheck")["workers"] == 1
    assert gunicorn_options("cpuhog")["workers"] >= 2


def test_incver_finishes_within_its_grace_period() -> None:
    # terminationGracePeriodSeconds 20 minus the longest preStop drain (manifests/incver).
    assert gunicorn_options("incver")["graceful_timeout"] < 20 - incver.MAX_DRAIN_S


def test_incver_runs_one_process_so_its_readiness_is_one_state() -> None:
    assert gunicorn_options("incver")["workers"] == 1


class _FakeWorker:
    def __init__(self, app: object) -> None:
        self.wsgi = app
        self.log = self
        self.errors: list[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)


def test_the_booted_worker_makes_incver_ready_and_sigterm_makes_it_stop() -> None:
    app = incver.create_app()
    lifecycle = app.extensions[incver.LIFECYCLE_KEY]
    gunicorns: list[int] = []
    saved = signal.signal(signal.SIGTERM, lambda signum, frame: gunicorns.append(signum))
    try:
        post_worker_init(_FakeWorker(app))
        assert lifecycle.state == incver.READY
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGTERM, saved)
    assert (lifecycle.state, lifecycle.stop_reason) == (incver.STOPPING, "SIGTERM")
    assert gunicorns == [signal.SIGTERM]  # gunicorn's own handler still runs after


def test_other_apps_are_left_alone_by_the_boot_hook() -> None:
    before = signal.getsignal(signal.SIGTERM)
    post_worker_init(_FakeWorker(object()))
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigusr2_halts_the_master_with_status_1() -> None:
    arbiter = _Arbiter.__new__(_Arbiter)
    with pytest.raises(HaltServer) as info:
        arbiter.handle_usr2()
    assert info.value.exit_status == 1


# A real gunicorn, on a free loopback port: the container's exit statuses are a contract.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(port: int, method: str, path: str) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _serve(app: str, pod: str, **extra_env: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    env = {**os.environ, BIND_ENV: f"127.0.0.1:{port}", "POD_NAME": pod, **extra_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads", app],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            _request(port, "GET", "/healthz")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate(timeout=10)
                pytest.fail(f"gunicorn did not start: rc={proc.returncode} {err.decode()[-2000:]}")
            time.sleep(0.05)
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
def healthcheck_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    yield from _serve("healthcheck", "hc-real")


@pytest.fixture
def incver_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    yield from _serve("incver", "incver-real")


def test_incver_is_ready_once_served_and_not_ready_from_the_drain_on(
    incver_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = incver_server
    assert _request(port, "GET", "/readyz")[0] == 200
    status, body = _request(port, "GET", "/drain?seconds=0")
    assert (status, body["status"]) == (200, "stopping")
    status, body = _request(port, "GET", "/readyz")
    assert (status, body["status"], body["reason"]) == (503, "stopping", "preStop")
    assert _request(port, "GET", "/version")[0] == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


@pytest.fixture
def abrupt_incver_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    yield from _serve("incver", "incver-abrupt", **{ON_SIGTERM_ENV: ON_SIGTERM_EXIT})


def _in_flight(port: int, path: str) -> tuple[http.client.HTTPConnection, float]:
    """A request sent and being served (its answer not read yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Connection": "close"})
    return conn, time.monotonic()


def test_sigterm_lets_a_request_in_flight_finish(
    incver_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = incver_server
    conn, _ = _in_flight(port, "/drain?seconds=2")
    time.sleep(0.5)  # the request is in its 2 s sleep in the worker
    proc.send_signal(signal.SIGTERM)
    response = conn.getresponse()
    assert response.status == 200
    assert proc.wait(timeout=15) == 0


def test_sigterm_with_on_sigterm_exit_cuts_a_request_in_flight(
    abrupt_incver_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = abrupt_incver_server
    conn, sent = _in_flight(port, "/drain?seconds=3")
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.getresponse().read()
    # It exits at once, well before the request's 3 s would have passed.
    proc.wait(timeout=15)
    assert time.monotonic() - sent < 2.5


def test_kill_ends_the_whole_server_with_status_1(
    healthcheck_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = healthcheck_server
    status, body = _request(port, "POST", "/kill")
    assert (status, body["pod"]) == (202, "hc-real")
    assert proc.wait(timeout=15) == 1


def test_sigterm_stops_the_server_gracefully_with_status_0(
    healthcheck_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, _ = healthcheck_server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert proc.stderr is not None
    # gunicorn's own log lines are JSON too.
    for line in proc.stderr.read().decode().splitlines():
        assert json.loads(line)["kind"] == "log"


def test_sigwinch_makes_only_the_memhog_master_run_out_of_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from workloads import memhog

    allocated: list[int] = []
    monkeypatch.setattr(memhog, "exhaust_memory", allocated.append)
    arbiter = _Arbiter.__new__(_Arbiter)
    arbiter.app = SimpleNamespace(app_name="memhog")
    arbiter.handle_winch()
    assert allocated == [memhog.allocate_mib()]
    # Any other app: gunicorn's own handling (not daemonized: ignored).
    arbiter.app = SimpleNamespace(app_name="getip")
    arbiter.cfg = SimpleNamespace(daemon=False)
    arbiter.log = SimpleNamespace(debug=lambda *args: None)
    arbiter.handle_winch()
    assert allocated == [memhog.allocate_mib()]

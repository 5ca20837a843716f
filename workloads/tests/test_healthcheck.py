"""healthcheck: infect, cure, kill, unready, ready."""

from __future__ import annotations

import signal

import flask
import pytest

from workloads import healthcheck
from workloads.tests.conftest import wait_until


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    return healthcheck.create_app().test_client()


def test_a_fresh_pod_is_healthy_alive_and_ready(client: flask.testing.FlaskClient) -> None:
    root = client.get("/")
    assert root.status_code == 200
    assert root.json is not None
    assert root.json["healthy"] is True
    assert root.json["pod"] == "test-pod-0"
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_infect_makes_every_check_503_until_cured(client: flask.testing.FlaskClient) -> None:
    infected = client.post("/infect")
    assert infected.status_code == 200
    assert infected.json is not None
    assert infected.json["infected"] is True
    for path in ("/", "/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json is not None
        assert response.json["infected"] is True
    assert client.post("/cure").status_code == 200
    for path in ("/", "/healthz", "/readyz"):
        assert client.get(path).status_code == 200, path


def test_infection_lives_in_the_process_not_across_apps() -> None:
    sick = healthcheck.create_app().test_client()
    sick.post("/infect")
    assert healthcheck.create_app().test_client().get("/healthz").status_code == 200


def test_unready_fails_only_readiness_until_ready(client: flask.testing.FlaskClient) -> None:
    flipped = client.post("/unready")
    assert flipped.status_code == 200
    assert flipped.json is not None
    assert flipped.json["ready"] is False
    readyz = client.get("/readyz")
    assert readyz.status_code == 503
    assert readyz.json is not None
    assert readyz.json["ready"] is False
    assert readyz.json["unready"] is True
    # Alive and serving: liveness must not restart it, and a request that reaches it is answered.
    for path in ("/", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.json is not None
        assert response.json["infected"] is False
    back = client.post("/ready")
    assert back.status_code == 200
    assert back.json is not None
    assert back.json["ready"] is True
    for path in ("/", "/healthz", "/readyz"):
        assert client.get(path).status_code == 200, path


def test_ready_does_not_cure_an_infection(client: flask.testing.FlaskClient) -> None:
    client.post("/infect")
    client.post("/ready")
    for path in ("/", "/healthz", "/readyz"):
        assert client.get(path).status_code == 503, path
    client.post("/unready")
    client.post("/cure")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503


def test_unready_lives_in_the_process_not_across_apps() -> None:
    healthcheck.create_app().test_client().post("/unready")
    assert healthcheck.create_app().test_client().get("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/infect", "/cure", "/kill", "/unready", "/ready"])
def test_actions_are_post_only(client: flask.testing.FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed == {"POST", "OPTIONS"}


def test_kill_answers_202_then_dies(
    client: flask.testing.FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    deaths: list[str] = []
    monkeypatch.setattr(healthcheck, "die", lambda: deaths.append("died"))
    response = client.post("/kill", buffered=True)
    assert response.status_code == 202
    assert response.json is not None
    assert response.json["exit_status"] == 1
    assert wait_until(lambda: deaths == ["died"], timeout_s=2)


def test_die_without_gunicorn_exits_the_process_with_1(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.delenv(healthcheck.MASTER_PID_ENV, raising=False)
    monkeypatch.setattr(healthcheck.os, "_exit", exits.append)
    healthcheck.die()
    assert exits == [1]


def test_die_in_a_gunicorn_worker_asks_the_master_to_halt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setenv(healthcheck.MASTER_PID_ENV, "4242")
    monkeypatch.setattr(healthcheck.os, "getppid", lambda: 4242)
    monkeypatch.setattr(healthcheck.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(healthcheck.os, "_exit", lambda status: pytest.fail("must not exit"))
    healthcheck.die()
    assert sent == [(4242, signal.SIGUSR2)]


def test_die_falls_back_to_exit_when_the_master_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []

    def no_such_process(pid: int, sig: int) -> None:
        raise ProcessLookupError(pid)

    monkeypatch.setenv(healthcheck.MASTER_PID_ENV, "4242")
    monkeypatch.setattr(healthcheck.os, "getppid", lambda: 4242)
    monkeypatch.setattr(healthcheck.os, "kill", no_such_process)
    monkeypatch.setattr(healthcheck.os, "_exit", exits.append)
    healthcheck.die()
    assert exits == [1]


def test_a_stale_master_pid_from_another_parent_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits: list[int] = []
    monkeypatch.setenv(healthcheck.MASTER_PID_ENV, "4242")
    monkeypatch.setattr(healthcheck.os, "getppid", lambda: 1)
    monkeypatch.setattr(healthcheck.os, "kill", lambda pid, sig: pytest.fail("must not signal"))
    monkeypatch.setattr(healthcheck.os, "_exit", exits.append)
    healthcheck.die()
    assert exits == [1]

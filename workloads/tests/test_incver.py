"""incver: which version answered, and readiness that means "can serve"."""

from __future__ import annotations

import pytest

from workloads import incver


@pytest.mark.parametrize("path", ["/", "/version"])
def test_version_and_pod(path: str) -> None:
    response = incver.create_app().test_client().get(path)
    assert response.status_code == 200
    assert response.json == {"version": "v9", "pod": "test-pod-0"}


def test_version_defaults_to_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_VERSION")
    response = incver.create_app().test_client().get("/version")
    assert response.json is not None
    assert response.json["version"] == "dev"


def test_liveness_answers_from_the_start() -> None:
    assert incver.create_app().test_client().get("/healthz").status_code == 200


def lifecycle_of(app: object) -> incver.Lifecycle:
    found = app.extensions[incver.LIFECYCLE_KEY]  # type: ignore[attr-defined]
    assert isinstance(found, incver.Lifecycle)
    return found


def test_readiness_fails_until_the_app_is_booted_then_passes() -> None:
    app = incver.create_app()
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["status"] == "loading"
    assert response.json["pod"] == "test-pod-0"
    assert lifecycle_of(app).boot(app) is True
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["status"] == "ready"


def test_boot_needs_the_version_route_to_answer() -> None:
    app = incver.create_app()

    @app.before_request
    def broken() -> None:
        raise RuntimeError("not loaded after all")

    assert lifecycle_of(app).boot(app) is False
    assert lifecycle_of(app).state == incver.LOADING


def test_drain_fails_readiness_at_once_and_keeps_serving() -> None:
    slept: list[float] = []
    app = incver.create_app(sleep=slept.append)
    lifecycle_of(app).boot(app)
    client = app.test_client()
    response = client.get("/drain?seconds=2")
    assert response.status_code == 200
    assert response.json is not None
    assert (response.json["status"], response.json["drained_s"]) == ("stopping", 2)
    assert slept == [2]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json is not None
    assert (ready.json["status"], ready.json["reason"]) == ("stopping", "preStop")
    # Still serving: requests the Service routes here while every node catches up are answered.
    assert client.get("/version").status_code == 200


def test_readiness_fails_while_the_drain_is_still_sleeping() -> None:
    during: list[int] = []
    clients = []
    app = incver.create_app(sleep=lambda _: during.append(clients[0].get("/readyz").status_code))
    lifecycle_of(app).boot(app)
    clients.append(app.test_client())
    assert clients[0].get("/drain?seconds=1").status_code == 200
    assert during == [503]


def test_a_stopped_app_stays_stopped_and_keeps_the_first_reason() -> None:
    app = incver.create_app()
    lifecycle = lifecycle_of(app)
    lifecycle.boot(app)
    lifecycle.stop("SIGTERM")
    lifecycle.stop("preStop")
    assert lifecycle.boot(app) is True
    assert (lifecycle.state, lifecycle.stop_reason) == (incver.STOPPING, "SIGTERM")


@pytest.mark.parametrize("seconds", ["-1", "6", "x", "1.5"])
def test_drain_seconds_are_bounded(seconds: str) -> None:
    slept: list[float] = []
    app = incver.create_app(sleep=slept.append)
    response = app.test_client().get(f"/drain?seconds={seconds}")
    assert response.status_code == 400
    assert slept == []
    assert lifecycle_of(app).state == incver.LOADING


def test_put_version_is_405() -> None:
    assert incver.create_app().test_client().put("/version").status_code == 405


def test_never_ready_fails_readiness_for_good_and_keeps_serving() -> None:
    app = incver.create_app(env={incver.NEVER_READY_ENV: "1"})
    client = app.test_client()
    assert lifecycle_of(app).boot(app) is True
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["status"] == incver.NEVER_READY
    assert client.get("/healthz").status_code == 200
    assert client.get("/version").status_code == 200


@pytest.mark.parametrize("value", ["", "0", "true"])
def test_only_never_ready_1_changes_readiness(value: str) -> None:
    app = incver.create_app(env={incver.NEVER_READY_ENV: value})
    assert lifecycle_of(app).boot(app) is True
    assert app.test_client().get("/readyz").status_code == 200

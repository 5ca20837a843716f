"""incver: which version answered."""

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


@pytest.mark.parametrize("path", ["/readyz", "/healthz"])
def test_probes_answer_200(path: str) -> None:
    assert incver.create_app().test_client().get(path).status_code == 200


def test_put_version_is_405() -> None:
    assert incver.create_app().test_client().put("/version").status_code == 405

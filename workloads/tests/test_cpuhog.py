"""cpuhog: burns a core for the asked time, refuses nonsense."""

from __future__ import annotations

import pytest

from workloads import cpuhog


def test_burns_for_roughly_the_asked_time() -> None:
    response = cpuhog.create_app().test_client().get("/?ms=50")
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["ms"] == 50
    assert 50 <= body["wall_ms_measured"] < 50 + 250
    # CPU time can fall short of wall time on a busy machine, but a busy loop is mostly CPU.
    assert 0 < body["busy_ms_measured"] <= body["wall_ms_measured"] + 5
    assert body["pod"] == "test-pod-0"


def test_default_is_one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    monkeypatch.setattr(cpuhog, "burn", lambda ms: (asked.append(ms), (float(ms), float(ms)))[1])
    response = cpuhog.create_app().test_client().get("/")
    assert response.status_code == 200
    assert asked == [1000]


@pytest.mark.parametrize("ms", ["0", "10001", "-5", "abc", "1.5", ""])
def test_bad_ms_is_400_with_a_reason(ms: str) -> None:
    response = cpuhog.create_app().test_client().get("/", query_string={"ms": ms})
    assert response.status_code == 400
    assert response.json is not None
    assert "ms must be an integer from 1 to 10000" in response.json["reason"]


def test_burn_returns_wall_and_cpu_time() -> None:
    wall_ms, cpu_ms = cpuhog.burn(20)
    assert wall_ms >= 20
    assert cpu_ms > 0

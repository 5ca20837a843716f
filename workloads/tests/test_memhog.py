"""memhog: POST /oom, the count of failing starts on the state volume, the allocation."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from workloads import memhog
from workloads.healthcheck import MASTER_PID_ENV
from workloads.tests.conftest import wait_until


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(memhog.STATE_DIR_ENV, str(tmp_path))
    return tmp_path


def test_it_answers_with_the_pod_and_passes_its_probes(state: Path) -> None:
    client = memhog.create_app(on_oom=lambda: None).test_client()
    root = client.get("/")
    assert root.status_code == 200
    assert root.json is not None
    assert root.json["pod"] == "test-pod-0"
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_oom_records_the_failing_starts_then_runs_out_of_memory_after_answering(
    state: Path,
) -> None:
    fired: list[bool] = []
    client = memhog.create_app(on_oom=lambda: fired.append(True)).test_client()
    response = client.post("/oom?starts=2")
    assert response.status_code == 202
    assert response.json is not None
    assert response.json["failing_starts"] == 2
    assert memhog.starts_left(state) == 2
    response.close()
    assert wait_until(lambda: fired == [True], timeout_s=5.0)


@pytest.mark.parametrize("query", ["starts=9", "starts=-1", "starts=x"])
def test_oom_refuses_a_count_out_of_bounds(state: Path, query: str) -> None:
    fired: list[bool] = []
    client = memhog.create_app(on_oom=lambda: fired.append(True)).test_client()
    assert client.post(f"/oom?{query}").status_code == 400
    assert memhog.starts_left(state) == 0
    assert not fired


def test_each_start_takes_one_failing_start_until_none_is_left(state: Path) -> None:
    memhog.set_starts(state, 2)
    allocated: list[int] = []
    assert memhog.before_serving(state, allocated.append) is True
    assert memhog.starts_left(state) == 1
    assert memhog.before_serving(state, allocated.append) is True
    assert memhog.before_serving(state, allocated.append) is False
    assert memhog.starts_left(state) == 0
    assert allocated == [memhog.DEFAULT_ALLOCATE_MIB, memhog.DEFAULT_ALLOCATE_MIB]


def test_a_missing_or_garbled_count_means_serve(state: Path) -> None:
    assert memhog.starts_left(state) == 0
    (state / memhog.STARTS_FILE).write_text("many\n")
    assert memhog.starts_left(state) == 0
    assert memhog.before_serving(state, lambda mib: pytest.fail("allocated")) is False


def test_the_allocation_stops_at_its_bound_when_nothing_kills_it() -> None:
    assert memhog.exhaust_memory(16, chunk_mib=8) == 16


def test_the_allocation_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memhog.ALLOCATE_MIB_ENV, "200")
    assert memhog.allocate_mib() == 200
    monkeypatch.setenv(memhog.ALLOCATE_MIB_ENV, "lots")
    assert memhog.allocate_mib() == memhog.DEFAULT_ALLOCATE_MIB


def test_a_worker_asks_its_master_to_run_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setenv(MASTER_PID_ENV, "4242")
    monkeypatch.setattr(os, "getppid", lambda: 4242)
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    memhog.ask_master()
    assert sent == [(4242, signal.SIGWINCH)]


def test_the_route_is_not_on_the_frontend() -> None:
    from workloads import frontend

    assert "memhog" not in frontend.EXPERIMENTS
    rules = {rule.rule for rule in frontend.create_app().url_map.iter_rules()}
    assert not [rule for rule in rules if "oom" in rule or "memhog" in rule]

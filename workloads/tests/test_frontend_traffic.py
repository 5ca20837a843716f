"""frontend_traffic: every run is bounded in count and time and stops by itself."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from workloads.frontend_traffic import Bounds, Run, Slot


class Pods:
    """A fetch that answers from three pods in turn (thread-safe)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            n = self.calls
            self.calls += 1
        return self.status, {"pod": f"pod-{n % 3}", "version": "v1"}


def test_a_run_stops_at_its_count_and_counts_answers_per_pod() -> None:
    fetch = Pods()
    run = Run("t", fetch, Bounds(count=30, duration_s=60, concurrency=3)).start()
    assert run.join(10)
    result = run.to_json()
    assert fetch.calls == 30
    assert (result["sent"], result["ok"], result["failed"]) == (30, 30, 0)
    assert result["byPod"] == {"pod-0": 10, "pod-1": 10, "pod-2": 10}
    assert result["byVersion"] == {"v1": 30}
    assert result["running"] is False
    assert result["stoppedBecause"] == "count reached"


def test_a_run_stops_when_its_time_is_up() -> None:
    ticks = itertools.count()
    clock_lock = threading.Lock()

    def clock() -> float:
        with clock_lock:
            return float(next(ticks))  # every look at the clock is a second later

    run = Run("t", Pods(), Bounds(count=1000, duration_s=10, concurrency=1), clock=clock)
    run.start()
    assert run.join(10)
    result = run.to_json()
    assert 1 <= result["sent"] < 10
    assert result["stoppedBecause"] == "time is up"


def test_stop_ends_a_run_after_the_requests_in_flight() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow() -> tuple[int, dict[str, Any]]:
        started.set()
        release.wait(10)
        return 200, {"pod": "p", "version": "v1"}

    run = Run("t", slow, Bounds(count=1000, duration_s=600, concurrency=2)).start()
    assert started.wait(5)
    run.stop()
    release.set()
    assert run.join(10)
    result = run.to_json()
    assert result["sent"] == 2
    assert result["stoppedBecause"] == "stopped"


def test_failures_are_counted_with_the_last_error() -> None:
    calls = itertools.count()

    def flaky() -> tuple[int, dict[str, Any]]:
        n = next(calls)
        if n % 3 == 0:
            raise ConnectionRefusedError(111, "refused")
        if n % 3 == 1:
            return 503, {"pod": "sick", "version": "v1"}
        return 200, {"pod": "ok", "version": "v2"}

    run = Run("t", flaky, Bounds(count=9, duration_s=60)).start()
    assert run.join(10)
    result = run.to_json()
    assert (result["ok"], result["failed"]) == (3, 6)
    assert result["byPod"] == {"ok": 3}
    assert result["lastError"] in ("HTTP 503", "ConnectionRefusedError: [Errno 111] refused")


def test_every_answer_is_announced() -> None:
    changes: list[int] = []
    run = Run("t", Pods(), Bounds(count=5, duration_s=60), on_change=lambda: changes.append(1))
    run.start().join(10)
    assert len(changes) >= 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0, "duration_s": 1},
        {"count": 10, "duration_s": 0},
        {"count": 10, "duration_s": 7200},
        {"count": 10, "duration_s": 1, "concurrency": 0},
        {"count": 10, "duration_s": 1, "concurrency": 64},
        {"count": 10, "duration_s": 1, "interval_s": -1},
    ],
)
def test_an_unbounded_run_cannot_be_made(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"unbounded|bad"):
        Bounds(**kwargs)


def test_a_slot_holds_one_run_and_replacing_stops_the_old_one() -> None:
    release = threading.Event()

    def slow() -> tuple[int, dict[str, Any]]:
        release.wait(10)
        return 200, {"pod": "p", "version": "v1"}

    slot = Slot()
    assert slot.to_json() is None
    first = slot.replace(lambda: Run("a", slow, Bounds(count=100, duration_s=60)))
    second = slot.replace(lambda: Run("b", slow, Bounds(count=100, duration_s=60)))
    release.set()
    assert first.join(10)
    assert first.to_json()["stoppedBecause"] == "replaced"
    assert slot.run is second
    assert slot.stop() is second
    assert second.join(10)
    assert slot.to_json()["running"] is False  # type: ignore[index]

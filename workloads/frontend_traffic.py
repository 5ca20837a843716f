"""Bounded traffic from the frontend to a Service: every run stops by itself.

A run sends requests through one ``fetch`` callable (a new connection per request, see
``workloads.frontend.fetch``) from ``concurrency`` threads, until ``count`` requests were sent,
``duration_s`` passed, or ``stop()`` was called, whichever comes first. It counts answers per pod
and per version, and failures (no answer, or a status >= 500).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: One request: (HTTP status, JSON body); raises an exception when there was no answer.
Fetch = Callable[[], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Bounds:
    """How much one run may send: at most ``count`` requests within ``duration_s`` seconds."""

    count: int
    duration_s: float
    concurrency: int = 1
    #: Pause between two requests of one thread (0: back to back).
    interval_s: float = 0.0
    #: With an upstream down: after a failure a thread pauses ``backoff_s``, doubled with each
    #: failure in a row up to ``max_backoff_s`` (0: no pause) ...
    backoff_s: float = 0.0
    max_backoff_s: float = 5.0
    #: ... and the run gives up after this many failures in a row (0: never).
    give_up_after: int = 0

    def __post_init__(self) -> None:
        if not (1 <= self.count <= 100_000 and 0 < self.duration_s <= 3600):
            raise ValueError(f"unbounded run: {self}")
        if not 1 <= self.concurrency <= 16 or self.interval_s < 0:
            raise ValueError(f"bad concurrency or interval: {self}")
        if self.backoff_s < 0 or self.max_backoff_s < self.backoff_s or self.give_up_after < 0:
            raise ValueError(f"bad backoff: {self}")

    def pause_after(self, failures_in_a_row: int) -> float:
        """How long a thread waits before its next request, after this many failures in a row."""
        if not failures_in_a_row or not self.backoff_s:
            return self.interval_s
        return max(
            self.interval_s,
            min(self.max_backoff_s, self.backoff_s * 2.0 ** (failures_in_a_row - 1)),
        )


class Run:
    """One bounded run of requests (see the module doc)."""

    def __init__(
        self,
        name: str,
        fetch: Fetch,
        bounds: Bounds,
        *,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.bounds = bounds
        self._fetch = fetch
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = 0
        self.started_at = wall()
        self._started = clock()
        self._ended: float | None = None
        self.sent = 0
        self.ok = 0
        self.failed = 0
        self.by_pod: Counter[str] = Counter()
        self.by_version: Counter[str] = Counter()
        self.last_error: str | None = None
        self.stopped_because: str | None = None
        self.failures_in_a_row = 0

    # Lifecycle.

    def start(self) -> Run:
        """Start the threads (returns self)."""
        with self._lock:
            self._running = self.bounds.concurrency
        for index in range(self.bounds.concurrency):
            thread = threading.Thread(target=self._worker, name=f"{self.name}-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, because: str = "stopped") -> None:
        """Ask the threads to stop after their current request."""
        with self._lock:
            if self.stopped_because is None:
                self.stopped_because = because
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Wait (bounded) for every thread; True when all have ended."""
        deadline = self._clock() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock()))
        return not self.running

    @property
    def running(self) -> bool:
        """True while some thread still works."""
        with self._lock:
            return self._running > 0

    # The work.

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            if self.sent >= self.bounds.count:
                self.stopped_because = self.stopped_because or "count reached"
                return False
            if self._clock() - self._started >= self.bounds.duration_s:
                self.stopped_because = self.stopped_because or "time is up"
                return False
            self.sent += 1
            return True

    def _record(self, status: int | None, body: dict[str, Any] | None, error: str | None) -> int:
        """Count one answer; returns the failures in a row so far."""
        with self._lock:
            if status is not None and status < 500 and body is not None:
                self.ok += 1
                self.by_pod[str(body.get("pod", "?"))] += 1
                self.by_version[str(body.get("version", "?"))] += 1
                self.failures_in_a_row = 0
            else:
                self.failed += 1
                self.failures_in_a_row += 1
                self.last_error = error or f"HTTP {status}"
                limit = self.bounds.give_up_after
                if limit and self.failures_in_a_row >= limit and self.stopped_because is None:
                    self.stopped_because = (
                        f"gave up after {self.failures_in_a_row} failures in a row "
                        f"(last: {self.last_error})"
                    )
                    self._stop.set()
            in_a_row = self.failures_in_a_row
        self._on_change()
        return in_a_row

    def _worker(self) -> None:
        try:
            while self._take():
                try:
                    status, body = self._fetch()
                except Exception as exc:
                    in_a_row = self._record(None, None, f"{type(exc).__name__}: {exc}"[:300])
                else:
                    in_a_row = self._record(status, body, None)
                pause = self.bounds.pause_after(in_a_row)
                if pause and self._stop.wait(pause):
                    break
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    self._ended = self._clock()
                    self.stopped_because = self.stopped_because or "stopped"
            self._on_change()

    def to_json(self) -> dict[str, Any]:
        """What the page shows about the run."""
        with self._lock:
            end = self._ended if self._ended is not None else self._clock()
            elapsed = end - self._started
            return {
                "name": self.name,
                "running": self._running > 0,
                "startedAt": self.started_at,
                "elapsed_s": round(elapsed, 1),
                "left_s": round(max(0.0, self.bounds.duration_s - elapsed), 1)
                if self._running
                else 0,
                "limits": {
                    "count": self.bounds.count,
                    "duration_s": self.bounds.duration_s,
                    "concurrency": self.bounds.concurrency,
                },
                "sent": self.sent,
                "ok": self.ok,
                "failed": self.failed,
                "byPod": dict(sorted(self.by_pod.items())),
                "byVersion": dict(sorted(self.by_version.items())),
                "lastError": self.last_error,
                "stoppedBecause": None if self._running else self.stopped_because,
            }


class Slot:
    """At most one run of a kind at a time (the cpuhog load, the incver traffic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.run: Run | None = None

    def replace(self, make: Callable[[], Run]) -> Run:
        """Stop the current run (if any) and start a new one."""
        with self._lock:
            if self.run is not None:
                self.run.stop("replaced")
            self.run = make().start()
            return self.run

    def stop(self, join_s: float = 0.0) -> Run | None:
        """Stop the current run, if any, and wait up to ``join_s`` for its threads to finish
        their last request (so the answer says truthfully whether it still runs); returns it."""
        with self._lock:
            run = self.run
            if run is not None:
                run.stop()
        if run is not None and join_s > 0:
            run.join(join_s)
        return run

    def to_json(self) -> dict[str, Any] | None:
        """The current (or last) run, for the page."""
        run = self.run
        return run.to_json() if run is not None else None

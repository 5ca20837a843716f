"""cpuhog: each request burns one CPU core for a while (the autoscaling witness)."""

from __future__ import annotations

import time

import flask

from workloads.common import answer, int_param, new_app

DEFAULT_MS = 1000
MIN_MS = 1
MAX_MS = 10_000


def burn(ms: int) -> tuple[float, float]:
    """Busy-loop for ``ms`` milliseconds of wall time; return (wall ms, CPU ms of this thread).

    The CPU time comes out lower than the wall time when the container is throttled by its CPU
    limit or shares the core, which is worth seeing.
    """
    wall_start = time.perf_counter()
    cpu_start = time.thread_time()
    deadline = wall_start + ms / 1000
    x = 0
    while time.perf_counter() < deadline:
        for i in range(1000):
            x ^= i * i
    wall_ms = (time.perf_counter() - wall_start) * 1000
    cpu_ms = (time.thread_time() - cpu_start) * 1000
    return wall_ms, cpu_ms


def create_app() -> flask.Flask:
    """``GET /?ms=N`` burns N ms (1..10000, default 1000) -> {"ms", "busy_ms_measured", ...}."""
    app = new_app("cpuhog")

    @app.get("/")
    def index() -> flask.Response:
        ms = int_param("ms", DEFAULT_MS, MIN_MS, MAX_MS)
        wall_ms, cpu_ms = burn(ms)
        return answer(
            {
                "ms": ms,
                "busy_ms_measured": round(cpu_ms, 3),
                "wall_ms_measured": round(wall_ms, 3),
            }
        )

    return app

"""healthcheck: a pod that can be made sick, unready or killed on request (the self-healing and
readiness-gating witness).

The sickness lives in process memory on purpose: only a container restart (which kubelet does once
the liveness probe fails) cures it, unless someone calls ``POST /cure``. The app must therefore run
in one gunicorn worker process (threads are fine), see ``workloads.__main__``.

``POST /unready`` fails only ``/readyz`` (503) until ``POST /ready``: ``/`` and ``/healthz`` stay
200, so the pod leaves the Service's endpoints while it keeps running and is never restarted
(readiness is not liveness). These routes are reached through the API server's pod proxy, never
from the frontend's page.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field

import flask

from workloads.common import answer, new_app

# Time between answering ``POST /kill`` and exiting: the 202 must leave the socket first.
KILL_DELAY_S = 0.2
KILL_EXIT_STATUS = 1
# Set by ``workloads.__main__`` in the gunicorn master before it forks the worker: the worker asks
# the master (its parent) to halt with exit status 1, so the whole container exits 1. A lone worker
# exiting would merely be replaced by gunicorn and kubelet would never see a failure.
MASTER_PID_ENV = "KUBE_ALIVE_GUNICORN_MASTER_PID"
HALT_SIGNAL = signal.SIGUSR2


@dataclass
class HealthState:
    """Whether this process has been infected; shared by the request threads of one process."""

    infected: bool = False
    #: Set by ``POST /unready``: only the readiness check fails.
    unready: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, infected: bool) -> None:
        """Infect (True) or cure (False)."""
        with self.lock:
            self.infected = infected

    def set_ready(self, ready: bool) -> None:
        """Report ready (True) or not ready (False) on ``/readyz``, alive either way."""
        with self.lock:
            self.unready = not ready


def _state() -> HealthState:
    state: HealthState = flask.current_app.extensions["kube_alive_health"]
    return state


def die() -> None:
    """End the container with exit status 1: through the gunicorn master if there is one."""
    master = os.environ.get(MASTER_PID_ENV)
    if master is not None and master == str(os.getppid()):
        try:
            os.kill(int(master), HALT_SIGNAL)
        except OSError:
            os._exit(KILL_EXIT_STATUS)
        return
    os._exit(KILL_EXIT_STATUS)


def _die_soon() -> None:
    timer = threading.Timer(KILL_DELAY_S, die)
    timer.daemon = True
    timer.start()


def create_app() -> flask.Flask:
    """``GET /``, ``/healthz``, ``/readyz``; ``POST /infect``, ``/cure``, ``/kill``, ``/unready``,
    ``/ready``."""
    app = new_app("healthcheck", health_routes=False)
    app.extensions["kube_alive_health"] = HealthState()

    def _health(field_name: str) -> flask.Response:
        infected = _state().infected
        status = 503 if infected else 200
        return answer(
            {field_name: not infected, "infected": infected},
            status=status,
        )

    @app.get("/")
    def index() -> flask.Response:
        return _health("healthy")

    @app.get("/healthz")
    def healthz() -> flask.Response:
        return _health("alive")

    @app.get("/readyz")
    def readyz() -> flask.Response:
        state = _state()
        if state.unready and not state.infected:
            return answer({"ready": False, "infected": False, "unready": True}, status=503)
        return _health("ready")

    @app.post("/infect")
    def infect() -> flask.Response:
        _state().set(True)
        return answer({"infected": True})

    @app.post("/cure")
    def cure() -> flask.Response:
        _state().set(False)
        return answer({"infected": False})

    @app.post("/unready")
    def unready() -> flask.Response:
        _state().set_ready(False)
        return answer({"ready": False})

    @app.post("/ready")
    def ready() -> flask.Response:
        _state().set_ready(True)
        return answer({"ready": True})

    @app.post("/kill")
    def kill() -> flask.Response:
        response = answer(
            {"killing": True, "exit_status": KILL_EXIT_STATUS, "in_s": KILL_DELAY_S},
            status=202,
        )
        # Start the countdown only once the answer has been handed to the server.
        response.call_on_close(_die_soon)
        return response

    return app

"""incver: answers with the version baked into its image (the rolling-update witness).

The version is ``APP_VERSION``, set from the image build argument ``VERSION``; v1 and v2 differ in
nothing else.

Readiness means "can serve, and should get new requests": ``/readyz`` answers 503 until the server
has loaded the app and the app has answered its own ``/version`` once (`Lifecycle.boot`, called by
the server when its worker has booted: ``workloads.__main__``), and 503 again from the moment the
pod begins to stop: the preStop hook (``GET /drain``) or SIGTERM, whichever comes first. The
routes keep answering while the pod drains, so requests that the Service still routes here (its
endpoints change a moment later on every node) are served, not refused.

``NEVER_READY=1`` in its environment makes a version that starts and serves but never becomes
Ready: ``/readyz`` answers 503 for good (liveness keeps passing, so it is not restarted either).
It is the broken version of the failed-rollout scenario (suite/behaviours/failed_rollout), set
in the pod template the suite rolls to; nothing reaches it over HTTP.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping

import flask

from workloads.common import answer, identity, int_param, new_app

#: Where the app keeps its `Lifecycle` (``app.extensions``); the server looks it up there.
LIFECYCLE_KEY = "kube_alive_lifecycle"
#: ``GET /drain?seconds=N``: N is at most this (it must fit in the pod's grace period, 20 s, with
#: gunicorn's graceful timeout after it: manifests/incver, workloads/__main__.py).
MAX_DRAIN_S = 5
DEFAULT_DRAIN_S = 2

LOADING, READY, STOPPING = "loading", "ready", "stopping"
#: The environment variable that makes this version never Ready (any other value: normal).
NEVER_READY_ENV = "NEVER_READY"
NEVER_READY = "never-ready"


class Lifecycle:
    """Whether this process should get new requests: after `boot`, and until `stop`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._booted = False
        self._stop_reason: str | None = None

    @property
    def state(self) -> str:
        """`loading` (not booted yet), `ready`, or `stopping` (once stopped, for good)."""
        with self._lock:
            if self._stop_reason is not None:
                return STOPPING
            return READY if self._booted else LOADING

    @property
    def stop_reason(self) -> str | None:
        """What began the stop (`preStop`, `SIGTERM`), or None."""
        with self._lock:
            return self._stop_reason

    def boot(self, app: flask.Flask) -> bool:
        """Mark the app loaded once it answers its own ``/version`` (in-process, no socket);
        returns whether it did. A stopped app stays stopped."""
        with app.test_request_context("/version"):
            response = app.full_dispatch_request()
        if response.status_code != 200:
            return False
        with self._lock:
            self._booted = True
        return True

    def stop(self, reason: str) -> None:
        """The pod begins to stop: readiness fails from now on (the first reason is kept)."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason


def create_app(
    sleep: Callable[[float], None] = time.sleep, env: Mapping[str, str] | None = None
) -> flask.Flask:
    """``GET /`` and ``GET /version`` -> {"version", "pod"}; ``/healthz`` (the process answers),
    ``/readyz`` (booted and not stopping, never with ``NEVER_READY=1``) and ``/drain`` (the
    preStop hook)."""
    app = new_app("incver", health_routes=False)
    lifecycle = Lifecycle()
    never_ready = (os.environ if env is None else env).get(NEVER_READY_ENV) == "1"
    app.extensions[LIFECYCLE_KEY] = lifecycle

    @app.get("/")
    @app.get("/version")
    def version() -> flask.Response:
        ident = identity()
        return flask.jsonify({"version": ident.version, "pod": ident.pod})

    @app.get("/healthz")
    def healthz() -> flask.Response:
        return answer({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> flask.Response:
        if never_ready:
            return answer({"status": NEVER_READY, "reason": f"{NEVER_READY_ENV}=1"}, status=503)
        state = lifecycle.state
        if state == READY:
            return answer({"status": state})
        return answer({"status": state, "reason": lifecycle.stop_reason or ""}, status=503)

    @app.get("/drain")
    def drain() -> flask.Response:
        # The kubelet calls this as the preStop hook and sends SIGTERM only once it returns: the
        # pod stops being ready at once and keeps serving for `seconds`, while every node's
        # service proxy catches up with the endpoint change. A GET, because that is what a
        # preStop httpGet hook sends; it only ever makes a pod stop sooner.
        seconds = int_param("seconds", DEFAULT_DRAIN_S, 0, MAX_DRAIN_S)
        lifecycle.stop("preStop")
        sleep(seconds)
        return answer({"status": lifecycle.state, "drained_s": seconds})

    return app

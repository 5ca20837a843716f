"""What every workload shares: who am I, JSON answers and errors, JSON logs, parameter parsing."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import flask
from werkzeug.exceptions import BadRequest, HTTPException

# Kubelet probes arrive every second per pod; logging each successful one would drown the
# requests that matter, so probe paths are logged only when they do not answer 2xx.
_PROBE_PATHS = frozenset({"/healthz", "/readyz"})
_DIGITS = re.compile(r"[0-9]+")
_log_lock = threading.Lock()
# What the kernel calls this machine (x86_64, aarch64, armv7l): /healthz says it, so one request
# tells which image of a multi-platform index a node runs.
MACHINE = platform.machine()


@dataclass(frozen=True)
class Identity:
    """Who serves a request: set by the downward API (pod, ip, node) and the image (version)."""

    pod: str
    ip: str | None
    node: str | None
    version: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Identity:
        """Read POD_NAME, POD_IP, NODE_NAME and APP_VERSION; the pod falls back to the hostname."""
        env = os.environ if env is None else env
        return cls(
            pod=env.get("POD_NAME") or socket.gethostname(),
            ip=env.get("POD_IP") or None,
            node=env.get("NODE_NAME") or None,
            version=env.get("APP_VERSION") or "dev",
        )


def identity() -> Identity:
    """The identity of the app serving the current request."""
    ident: Identity = flask.current_app.extensions["kube_alive_identity"]
    return ident


def answer(payload: Mapping[str, Any] | None = None, status: int = 200) -> flask.Response:
    """A JSON answer that always says which pod and version produced it."""
    ident = identity()
    body: dict[str, Any] = {"pod": ident.pod, "version": ident.version}
    if payload:
        body.update(payload)
    response = flask.jsonify(body)
    response.status_code = status
    return response


def bad_request(reason: str) -> BadRequest:
    """A 400 whose JSON body carries ``reason``; raise it."""
    return BadRequest(description=reason)


def int_param(name: str, default: int, low: int, high: int) -> int:
    """Query parameter ``name`` as a plain decimal integer in [low, high], else a 400."""
    raw = flask.request.args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or len(raw) > 9:
        raise bad_request(f"{name} must be an integer from {low} to {high}, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise bad_request(f"{name} must be an integer from {low} to {high}, got {value}")
    return value


def log_json(record: Mapping[str, Any]) -> None:
    """Write one JSON log line to stdout (whole lines, even from many threads)."""
    line = json.dumps(record, separators=(",", ":"), default=str)
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def new_app(name: str, *, health_routes: bool = True) -> flask.Flask:
    """A Flask app with JSON errors, a JSON access log and (by default) /healthz and /readyz.

    ``name`` is the workload's name; the module name is used as the Flask import name.
    """
    app = flask.Flask(f"workloads.{name}")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["KUBE_ALIVE_APP"] = name
    app.extensions["kube_alive_identity"] = Identity.from_env()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        # Keep the exception's own headers (Allow on a 405) and replace its HTML body with JSON.
        response = answer(
            {
                "error": exc.name,
                "reason": exc.description or exc.name,
                "status": exc.code,
            },
            status=exc.code or 500,
        )
        original = exc.get_response()
        for key, value in original.headers.items():
            if key.lower() not in {"content-type", "content-length"}:
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> flask.Response:
        app.logger.exception("unhandled error")
        return answer(
            {
                "error": "Internal Server Error",
                "reason": f"{type(exc).__name__}",
                "status": 500,
            },
            status=500,
        )

    @app.before_request
    def _start_clock() -> None:
        flask.g.kube_alive_start = time.perf_counter()

    @app.after_request
    def _access_log(response: flask.Response) -> flask.Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        request = flask.request
        if request.path in _PROBE_PATHS and response.status_code < 300:
            return response
        start: float = flask.g.get("kube_alive_start", time.perf_counter())
        record: dict[str, Any] = {
            "ts": time.time(),
            "kind": "access",
            "app": name,
            "pod": identity().pod,
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "status": response.status_code,
            "remote": request.remote_addr,
        }

        def _log_on_close() -> None:
            # Called once the body has been sent, so a streamed answer logs its full duration.
            record["duration_ms"] = round((time.perf_counter() - start) * 1000, 3)
            log_json(record)

        response.call_on_close(_log_on_close)
        return response

    if health_routes:

        @app.get("/healthz")
        def healthz() -> flask.Response:
            return answer({"status": "ok", "machine": MACHINE})

        @app.get("/readyz")
        def readyz() -> flask.Response:
            return answer({"status": "ok"})

    return app


class JsonFormatter(logging.Formatter):
    """Formats gunicorn's and the apps' own log records as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": record.created,
            "kind": "log",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, separators=(",", ":"), default=str)

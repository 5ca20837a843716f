"""prober: drives HTTP traffic from inside the cluster and streams one record per request.

``POST /probe`` with a JSON object (see ``ProbeSpec``) answers ``application/x-ndjson``: one line
per finished request, then one summary line. Every request opens a new TCP connection and asks the
server to close it: a keep-alive connection sticks to one pod and would hide load balancing.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import flask

from workloads.common import answer, bad_request, identity, new_app

# Enough for the JSON any workload answers; a bigger body is cut, not an error.
MAX_BODY_BYTES = 64 * 1024
MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class ProbeSpec:
    """One run: at most ``count`` requests and at most ``duration_s`` seconds, whichever ends first.

    Requests started before the deadline are allowed to finish (each within ``timeout_s``).
    """

    url: str
    host: str
    port: int
    target: str
    count: int = 100
    concurrency: int = 1
    duration_s: float = 60.0
    interval_ms: int = 0
    timeout_s: float = 2.0

    @classmethod
    def parse(cls, body: object) -> ProbeSpec:
        """Validate a request body; raises a 400 with the reason."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        known = {"url", "count", "concurrency", "duration_s", "interval_ms", "timeout_s"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise bad_request(f"unknown field(s): {', '.join(unknown)}")
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise bad_request("url is required and must be a string")
        host, port, target = _split_url(url)
        return cls(
            url=url,
            host=host,
            port=port,
            target=target,
            count=_int_field(body, "count", 100, 1, 20_000),
            concurrency=_int_field(body, "concurrency", 1, 1, 32),
            duration_s=_positive_float_field(body, "duration_s", 60.0, 600.0),
            interval_ms=_int_field(body, "interval_ms", 0, 0, 10_000),
            timeout_s=_positive_float_field(body, "timeout_s", 2.0, 30.0),
        )


def _split_url(url: str) -> tuple[str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        raise bad_request(f"url is not a valid URL: {exc}") from None
    if parts.scheme != "http":
        raise bad_request(f"url must start with http://, got {url!r}")
    if not parts.hostname:
        raise bad_request(f"url has no host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise bad_request("url must not carry credentials")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname, port, target


def _int_field(body: Mapping[str, object], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        raise bad_request(f"{name} must be an integer from {low} to {high}, got {value}")
    return value


def _positive_float_field(
    body: Mapping[str, object], name: str, default: float, high: float
) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"{name} must be a number above 0 and at most {high}, got {value!r}")
    number = float(value)
    if not 0 < number <= high:
        raise bad_request(f"{name} must be a number above 0 and at most {high}, got {value}")
    return number


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def probe_once(spec: ProbeSpec, seq: int) -> dict[str, Any]:
    """Send one GET over a fresh connection and describe what happened."""
    record: dict[str, Any] = {
        "seq": seq,
        "start": time.time(),
        "end": None,
        "status": None,
        "ok": False,
        "pod": None,
        "version": None,
        "error": None,
    }
    conn = http.client.HTTPConnection(spec.host, spec.port, timeout=spec.timeout_s)
    try:
        conn.request(
            "GET",
            spec.target,
            headers={"Connection": "close", "Accept": "application/json"},
        )
        response = conn.getresponse()
        body = response.read(MAX_BODY_BYTES)
        record["status"] = response.status
        record["ok"] = 200 <= response.status < 300
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("pod", "version"):
                if isinstance(data.get(key), str):
                    record[key] = data[key]
    except (OSError, http.client.HTTPException) as exc:
        record["error"] = _short_error(exc)
    finally:
        conn.close()
        record["end"] = time.time()
    return record


class _Run:
    """The worker threads of one probe run and the queue their records arrive on."""

    _DONE = object()

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.stop = threading.Event()
        self.records: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._next_seq = 0
        self._deadline = time.monotonic() + spec.duration_s

    def _take_seq(self) -> int | None:
        if self.stop.is_set() or time.monotonic() >= self._deadline:
            return None
        with self._lock:
            if self._next_seq >= self.spec.count:
                return None
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def _work(self) -> None:
        try:
            while (seq := self._take_seq()) is not None:
                self.records.put(probe_once(self.spec, seq))
                if self.spec.interval_ms and self.stop.wait(self.spec.interval_ms / 1000):
                    break
        finally:
            self.records.put(self._DONE)

    def start(self) -> None:
        """Start the workers."""
        for n in range(self.spec.concurrency):
            threading.Thread(target=self._work, name=f"probe-{n}", daemon=True).start()

    def results(self) -> Iterator[dict[str, Any]]:
        """Records as they finish, until every worker is done."""
        running = self.spec.concurrency
        while running:
            item = self.records.get()
            if item is self._DONE:
                running -= 1
                continue
            assert isinstance(item, dict)
            yield item


def _line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def stream(run: _Run, prober: Mapping[str, str]) -> Iterator[bytes]:
    """NDJSON lines for ``run``; closing the iterator (client gone) stops the run."""
    started = time.monotonic()
    sent = ok = 0
    by_pod: Counter[str] = Counter()
    by_version: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    run.start()
    try:
        for record in run.results():
            sent += 1
            ok += record["ok"]
            if record["pod"] is not None:
                by_pod[record["pod"]] += 1
            if record["version"] is not None:
                by_version[record["version"]] += 1
            if record["error"] is not None:
                errors[str(record["error"]).split(":", 1)[0]] += 1
            yield _line(record)
        summary = {
            "sent": sent,
            "ok": ok,
            "failed": sent - ok,
            "by_pod": dict(by_pod),
            "by_version": dict(by_version),
            "errors": dict(errors),
            "duration_s": round(time.monotonic() - started, 6),
            "prober": dict(prober),
        }
        yield _line({"summary": summary})
    finally:
        run.stop.set()


def create_app() -> flask.Flask:
    """``POST /probe`` streams NDJSON records; ``GET /healthz``, ``GET /readyz``."""
    app = new_app("prober")

    @app.post("/probe")
    def probe() -> flask.Response:
        spec = ProbeSpec.parse(flask.request.get_json(force=True, silent=True))
        ident = identity()
        lines = stream(_Run(spec), {"pod": ident.pod, "version": ident.version})
        response = flask.Response(lines, mimetype="application/x-ndjson")
        # Ask proxies in front of us (the API server's service proxy) not to buffer the stream.
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response

    @app.get("/")
    def index() -> flask.Response:
        return answer({"usage": "POST /probe with a JSON object; see workloads/prober.py"})

    return app

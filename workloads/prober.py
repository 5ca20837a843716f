"""prober: drives HTTP traffic from inside the cluster and streams one record per request.

``POST /probe`` with a JSON object (see ``ProbeSpec``) answers ``application/x-ndjson``: one line
per finished request, then one summary line. Every request opens a new TCP connection and asks the
server to close it: a keep-alive connection sticks to one pod and would hide load balancing.

The prober sends requests for whoever reaches it, so it is not a general request forger:

- targets are Services of its own namespace only: the URL's host is a Service name (a DNS-1035
  label, optionally with ``.<namespace>[.svc[.<cluster domain>]]`` of its own namespace), never an
  IP address in any spelling, ``localhost`` or the prober's own Service; the request goes to the
  fully qualified ``<name>.<namespace>.svc.<domain>.``, so no DNS search path can widen it;
- ``"via": "service-env"`` sends them to the Service's ClusterIP as the kubelet put it into this
  pod's environment (``<NAME>_SERVICE_HOST``, set for the Services of its namespace that existed
  when the pod started), with no DNS look-up: the ClusterIP path told apart from the DNS one;
- each run is bounded (``MAX_*`` below: what the scenarios need, with room), and so is the whole
  process: at most ``MAX_RUNS`` runs and ``MAX_TOTAL_CONCURRENCY`` requests in flight at once; a
  run beyond either gets ``429`` with ``Retry-After`` at once. gunicorn serves the prober with
  more threads than ``MAX_RUNS``, so ``/healthz`` and ``/readyz`` always have one.

A run given a ``"run"`` id is kept (the last ``MAX_KEPT_RUNS``): ``GET /runs/<id>`` answers every
record it made and its summary once it is over. A client whose stream broke on the way (the API
server's proxy between it and the prober) reads back what it missed, so no request the prober
sent goes unaccounted for.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import queue
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import flask

from workloads.common import answer, bad_request, identity, new_app

# Enough for the JSON any workload answers; a bigger body is cut, not an error.
MAX_BODY_BYTES = 64 * 1024
MAX_ERROR_CHARS = 200

#: Bounds of one run. The scenarios ask for at most: 2400 requests at concurrency 8 within 180 s
#: (load balancing), chunks of at most 10 s of background traffic at concurrency <= 4, and
#: requests that may take 10 s (cpuhog bursts); suite/tests/test_prober_bounds.py checks that
#: they fit. The count of a background chunk is "as many as fit" (suite/traffic.py asks for
#: 20000): its duration ends it.
MAX_COUNT = 20_000
MAX_CONCURRENCY = 8
MAX_DURATION_S = 180.0
MAX_INTERVAL_MS = 10_000
MAX_TIMEOUT_S = 10.0
#: Bounds of the process: runs at once (gunicorn gives the prober 8 threads; each run holds one,
#: so at least 4 stay free for /healthz, /readyz and a 429), and request threads at once.
MAX_RUNS = 4
MAX_TOTAL_CONCURRENCY = 16
RETRY_AFTER_S = 1
#: Runs kept for ``GET /runs/<id>``: a scenario's background traffic is at most ~150 chunks.
MAX_KEPT_RUNS = 256
#: How long ``GET /runs/<id>`` waits for a run to end before it answers 503 (try again).
MAX_RUN_WAIT_S = 5.0
#: What a run id looks like (the suite sends a random hex id and the chunk number).
_RUN_ID = re.compile(r"[a-z0-9][-a-z0-9]{0,62}")

#: What a Service name looks like (DNS-1035 label: Kubernetes Service names are these).
_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
#: Names that are never a target: the prober itself, and the machine it runs on.
_NEVER = frozenset({"prober", "localhost"})
NAMESPACE_ENV = "POD_NAMESPACE"
RESOLV_CONF = "/etc/resolv.conf"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"

#: (Service name, port) -> (host, port) to connect to.
Resolve = Callable[[str, int], tuple[str, int]]
#: How a Service is found: its DNS name (default), or the ClusterIP in the pod's environment.
VIA_DNS = "dns"
VIA_SERVICE_ENV = "service-env"
VIAS = (VIA_DNS, VIA_SERVICE_ENV)


@dataclass(frozen=True)
class ProbeSpec:
    """One run: at most ``count`` requests and at most ``duration_s`` seconds, whichever ends first.

    Requests started before the deadline are allowed to finish (each within ``timeout_s``).
    ``service`` is the Service the URL names; ``host`` and ``port`` are where requests go.
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
    service: str = ""
    via: str = VIA_DNS
    #: The client's id for this run (kept for ``GET /runs/<id>``), or "" (not kept).
    run_id: str = ""

    @classmethod
    def parse(
        cls, body: object, resolve: Resolve | None = None, by_env: Resolve | None = None
    ) -> ProbeSpec:
        """Validate a request body; raises a 400 with the reason. ``resolve`` maps the Service
        the URL names to where requests go (default: itself, for tests of parsing alone);
        ``by_env`` does so for ``"via": "service-env"``."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        known = {
            "url",
            "count",
            "concurrency",
            "duration_s",
            "interval_ms",
            "timeout_s",
            "via",
            "run",
        }
        unknown = sorted(set(body) - known)
        if unknown:
            raise bad_request(f"unknown field(s): {', '.join(unknown)}")
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise bad_request("url is required and must be a string")
        via = body.get("via", VIA_DNS)
        if via not in VIAS:
            raise bad_request(f"via must be one of {', '.join(VIAS)}, got {via!r}")
        run_id = body.get("run", "")
        if not isinstance(run_id, str) or (run_id and not _RUN_ID.fullmatch(run_id)):
            raise bad_request(f"run must be a lower-case id of at most 63 characters: {run_id!r}")
        name, port, target = _split_url(url)
        chosen = by_env if via == VIA_SERVICE_ENV else resolve
        host, connect_port = (chosen or (lambda n, p: (n, p)))(name, port)
        return cls(
            url=url,
            host=host,
            port=connect_port,
            target=target,
            count=_int_field(body, "count", 100, 1, MAX_COUNT),
            concurrency=_int_field(body, "concurrency", 1, 1, MAX_CONCURRENCY),
            duration_s=_positive_float_field(body, "duration_s", 60.0, MAX_DURATION_S),
            interval_ms=_int_field(body, "interval_ms", 0, 0, MAX_INTERVAL_MS),
            timeout_s=_positive_float_field(body, "timeout_s", 2.0, MAX_TIMEOUT_S),
            service=name.lower().rstrip(".").split(".")[0],
            via=str(via),
            run_id=run_id,
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


def service_name(host: str, namespace: str | None, domain: str) -> str:
    """The Service a URL host names, if it names one in ``namespace``; else a 400 saying why.

    Accepted: ``name``, and with the prober's namespace ``name.ns``, ``name.ns.svc``,
    ``name.ns.svc.<domain>`` (with or without the final dot).
    """
    labels = host.lower().rstrip(".").split(".")
    name, rest = labels[0], labels[1:]
    why = (
        "the prober sends requests only to Services of its own namespace: give "
        "http://<service>[:port]/path"
    )
    if not _SERVICE_NAME.fullmatch(name) or any(not label for label in labels):
        raise bad_request(f"url host {host!r} is not a Service name; {why}")
    if name in _NEVER:
        raise bad_request(f"url host {host!r} is not a target (the prober or this machine); {why}")
    if rest:
        suffix = [namespace or "", "svc", *domain.split(".")]
        if namespace is None or rest != suffix[: len(rest)]:
            raise bad_request(
                f"url host {host!r} is outside namespace {namespace or '(unknown)'}; {why}"
            )
    return name


def cluster_domain(namespace: str | None, resolv_conf: str = RESOLV_CONF) -> str:
    """The cluster's DNS domain, from the pod's search list (`<ns>.svc.<domain>` comes first)."""
    try:
        lines = Path(resolv_conf).read_text().splitlines()
    except OSError:
        return DEFAULT_CLUSTER_DOMAIN
    for line in lines:
        fields = line.split()
        if fields[:1] != ["search"]:
            continue
        for entry in fields[1:]:
            prefix = f"{namespace}.svc."
            if namespace and entry.startswith(prefix) and len(entry) > len(prefix):
                return entry[len(prefix) :].rstrip(".")
    return DEFAULT_CLUSTER_DOMAIN


def in_cluster_resolver(namespace: str | None, domain: str) -> Resolve:
    """Requests go to the Service's fully qualified name: only the prober's namespace."""

    def resolve(host: str, port: int) -> tuple[str, int]:
        name = service_name(host, namespace, domain)
        if namespace is None:
            raise bad_request(
                f"the prober does not know its namespace ({NAMESPACE_ENV} is not set), so it "
                "sends no requests; set it from metadata.namespace (the downward API)"
            )
        return f"{name}.{namespace}.svc.{domain}.", port

    return resolve


def service_env_resolver(
    namespace: str | None, domain: str, environ: Mapping[str, str] | None = None
) -> Resolve:
    """Requests go to the Service's ClusterIP from this pod's environment (no DNS): only a
    Service of the prober's namespace, and only an IP address the kubelet put there."""
    env = os.environ if environ is None else environ

    def resolve(host: str, port: int) -> tuple[str, int]:
        name = service_name(host, namespace, domain)
        key = name.upper().replace("-", "_") + "_SERVICE_HOST"
        address = env.get(key, "")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise bad_request(
                f"Service {name} is not in this pod's environment ({key} is {address!r}): the "
                "kubelet sets it for the Services of the pod's namespace that existed when the "
                "pod started, unless the pod has enableServiceLinks: false"
            ) from None
        return address, port

    return resolve


class Admission:
    """How many runs and request threads the process has going; more are refused, not queued."""

    def __init__(
        self, max_runs: int = MAX_RUNS, max_concurrency: int = MAX_TOTAL_CONCURRENCY
    ) -> None:
        self.max_runs = max_runs
        self.max_concurrency = max_concurrency
        self._lock = threading.Lock()
        self.runs = 0
        self.concurrency = 0

    def enter(self, concurrency: int) -> str | None:
        """Take room for a run; None when admitted, else why not."""
        with self._lock:
            if self.runs >= self.max_runs:
                return f"{self.runs} probe runs are going, at most {self.max_runs} at once"
            if self.concurrency + concurrency > self.max_concurrency:
                return (
                    f"{self.concurrency} requests are in flight, at most {self.max_concurrency} "
                    f"at once (this run asks for {concurrency} more)"
                )
            self.runs += 1
            self.concurrency += concurrency
            return None

    def leave(self, concurrency: int) -> None:
        """Give the room of a finished run back."""
        with self._lock:
            self.runs -= 1
            self.concurrency -= concurrency


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
    """The worker threads of one probe run, the queue their records arrive on, and the log of
    every record (what ``GET /runs/<id>`` reads back)."""

    _DONE = object()

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.stop = threading.Event()
        self.done = threading.Event()
        self.records: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next_seq = 0
        self._live = 0
        self._started = time.monotonic()
        self._ended: float | None = None
        self._deadline = self._started + spec.duration_s

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
                record = probe_once(self.spec, seq)
                with self._lock:
                    self.log.append(record)
                self.records.put(record)
                if self.spec.interval_ms and self.stop.wait(self.spec.interval_ms / 1000):
                    break
        finally:
            with self._lock:
                self._live -= 1
                if self._live == 0:
                    self._ended = time.monotonic()
                    self.done.set()
            self.records.put(self._DONE)

    def start(self) -> None:
        """Start the workers."""
        self._started = time.monotonic()
        self._live = self.spec.concurrency
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

    def summary(self, prober: Mapping[str, str]) -> dict[str, Any]:
        """The summary line of the records so far."""
        with self._lock:
            records = list(self.log)
            ended = self._ended if self._ended is not None else time.monotonic()
        by_pod: Counter[str] = Counter()
        by_version: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        ok = 0
        for record in records:
            ok += record["ok"]
            if record["pod"] is not None:
                by_pod[record["pod"]] += 1
            if record["version"] is not None:
                by_version[record["version"]] += 1
            if record["error"] is not None:
                errors[str(record["error"]).split(":", 1)[0]] += 1
        return {
            "sent": len(records),
            "ok": ok,
            "failed": len(records) - ok,
            "by_pod": dict(by_pod),
            "by_version": dict(by_version),
            "errors": dict(errors),
            "duration_s": round(ended - self._started, 6),
            "prober": dict(prober),
            "via": self.spec.via,
            "address": f"{self.spec.host}:{self.spec.port}",
        }


class KeptRuns:
    """The last ``MAX_KEPT_RUNS`` runs that came with an id, for ``GET /runs/<id>``."""

    def __init__(self, keep: int = MAX_KEPT_RUNS) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}

    def add(self, run: _Run) -> None:
        """Keep `run` (under its spec's id); the oldest goes when there are too many."""
        if not run.spec.run_id:
            return
        with self._lock:
            self._runs.pop(run.spec.run_id, None)
            self._runs[run.spec.run_id] = run
            while len(self._runs) > self.keep:
                del self._runs[next(iter(self._runs))]

    def get(self, run_id: str) -> _Run | None:
        """The run with this id, if it is still kept."""
        with self._lock:
            return self._runs.get(run_id)


def _line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def stream(run: _Run, prober: Mapping[str, str]) -> Iterator[bytes]:
    """NDJSON lines for ``run``; closing the iterator (client gone) stops the run."""
    run.start()
    try:
        for record in run.results():
            yield _line(record)
        yield _line({"summary": run.summary(prober)})
    finally:
        run.stop.set()


def create_app(
    resolve: Resolve | None = None,
    admission: Admission | None = None,
    by_env: Resolve | None = None,
) -> flask.Flask:
    """``POST /probe`` streams NDJSON records; ``GET /healthz``, ``GET /readyz``.

    ``resolve`` maps a Service name to where requests go (default: its fully qualified name in
    the namespace from ``POD_NAMESPACE``); tests pass their own.
    """
    app = new_app("prober")
    namespace = os.environ.get(NAMESPACE_ENV) or None
    if resolve is None:
        resolve = in_cluster_resolver(namespace, cluster_domain(namespace))
    if by_env is None:
        by_env = service_env_resolver(namespace, cluster_domain(namespace))
    room = admission or Admission()
    app.extensions["kube_alive_prober_admission"] = room
    kept = KeptRuns()

    @app.post("/probe")
    def probe() -> flask.Response:
        spec = ProbeSpec.parse(flask.request.get_json(force=True, silent=True), resolve, by_env)
        refused = room.enter(spec.concurrency)
        if refused is not None:
            response = answer({"reason": f"busy: {refused}; try again"}, status=429)
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        ident = identity()
        try:
            run = _Run(spec)
            kept.add(run)
            lines = stream(run, {"pod": ident.pod, "version": ident.version})
        except BaseException:
            room.leave(spec.concurrency)
            raise
        response = flask.Response(lines, mimetype="application/x-ndjson")
        # The room is given back when the stream ends or the client goes away (WSGI close).
        response.call_on_close(lambda: room.leave(spec.concurrency))
        # Ask proxies in front of us (the API server's service proxy) not to buffer the stream.
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response

    @app.get("/runs/<run_id>")
    def read_back(run_id: str) -> flask.Response:
        run = kept.get(run_id)
        if run is None:
            return answer({"reason": f"no run {run_id!r} is kept here"}, status=404)
        if not run.done.wait(MAX_RUN_WAIT_S):
            response = answer({"reason": f"run {run_id!r} is still going; try again"}, status=503)
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        ident = identity()
        summary = run.summary({"pod": ident.pod, "version": ident.version})
        return answer({"records": list(run.log), "summary": {**summary, "read_back": True}})

    @app.get("/")
    def index() -> flask.Response:
        return answer({"usage": "POST /probe with a JSON object; see workloads/prober.py"})

    return app

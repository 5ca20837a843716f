"""frontend: the live demo page, its actions, and a server-side watch streamed to the browser.

The page (``GET /``) has one panel per experiment with that experiment's pods, live: this process
watches the pods of its own namespace (``workloads.frontend_kube.ListWatch``, with the pod's
ServiceAccount token) and streams the state to every browser with Server-Sent Events
(``GET /api/stream``). The browser never talks to the API server and never sees a token.

Actions go through the Services like a real client, each request on a new connection (as nginx did
in the original), so kube-proxy spreads them over the pods:

- getip: ``POST /api/getip/send?count=50`` answers the counts per pod;
- healthcheck: ``POST /healthcheck/{infect,cure,kill}`` and ``GET /healthcheck/`` (the Service's
  health) are proxied;
- cpuhog: ``POST /api/cpuhog/load`` starts a bounded load (it stops by itself), ``.../load/stop``;
  the replica count and CPU come from the HPA's status (read with a Role scoped to ``cpuhog``);
- incver: ``POST /api/incver/roll`` moves the Deployment's image tag v1 -> v2 or v2 -> v1 (a Role
  allows get and patch on the Deployment named ``incver`` only) and counts failed requests of a
  bounded traffic run meanwhile.

Every POST must carry the header ``X-Kube-Alive: 1``: a cross-site form or fetch cannot set it
without a CORS preflight, which this app never allows, so another web page cannot roll or kill.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import flask
from werkzeug.exceptions import BadGateway, Conflict, Forbidden, NotFound, ServiceUnavailable

from workloads import frontend_kube as kube
from workloads.common import Identity, answer, identity, int_param, new_app
from workloads.frontend_traffic import Bounds, Run, Slot

UPSTREAM_TIMEOUT_S = 5.0
MAX_UPSTREAM_BYTES = 256 * 1024
EXPERIMENTS = ("getip", "healthcheck", "cpuhog", "incver")
CSRF_HEADER = "X-Kube-Alive"

#: "Send 50 requests": at most 200, five at a time, each within 2 s, all within 15 s.
SEND_DEFAULT = 50
SEND_MAX = 200
SEND_BOUNDS_S = 15.0
SEND_CONCURRENCY = 5
SEND_TIMEOUT_S = 2.0
#: The cpuhog load: two requests at a time, each burning 500 ms of CPU, for at most 120 s (and at
#: most 600 requests): enough to push 1 pod of a 100m request far past the HPA's 50 % target.
#: With cpuhog down, each thread pauses 0.5 s, 1 s, 2 s, 4 s after failures in a row and the load
#: gives up after 8 of them (about 10 s): a load that reaches nothing proves nothing.
LOAD_BOUNDS = Bounds(
    count=600, duration_s=120.0, concurrency=2, backoff_s=0.5, max_backoff_s=4.0, give_up_after=8
)
LOAD_BURN_MS = 500
#: How long `load/stop` waits for the load's last requests (each burns LOAD_BURN_MS) to end.
LOAD_STOP_JOIN_S = LOAD_BURN_MS / 1000 + 2.0
#: Traffic on incver while it rolls: ten requests a second for at most 90 s.
ROLL_TRAFFIC_BOUNDS = Bounds(count=900, duration_s=90.0, concurrency=1, interval_s=0.1)
ROLL_TIMEOUT_S = 2.0
NEXT_VERSION = {"v1": "v2", "v2": "v1"}
ROLL_TARGET = "incver"
HPA_NAME = "cpuhog"

#: SSE: a comment every 15 s keeps proxies from closing an idle stream; a client that left is
#: noticed within CLIENT_CHECK_S (its socket reads as closed) and its slot freed; a stream ends
#: after 5 min and the browser reconnects (every state event is complete, so nothing is lost); at
#: most 5 state events a second; at most 4 streams at once (gunicorn has 8 threads, the rest serve
#: the actions).
HEARTBEAT_S = 15.0
CLIENT_CHECK_S = 1.0
MAX_STREAM_S = 300.0
MIN_EVENT_INTERVAL_S = 0.2
MAX_STREAMS = 4
RECONNECT_MS = 2000
#: How long to wait before trying again to reach the API when the credentials were missing.
API_RETRY_S = 10.0


@dataclass(frozen=True)
class Settings:
    """Where the upstreams and the API are; each can be changed through the environment."""

    getip: str = "http://getip"
    healthcheck: str = "http://healthcheck"
    cpuhog: str = "http://cpuhog"
    incver: str = "http://incver"
    api: str = kube.KUBERNETES_API
    service_account_dir: str = kube.SERVICE_ACCOUNT_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read {GETIP,HEALTHCHECK,CPUHOG,INCVER}_URL, KUBERNETES_API and SERVICE_ACCOUNT_DIR."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            getip=env.get("GETIP_URL", default.getip),
            healthcheck=env.get("HEALTHCHECK_URL", default.healthcheck),
            cpuhog=env.get("CPUHOG_URL", default.cpuhog),
            incver=env.get("INCVER_URL", default.incver),
            api=env.get("KUBERNETES_API", default.api),
            service_account_dir=env.get("SERVICE_ACCOUNT_DIR", default.service_account_dir),
        )


class UpstreamError(Exception):
    """An upstream could not be reached or did not answer JSON."""


def fetch(base_url: str, method: str, path: str, timeout_s: float) -> tuple[int, dict[str, Any]]:
    """One request over a new connection to ``base_url`` + ``path``; (status, JSON object)."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise UpstreamError(f"upstream URL must be http://host[:port], got {base_url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout_s)
    try:
        conn.request(
            method,
            parts.path.rstrip("/") + path,
            headers={"Connection": "close", "Accept": "application/json"},
        )
        response = conn.getresponse()
        body = response.read(MAX_UPSTREAM_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, TimeoutError):
            raise UpstreamError(f"{base_url} did not answer within {timeout_s:g}s") from exc
        raise UpstreamError(f"{base_url}: {type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(f"{base_url} answered {status} without a JSON object")
    return status, data


def sse_event(event: str, data: Any, event_id: int | None = None) -> str:
    """One Server-Sent Event. The JSON has no raw line breaks (json.dumps escapes them), and each
    line of it would get its own ``data:`` field if it had."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in text.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


class Hub:
    """A change counter that stream threads wait on."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.version = 0

    def bump(self) -> None:
        """Something changed: wake every stream."""
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout_s: float) -> bool:
        """Wait until the version differs from ``seen``; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.version != seen, timeout_s)


def event_stream(
    hub: Hub,
    snapshot: Callable[[], Any],
    *,
    heartbeat_s: float = HEARTBEAT_S,
    max_s: float = MAX_STREAM_S,
    min_interval_s: float = MIN_EVENT_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
    client_gone: Callable[[], bool] = lambda: False,
    check_s: float = CLIENT_CHECK_S,
) -> Iterator[str]:
    """The SSE body: the full state now and after every change (coalesced), comments in between,
    and an end after ``max_s`` (the browser reconnects by itself) or as soon as ``client_gone``
    says the client left (checked at least every ``check_s``): a write to a closed connection
    fails only at the second heartbeat, and until then the stream would hold its slot."""
    yield f"retry: {RECONNECT_MS}\n\n"
    end = clock() + max_s
    seen: int | None = None
    next_heartbeat = clock() + heartbeat_s
    while clock() < end and not client_gone():
        version = hub.version
        if version != seen:
            seen = version
            yield sse_event("state", snapshot(), version)
            next_heartbeat = clock() + heartbeat_s
            # A rate limit, not a wait for state: changes meanwhile go out in the next event.
            pause(min_interval_s)
            continue
        if hub.wait(seen, max(0.0, min(check_s, next_heartbeat - clock(), end - clock()))):
            continue
        if clock() >= next_heartbeat:
            yield ": keep-alive\n\n"
            next_heartbeat = clock() + heartbeat_s


def client_gone_check(environ: Mapping[str, Any]) -> Callable[[], bool]:
    """``() -> True`` once the client closed its connection (the server's socket for this request
    reads end-of-file or fails); always False when the server does not expose the socket."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            # An SSE client sends nothing after its request: readable means closed (or reset).
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return gone


class Live:
    """The frontend's live view: the watches, the traffic runs, the last roll."""

    def __init__(
        self,
        settings: Settings,
        connect: Callable[[], kube.Api],
        ident: Identity,
        *,
        start_threads: bool = True,
    ) -> None:
        self.settings = settings
        self.ident = ident
        self.hub = Hub()
        self._connect = connect
        self._start_threads = start_threads
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next_try = 0.0
        self.api: kube.Api | None = None
        self.api_error: str | None = None
        self.pods: kube.ListWatch | None = None
        self.hpa: kube.ListWatch | None = None
        self.load = Slot()
        self.roll_traffic = Slot()
        self.last_roll: dict[str, Any] | None = None
        self.streams = 0
        self._streams_lock = threading.Lock()

    def open_stream(self) -> bool:
        """Count one more live stream; False when MAX_STREAMS are open already."""
        with self._streams_lock:
            if self.streams >= MAX_STREAMS:
                return False
            self.streams += 1
            return True

    def close_stream(self) -> None:
        """One live stream ended."""
        with self._streams_lock:
            self.streams -= 1

    def ensure_started(self) -> kube.Api | None:
        """Connect and start the watches on first use (after gunicorn forked this worker)."""
        with self._lock:
            if self.api is not None or time.monotonic() < self._next_try:
                return self.api
            try:
                api = self._connect()
            except kube.ApiError as exc:
                self.api_error = exc.message
                self._next_try = time.monotonic() + API_RETRY_S
                return None
            self.api, self.api_error = api, None
            base = f"/namespaces/{api.namespace}"
            self.pods = kube.ListWatch(api, f"/api/v1{base}/pods", on_change=self.hub.bump)
            self.hpa = kube.ListWatch(
                api,
                f"/apis/autoscaling/v2{base}/horizontalpodautoscalers",
                on_change=self.hub.bump,
                field_selector=f"metadata.name={HPA_NAME}",
            )
            if self._start_threads:
                for name, watch in (("pods", self.pods), ("hpa", self.hpa)):
                    threading.Thread(
                        target=watch.run, args=(self._stop,), name=f"watch-{name}", daemon=True
                    ).start()
            return api

    def stop(self) -> None:
        """Stop the watches and runs (tests; in a pod the process just ends)."""
        self._stop.set()
        for slot in (self.load, self.roll_traffic):
            slot.stop()

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as one JSON object."""
        ident = self.ident
        experiments: dict[str, dict[str, Any]] = {app: {"pods": []} for app in EXPERIMENTS}
        others: list[dict[str, Any]] = []
        for pod in self.pods.items() if self.pods else []:
            summary = kube.summarize_pod(pod)
            target = experiments.get(str(summary["app"]))
            (target["pods"] if target is not None else others).append(summary)
        hpas = self.hpa.items() if self.hpa else []
        experiments["cpuhog"]["hpa"] = kube.summarize_hpa(hpas[0]) if hpas else None
        experiments["cpuhog"]["load"] = self.load.to_json()
        experiments["incver"]["traffic"] = self.roll_traffic.to_json()
        experiments["incver"]["roll"] = self.last_roll
        return {
            "now": kube.now(),
            "namespace": self.api.namespace if self.api else None,
            "frontend": {"pod": ident.pod, "version": ident.version},
            "api": {
                "error": self.api_error,
                "pods": self.pods.status.to_json() if self.pods else None,
                "hpa": self.hpa.status.to_json() if self.hpa else None,
            },
            "experiments": experiments,
            "others": others,
        }


def _live() -> Live:
    live: Live = flask.current_app.extensions["kube_alive_live"]
    return live


def _settings() -> Settings:
    return _live().settings


def _proxy(name: str, base_url: str, method: str, path: str, timeout_s: float) -> flask.Response:
    try:
        status, data = fetch(base_url, method, path, timeout_s)
    except UpstreamError as exc:
        raise BadGateway(description=f"{name}: {exc}") from exc
    response = flask.jsonify(data)
    response.status_code = status
    response.headers["X-Kube-Alive-Frontend-Pod"] = identity().pod
    return response


def _api_or_502() -> kube.Api:
    api = _live().ensure_started()
    if api is None:
        raise BadGateway(description=f"the Kubernetes API is not reachable: {_live().api_error}")
    return api


def roll(api: kube.Api) -> dict[str, Any]:
    """Move the incver Deployment's image tag to the next version (v1 <-> v2).

    A JSON patch whose ``test`` operation pins the image we read: if someone changed it meanwhile
    the API refuses (422) instead of overwriting their change. Needs get and patch on
    ``deployments/incver`` and nothing else.
    """
    path = f"/apis/apps/v1/namespaces/{api.namespace}/deployments/{ROLL_TARGET}"
    try:
        deployment = api.get(path)
    except kube.ApiError as exc:
        if exc.status == 404:
            raise NotFound(description=f"no Deployment {ROLL_TARGET} in {api.namespace}") from exc
        raise BadGateway(description=f"reading deployment/{ROLL_TARGET}: {exc}") from exc
    template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = template.get("containers") or []
    image = str(containers[0].get("image", "")) if containers else ""
    tag = kube.image_tag(image) or ""
    version = kube.version_of_tag(tag)
    if "@" in image or version not in NEXT_VERSION:
        raise Conflict(
            description=f"deployment/{ROLL_TARGET} runs {image!r}; the roll moves the tag "
            f"between {' and '.join(NEXT_VERSION)}"
        )
    # A content-named tag keeps its digest: v1 and v2 of one build share it (suite/images.py).
    to = NEXT_VERSION[version]
    new_image = image[: -len(tag)] + to + tag[len(version) :]
    pointer = "/spec/template/spec/containers/0/image"
    patch = [
        {"op": "test", "path": pointer, "value": image},
        {"op": "replace", "path": pointer, "value": new_image},
    ]
    try:
        api.patch(path, patch, "application/json-patch+json")
    except kube.ApiError as exc:
        if exc.status in (409, 422):
            raise Conflict(
                description=f"deployment/{ROLL_TARGET} changed meanwhile; try again ({exc})"
            ) from exc
        raise BadGateway(description=f"patching deployment/{ROLL_TARGET}: {exc}") from exc
    return {"from": version, "to": to, "image": new_image, "at": kube.now()}


def _connect_from(settings: Settings) -> Callable[[], kube.Api]:
    return lambda: kube.InClusterApi.from_service_account(
        settings.api, settings.service_account_dir
    )


def create_app(
    *,
    connect: Callable[[], kube.Api] | None = None,
    start_threads: bool = True,
) -> flask.Flask:
    """The page, its stream and actions, and the proxies to the other workloads.

    ``connect`` makes the API client (default: the pod's ServiceAccount); the unit tests pass a
    fake and ``start_threads=False`` to drive the watches by hand.
    """
    app = new_app("frontend")
    settings = Settings.from_env()
    live = Live(
        settings,
        connect or _connect_from(settings),
        app.extensions["kube_alive_identity"],
        start_threads=start_threads,
    )
    app.extensions["kube_alive_live"] = live
    page = resources.files("workloads").joinpath("frontend.html").read_text()

    @app.before_request
    def _only_our_page_may_act() -> None:
        if flask.request.method == "POST" and flask.request.headers.get(CSRF_HEADER) != "1":
            raise Forbidden(description=f"a POST needs the header {CSRF_HEADER}: 1")

    @app.get("/")
    def index() -> flask.Response:
        nonce = secrets.token_urlsafe(16)
        ident = identity()
        html = flask.render_template_string(
            page,
            nonce=nonce,
            pod=ident.pod,
            version=ident.version,
            send_count=SEND_DEFAULT,
            load=LOAD_BOUNDS,
            load_ms=LOAD_BURN_MS,
            roll_traffic=ROLL_TRAFFIC_BOUNDS,
        )
        response = flask.Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/favicon.ico")
    def favicon() -> flask.Response:
        return flask.Response(status=204)  # no icon, and no 404 in the browser's console

    # The proxies: one request through a Service each.

    @app.get("/getip")
    def getip() -> flask.Response:
        return _proxy("getip", _settings().getip, "GET", "/", UPSTREAM_TIMEOUT_S)

    @app.get("/healthcheck/")
    @app.get("/healthcheck/<any(healthz, readyz):probe>")
    def healthcheck_get(probe: str = "") -> flask.Response:
        return _proxy(
            "healthcheck", _settings().healthcheck, "GET", f"/{probe}", UPSTREAM_TIMEOUT_S
        )

    @app.post("/healthcheck/<any(infect, cure, kill):action>")
    def healthcheck_post(action: str) -> flask.Response:
        return _proxy(
            "healthcheck", _settings().healthcheck, "POST", f"/{action}", UPSTREAM_TIMEOUT_S
        )

    @app.get("/cpuhog")
    def cpuhog() -> flask.Response:
        ms = int_param("ms", 1000, 1, 10_000)
        # The upstream takes at least ms to answer; allow that on top of the usual timeout.
        timeout_s = UPSTREAM_TIMEOUT_S + ms / 1000
        return _proxy("cpuhog", _settings().cpuhog, "GET", f"/?ms={ms}", timeout_s)

    @app.get("/incver/version")
    def incver() -> flask.Response:
        return _proxy("incver", _settings().incver, "GET", "/version", UPSTREAM_TIMEOUT_S)

    # The actions.

    @app.post("/api/getip/send")
    def getip_send() -> flask.Response:
        count = int_param("count", SEND_DEFAULT, 1, SEND_MAX)
        base = _settings().getip
        run = Run(
            "getip-send",
            lambda: fetch(base, "GET", "/", SEND_TIMEOUT_S),
            Bounds(count=count, duration_s=SEND_BOUNDS_S, concurrency=SEND_CONCURRENCY),
        ).start()
        run.join(SEND_BOUNDS_S + SEND_TIMEOUT_S + 1.0)
        return answer({"run": run.to_json()})

    @app.post("/api/cpuhog/load")
    def load_start() -> flask.Response:
        live = _live()
        base = _settings().cpuhog
        timeout_s = UPSTREAM_TIMEOUT_S + LOAD_BURN_MS / 1000
        run = live.load.replace(
            lambda: Run(
                "cpuhog-load",
                lambda: fetch(base, "GET", f"/?ms={LOAD_BURN_MS}", timeout_s),
                LOAD_BOUNDS,
                on_change=live.hub.bump,
            )
        )
        live.hub.bump()
        return answer({"run": run.to_json()})

    @app.post("/api/cpuhog/load/stop")
    def load_stop() -> flask.Response:
        live = _live()
        run = live.load.stop(join_s=LOAD_STOP_JOIN_S)
        live.hub.bump()
        return answer({"run": run.to_json() if run else None})

    @app.post("/api/incver/roll")
    def incver_roll() -> flask.Response:
        live = _live()
        rolled = roll(_api_or_502())
        live.last_roll = rolled
        base = _settings().incver
        live.roll_traffic.replace(
            lambda: Run(
                "incver-traffic",
                lambda: fetch(base, "GET", "/version", ROLL_TIMEOUT_S),
                ROLL_TRAFFIC_BOUNDS,
                on_change=live.hub.bump,
            )
        )
        live.hub.bump()
        return answer({"roll": rolled})

    @app.post("/api/incver/traffic/stop")
    def incver_traffic_stop() -> flask.Response:
        live = _live()
        run = live.roll_traffic.stop(join_s=ROLL_TIMEOUT_S + 1.0)
        live.hub.bump()
        return answer({"run": run.to_json() if run else None})

    # The live state.

    @app.get("/api/state")
    def state() -> flask.Response:
        live = _live()
        live.ensure_started()
        return answer({"state": live.snapshot()})

    @app.get("/api/stream")
    def stream() -> flask.Response:
        live = _live()
        live.ensure_started()
        if not live.open_stream():
            raise ServiceUnavailable(
                description=f"at most {MAX_STREAMS} live streams at once; close another tab"
            )
        body = event_stream(
            live.hub, live.snapshot, client_gone=client_gone_check(flask.request.environ)
        )
        response = flask.Response(body, mimetype="text/event-stream")
        response.call_on_close(live.close_stream)
        # Ask proxies in front of us (the API server's service proxy) not to buffer the stream.
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response

    return app

"""The live page in a real browser: pods appear, requests spread, a restart shows up live.

How the browser reaches the frontend: through the API server's service proxy
(`/api/v1/namespaces/<ns>/services/frontend:http/proxy/`), like `kubectl proxy`. A browser cannot
present the kubeconfig's credentials itself, so `ServiceProxyDoor` listens on 127.0.0.1 and
forwards each request there with them (client certificate or token, the cluster's CA), streaming
the answer back byte for byte. Why this path: it works on any cluster the suite can reach (no
route into the pod network, no kubectl binary, no port-forward protocol), it is the path the
prober already uses, and the API server's proxy flushes streamed answers (Server-Sent Events
included) as they come. The page uses relative URLs only, so it works under that prefix as well
as under `kubectl port-forward svc/frontend 8080:80`.

The browser is the Chromium `suite.browser.chromium_executable` finds (Playwright's own where
`python -m playwright install --with-deps chromium` put it, else Debian's `apt-get install
chromium`), driven by Playwright for Python (`pip install 'kube-alive[browser]'`).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from suite.browser import CHROMIUM_ARGS, ChromiumNotFound, chromium_executable
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.kube import PODS, client_configuration, get_object, name_of, restart_count
from suite.recorder import Recorder
from suite.session import STATE_KEY
from suite.waiting import WaitTimeout, retry_transient

DESKTOP = {"width": 1280, "height": 900}
#: A small phone (CSS pixels): the page must fit its width without sideways scrolling.
PHONE = {"width": 390, "height": 844}

GETIP_REPLICAS = 4
HEALTHCHECK_REPLICAS = 2
SEND = 50
#: The frontend's Service answers through the proxy once its endpoint is published (a second or
#: two after Ready).
FRONTEND_REACHABLE_S = 30.0
#: Page load through the door and the API server's proxy takes well under a second; the watch's
#: first list one more round trip. The rest is room for a busy 2-core machine.
PAGE_LIVE_S = 30.0
#: "Send 50 requests" is bounded by the frontend to 15 s (SEND_BOUNDS_S) plus one request timeout.
SEND_DONE_S = 20.0
#: Infection -> restart count rises on the page: healthcheck's liveness probe (period 1 s x
#: threshold 1, timeout 1 s) + the restart margin of the self-healing scenario (15 s: SIGTERM,
#: new container, status to the API) + the watch event through the SSE stream (< 1 s) + 2 s.
RESTART_SEEN_S = 1.0 * 1 + 1.0 + 15.0 + 1.0 + 2.0
INCVER_REPLICAS = 2
#: Roll of 2 replicas one at a time (maxSurge 1, maxUnavailable 0): per replica a new pod starts
#: and passes its readiness probe (period 1 s) in a few seconds, then the old one drains (preStop
#: 3 s); about 15 s in all. The rest is room for a busy 2-core machine.
ROLL_SEEN_S = 60.0
#: pytest-timeout backstop (suite/plugin.py): two workloads Ready (120 s each, READY_S of
#: suite/fixtures.py), then every wait above in turn, plus a margin.
BACKSTOP_S = (
    2 * 120.0 + FRONTEND_REACHABLE_S + PAGE_LIVE_S + SEND_DONE_S + RESTART_SEEN_S + ROLL_SEEN_S
) + 60.0

#: Request headers the door passes on (the rest, cookies included, stay here).
FORWARDED_HEADERS = {"accept", "content-type", "cache-control", "last-event-id", "x-kube-alive"}
#: Answer headers that belong to one connection, not to the answer.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Forwarded:
    """One request the door forwarded."""

    method: str
    path: str
    status: int
    content_type: str
    chunks: int = 0


@dataclass
class ServiceProxyDoor:
    """127.0.0.1:<port>/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/... -> the API server,
    with the kubeconfig's credentials. Only that prefix is forwarded."""

    cluster: Cluster
    namespace: str
    service: str = "frontend"
    port_name: str = "http"
    log: list[Forwarded] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        """The service proxy path of the Service's port (with the trailing slash)."""
        return (
            f"/api/v1/namespaces/{self.namespace}/services/{self.service}:{self.port_name}/proxy/"
        )

    @property
    def url(self) -> str:
        """Where the browser goes."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def __enter__(self) -> ServiceProxyDoor:
        self._http = _admin_client(self.cluster)
        door = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                door._forward(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._http.close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        if not handler.path.startswith(self.prefix):
            handler.send_error(404, "only the frontend's service proxy path is forwarded")
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() in FORWARDED_HEADERS}
        # A pooled connection the API server already closed fails before any answer; a GET is
        # sent once more then. Whatever fails before the answer starts is a 502 naming the error,
        # never an empty response the browser can only call ERR_EMPTY_RESPONSE.
        attempts = 2 if handler.command == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                self._relay(handler, headers, body)
                return
            except _NotStarted as error:
                if attempt == attempts:
                    handler.send_error(502, f"the API server's service proxy: {error.cause}")

    def _relay(
        self, handler: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes | None
    ) -> None:
        started = False
        try:
            with self._http.stream(
                handler.command, handler.path, headers=headers, content=body
            ) as upstream:
                record = Forwarded(
                    handler.command,
                    handler.path[len(self.prefix) - 1 :],
                    upstream.status_code,
                    upstream.headers.get("content-type", ""),
                )
                self.log.append(record)
                started = True
                handler.send_response(upstream.status_code)
                for key, value in upstream.headers.multi_items():
                    if key.lower() not in HOP_BY_HOP:
                        handler.send_header(key, value)
                handler.send_header("Connection", "close")
                handler.end_headers()
                # Each piece as it arrives: Server-Sent Events must not wait for the end.
                for chunk in upstream.iter_raw():
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
                    record.chunks += 1
        except (httpx.HTTPError, OSError) as error:
            if not started:
                raise _NotStarted(error) from error
            # Otherwise the browser left, or the API server ended the stream.


class _NotStarted(Exception):
    """The upstream request failed before any of its answer was relayed."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _admin_client(cluster: Cluster) -> httpx.Client:
    """An HTTP client to the API server with the kubeconfig's own credentials."""
    configuration = client_configuration(cluster.access.kubeconfig, cluster.access.context)
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    headers = {}
    token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    if token:
        headers["Authorization"] = token
    return httpx.Client(
        base_url=configuration.host,
        verify=context,
        headers=headers,
        # Reads wait at most this long: the page's stream sends a comment every 15 s.
        timeout=httpx.Timeout(10.0, read=60.0),
        trust_env=False,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium under Playwright (skipped, with the fix, when either is missing)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test needs `pip install 'kube-alive[browser]'`"
    )
    with sync_api.sync_playwright() as playwright:
        try:
            executable = chromium_executable(playwright)
        except ChromiumNotFound as error:
            pytest.skip(str(error))
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageProblems:
    """Script errors and Content-Security-Policy refusals seen by a page. (Failed fetches are
    not problems: an infected pod answers 503 on purpose.)"""

    def __init__(self, page: Any) -> None:
        self.seen: list[str] = []
        page.on("pageerror", lambda error: self.seen.append(f"script error: {error}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = str(message.text)
        if message.type == "error" and ("Content Security Policy" in text or "Refused" in text):
            self.seen.append(text)


def wait_reachable(door: ServiceProxyDoor) -> None:
    """Wait until the frontend answers through the API server's service proxy."""

    class NotYet(Exception):
        pass

    def get() -> None:
        with httpx.Client(timeout=10.0, trust_env=False) as local:
            status = local.get(door.url + "healthz").status_code
        if status != 200:
            raise NotYet(f"GET healthz answered {status}")

    retry_transient(
        get,
        timeout_s=FRONTEND_REACHABLE_S,
        what="service/frontend",
        where=door.namespace,
        expected="200 from /healthz through the API server's service proxy",
        hint=f"kubectl -n {door.namespace} get endpointslices "
        "-l kubernetes.io/service-name=frontend",
        transient=lambda error: isinstance(error, NotYet | httpx.HTTPError),
    )


def live_page(
    browser: Any, door: ServiceProxyDoor, viewport: dict[str, int]
) -> tuple[Any, Any, float]:
    """Open the page; wait until the first watched state is shown. (context, page, wall ms to the
    load event)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    started = time.monotonic()
    page.goto(door.url, wait_until="load", timeout=PAGE_LIVE_S * 1000)
    load_ms = (time.monotonic() - started) * 1000
    page.wait_for_function(
        # A function, not an expression: the page's CSP forbids eval, which an expression needs.
        "() => window.kubeAlive && window.kubeAlive.firstStateMs !== null",
        timeout=PAGE_LIVE_S * 1000,
    )
    return context, page, load_ms


def rows(page: Any, app: str) -> dict[str, dict[str, str]]:
    """The pod rows of one panel: pod -> field -> text."""
    found: dict[str, dict[str, str]] = page.eval_on_selector_all(
        f"#panel-{app} table.pods tr[data-pod]",
        """rows => Object.fromEntries(rows.map(row => [row.dataset.pod, Object.fromEntries(
            [...row.cells].map(cell => [cell.dataset.field,
                                        cell.firstChild ? cell.firstChild.textContent : ""]))]))""",
    )
    return found


def wait_rows(page: Any, app: str, names: list[str]) -> None:
    """Wait until the panel of `app` lists exactly `names`."""
    try:
        page.wait_for_function(
            """([app, names]) => {
                const shown = [...document.querySelectorAll(
                    `#panel-${app} table.pods tr[data-pod]`)].map(row => row.dataset.pod).sort();
                return JSON.stringify(shown) === JSON.stringify(names);
            }""",
            arg=[app, sorted(names)],
            timeout=PAGE_LIVE_S * 1000,
        )
    except Exception as error:
        raise WaitTimeout(
            f"the {app} panel in the browser: shows {sorted(rows(page, app))} after "
            f"{PAGE_LIVE_S:.0f}s (expected the pods {sorted(names)} from the API)"
        ) from error


def test_the_live_page_shows_the_pods_spreads_requests_and_a_restart_as_it_happens(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    browser: Any,
    figures: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    """In headless Chromium, through the API server's service proxy: every getip and
    healthcheck pod is listed from the frontend's own watch; "send 50 requests" is answered by at
    least two pods; "infect" makes that pod's restart count rise on the page, live."""
    workloads.deploy("getip", replicas=GETIP_REPLICAS)
    workloads.deploy("healthcheck", replicas=HEALTHCHECK_REPLICAS)
    workloads.deploy("frontend")
    getip = [name_of(pod) for pod in workloads.pods("getip")]
    healthcheck = [name_of(pod) for pod in workloads.pods("healthcheck")]
    report_dir: Path = request.config.stash[STATE_KEY].settings.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)

    with ServiceProxyDoor(cluster, namespace) as door:
        wait_reachable(door)
        recorder.mark("page open")
        context, page, load_ms = live_page(browser, door, DESKTOP)
        problems = PageProblems(page)
        try:
            timing = page.evaluate(
                """() => { const n = performance.getEntriesByType("navigation")[0];
                   return {response_ms: n.responseEnd, dom_ready_ms: n.domContentLoadedEventEnd,
                           load_ms: n.loadEventEnd,
                           first_live_state_ms: window.kubeAlive.firstStateMs}; }"""
            )
            figures.update(
                page_load_ms=round(load_ms),
                **{key: round(value) for key, value in timing.items()},
            )
            wait_rows(page, "getip", getip)
            wait_rows(page, "healthcheck", healthcheck)
            shown = rows(page, "getip")
            assert all(row["ready"] == "yes" for row in shown.values()), f"getip rows: {shown}"

            # Load balancing: 50 new-connection requests through Service getip.
            recorder.mark("send 50 requests")
            page.click("#getip-send")
            page.wait_for_selector("#getip-result[data-done]", timeout=SEND_DONE_S * 1000)
            counts: dict[str, int] = page.eval_on_selector_all(
                "#getip-counts tr[data-pod]",
                "rows => Object.fromEntries(rows.map(row => [row.dataset.pod,"
                " Number(row.querySelector('[data-field=count]').textContent)]))",
            )
            summary = page.text_content("#getip-result")
            figures.update(answers_per_pod=counts, send_result=summary)
            assert sum(counts.values()) == SEND, (
                f"{SEND} requests, answers per pod {counts}: {summary}"
            )
            assert len(counts) >= 2, (
                f"only {sorted(counts)} answered {SEND} new connections: {summary}"
            )
            assert set(counts) <= set(getip), f"answers from pods that are not getip's: {counts}"

            # Self-healing: infect one pod through the Service, watch its restarts rise.
            before = {name: int(row["restarts"]) for name, row in rows(page, "healthcheck").items()}
            recorder.mark("infect")
            page.click("#healthcheck-infect")
            page.wait_for_selector("#healthcheck-result[data-pod]", timeout=10_000)
            infected = str(page.get_attribute("#healthcheck-result", "data-pod"))
            assert infected in healthcheck, f"the infect answer came from {infected!r}"
            infected_at = time.monotonic()
            try:
                page.wait_for_function(
                    """([name, before]) => {
                        const cell = document.querySelector(
                            `#panel-healthcheck tr[data-pod="${name}"] td[data-field="restarts"]`);
                        return cell !== null && Number(cell.textContent) > before;
                    }""",
                    arg=[infected, before[infected]],
                    timeout=RESTART_SEEN_S * 1000,
                )
            except Exception as error:
                pod = get_object(cluster.kube, PODS, namespace, infected)
                raise WaitTimeout(
                    f"pod/{infected} in {namespace}: the page shows restarts "
                    f"{rows(page, 'healthcheck').get(infected, {}).get('restarts')} after "
                    f"{RESTART_SEEN_S:.0f}s, the API {restart_count(pod)} (expected more than "
                    f"{before[infected]} within {RESTART_SEEN_S:.0f}s)"
                ) from error
            seen_after = time.monotonic() - infected_at
            recorder.mark(f"restart of {infected} on the page")
            after = restart_count(get_object(cluster.kube, PODS, namespace, infected))
            figures.update(infected=infected, restart_seen_after_s=round(seen_after, 1))
            assert after > before[infected], f"the API says pod/{infected} restarted {after} times"

            screenshot = report_dir / "frontend.png"
            page.screenshot(path=str(screenshot), full_page=True)
            figures["screenshot"] = str(screenshot)
            assert not problems.seen, f"the page reported: {problems.seen}"
        finally:
            context.close()

        # A phone-sized window: everything fits the width, the pods are there.
        phone, small, _ = live_page(browser, door, PHONE)
        try:
            wait_rows(small, "getip", getip)
            widths = small.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            small.screenshot(path=str(report_dir / "frontend-phone.png"), full_page=True)
            assert widths[0] <= widths[1], (
                f"on a {PHONE['width']} px wide window the page is {widths[0]} px wide"
            )
        finally:
            phone.close()

    streams = [entry for entry in door.log if entry.path.startswith("/api/stream")]
    figures["stream_through_proxy"] = [
        {"status": s.status, "content_type": s.content_type, "chunks": s.chunks} for s in streams
    ]
    assert streams, f"no event stream went through the proxy: {door.log}"
    assert streams[0].content_type.startswith("text/event-stream"), streams[0]
    assert streams[0].chunks >= 3, f"the event stream came in one piece: {streams[0]}"


def test_the_live_page_rolls_incver_to_the_next_version_without_a_failed_request(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    browser: Any,
    figures: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    """ "Roll to the next version" patches deployment/incver from v1 to v2 with the frontend's
    name-scoped Role; the panel shows every pod on v2 and ready, and the traffic the frontend sent
    through the Service meanwhile was answered by both versions with no failed request."""
    workloads.deploy("incver", replicas=INCVER_REPLICAS)
    workloads.deploy("frontend")
    before = [name_of(pod) for pod in workloads.pods("incver")]
    report_dir: Path = request.config.stash[STATE_KEY].settings.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)

    with ServiceProxyDoor(cluster, namespace) as door:
        wait_reachable(door)
        context, page, _ = live_page(browser, door, DESKTOP)
        problems = PageProblems(page)
        try:
            wait_rows(page, "incver", before)
            assert {row["version"] for row in rows(page, "incver").values()} == {"v1"}
            recorder.mark("roll")
            page.click("#incver-roll")
            page.wait_for_selector("#incver-result:has-text('rolled from v1 to v2')")
            rolled_at = time.monotonic()
            try:
                page.wait_for_function(
                    """([replicas]) => {
                        const shown = window.kubeAlive.state.experiments.incver;
                        return shown.pods.length === replicas
                            && shown.pods.every(p => p.version === "v2" && p.ready && !p.deleting)
                            && shown.traffic && (shown.traffic.byVersion.v2 || 0) > 0;
                    }""",
                    arg=[INCVER_REPLICAS],
                    timeout=ROLL_SEEN_S * 1000,
                )
            except Exception as error:
                raise WaitTimeout(
                    f"deployment/incver in {namespace}: the page shows {rows(page, 'incver')} "
                    f"after {ROLL_SEEN_S:.0f}s (expected {INCVER_REPLICAS} ready pods on v2)"
                ) from error
            seen_after = time.monotonic() - rolled_at
            recorder.mark("v2 everywhere on the page")
            page.click("#incver-stop")
            page.wait_for_function(
                "() => !window.kubeAlive.state.experiments.incver.traffic.running"
            )
            traffic = page.evaluate("() => window.kubeAlive.state.experiments.incver.traffic")
            failed_shown = page.text_content("#incver-failed")
            page.screenshot(path=str(report_dir / "frontend-roll.png"), full_page=True)
        finally:
            context.close()
    deployment = workloads.deployment("incver")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    figures.update(
        rolled_to=image,
        all_v2_on_page_after_s=round(seen_after, 1),
        traffic={k: traffic[k] for k in ("sent", "ok", "failed", "byVersion", "lastError")},
    )
    assert image == cluster.image("v2"), f"deployment/incver runs {image} after the roll"
    assert traffic["failed"] == 0, (
        f"{traffic['failed']} of {traffic['sent']} requests through Service incver failed during "
        f"the roll (last error: {traffic['lastError']})"
    )
    assert failed_shown == "0", f"the page shows {failed_shown} failed requests"
    assert set(traffic["byVersion"]) == {"v1", "v2"}, f"answers by version: {traffic['byVersion']}"
    assert not problems.seen, f"the page reported: {problems.seen}"

"""The frontend's view of the cluster: the in-cluster API with the pod's own token, and a watch.

No Kubernetes client library: the image stays Flask + gunicorn. Requests use urllib with the
ServiceAccount token and CA from ``/var/run/secrets/kubernetes.io/serviceaccount`` (the token is
read for every request because kubelet rotates projected tokens).

``ListWatch`` keeps one collection of the pod's namespace in memory the way client-go's reflector
does: list, then watch from the list's resourceVersion; every event (bookmarks included) moves the
resourceVersion on; a stream that ends or drops is resumed from there, a 410 Gone leads to a fresh
list. The original kube-alive never moved its resourceVersion on and decoded ``terminating``
where the API says ``terminated``; ``summarize_pod`` shows terminated containers for what they are.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

JSON = dict[str, Any]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBERNETES_API = "https://kubernetes.default.svc"
API_TIMEOUT_S = 5.0
#: The API server ends each watch after this long (we then resume from the last resourceVersion):
#: short enough that a silently dead connection is noticed within a minute and a half.
WATCH_TIMEOUT_S = 60
#: A read that waits longer than this on an open watch means the connection is dead (the server
#: ends the watch after WATCH_TIMEOUT_S and sends bookmarks meanwhile).
WATCH_READ_TIMEOUT_S = WATCH_TIMEOUT_S + 30.0
#: After this many failed attempts to resume a watch, list again from scratch.
RESUME_ATTEMPTS = 3
MAX_BACKOFF_S = 10.0
MAX_LINE_BYTES = 4 * 1024 * 1024
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
APP_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"


class ApiError(Exception):
    """The API answered an error (``status``), or did not answer at all (``status`` 0)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status} {message}" if status else message)


class Gone(ApiError):
    """410 Gone: the watch's resourceVersion is too old; list again."""

    def __init__(self, message: str) -> None:
        super().__init__(410, message)


class Api(Protocol):
    """What the frontend needs from the API server (faked in the unit tests)."""

    namespace: str

    def get(self, path: str, query: Mapping[str, str] | None = None) -> JSON:
        """GET a JSON object."""
        ...

    def patch(self, path: str, body: Any, content_type: str) -> JSON:
        """PATCH with the given patch type; the answer as JSON."""
        ...

    def watch(
        self, path: str, query: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """Open a watch; iterate its lines; leaving the context closes it."""
        ...


def read_namespace(service_account_dir: str | Path) -> str:
    """The pod's namespace, from the ServiceAccount mount (must be a DNS label)."""
    path = Path(service_account_dir) / "namespace"
    try:
        namespace = path.read_text().strip()
    except OSError as exc:
        message = f"no ServiceAccount credentials at {path.parent}: {exc.strerror}"
        raise ApiError(0, message) from exc
    if not _DNS_LABEL.fullmatch(namespace):
        raise ApiError(0, f"not a namespace name: {namespace[:80]!r}")
    return namespace


def _status_message(body: bytes) -> str:
    try:
        status = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return str(status["message"])[:300]
    return ""


class InClusterApi:
    """The API server, with the pod's ServiceAccount token, over urllib."""

    def __init__(
        self,
        api_url: str,
        service_account_dir: str | Path,
        *,
        opener: urllib.request.OpenerDirector | None = None,
        namespace: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.service_account_dir = Path(service_account_dir)
        self._opener = opener
        self.namespace = namespace or read_namespace(self.service_account_dir)

    @classmethod
    def from_service_account(cls, api_url: str, service_account_dir: str | Path) -> InClusterApi:
        """Credentials from the ServiceAccount mount; the URL must be https (the token is a
        credential). Proxy variables are ignored: the API server is reached directly."""
        if not api_url.startswith("https://"):
            raise ApiError(0, "the Kubernetes API URL must be https://")
        sa_dir = Path(service_account_dir)
        try:
            context = ssl.create_default_context(cafile=str(sa_dir / "ca.crt"))
        except OSError as exc:
            raise ApiError(0, f"no ServiceAccount CA at {sa_dir}: {exc.strerror}") from exc
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        return cls(api_url, sa_dir, opener=opener)

    def _token(self) -> str:
        path = self.service_account_dir / "token"
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ApiError(0, f"no ServiceAccount token at {path}: {exc.strerror}") from exc

    def _open(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
        timeout: float,
    ) -> http.client.HTTPResponse:
        url = self.api_url + path
        if query:
            url += "?" + urllib.parse.urlencode(dict(query))
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 (our API server)
        opener = self._opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            response: http.client.HTTPResponse = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            message = _status_message(exc.read(64 * 1024)) or str(exc.reason)
            exc.close()
            if exc.code == 410:
                raise Gone(message) from exc
            raise ApiError(exc.code, message) from exc
        except (OSError, http.client.HTTPException) as exc:
            # urllib wraps the socket's error (ConnectionRefusedError, TimeoutError) in a URLError.
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise ApiError(0, f"{type(cause).__name__}: {cause}") from exc
        return response

    def _json(self, response: http.client.HTTPResponse) -> JSON:
        try:
            with response:
                data = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ApiError(0, f"the API answer could not be read: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise ApiError(0, "the API did not answer a JSON object")
        return data

    def get(self, path: str, query: Mapping[str, str] | None = None) -> JSON:
        """GET a JSON object."""
        return self._json(self._open("GET", path, query, None, None, API_TIMEOUT_S))

    def patch(self, path: str, body: Any, content_type: str) -> JSON:
        """PATCH ``body`` (JSON-encoded) with the given patch content type."""
        raw = json.dumps(body).encode()
        return self._json(self._open("PATCH", path, None, raw, content_type, API_TIMEOUT_S))

    @contextlib.contextmanager
    def watch(self, path: str, query: Mapping[str, str]) -> Iterator[Iterator[bytes]]:
        """A watch stream, one JSON event per line."""
        response = self._open("GET", path, query, None, None, WATCH_READ_TIMEOUT_S)
        try:
            yield _lines(response)
        finally:
            response.close()


def _lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    try:
        while True:
            line = response.readline(MAX_LINE_BYTES)
            if not line:
                return
            yield line
    except (OSError, http.client.HTTPException) as exc:
        raise ApiError(0, f"the watch stream broke: {type(exc).__name__}") from exc


# ---------------------------------------------------------------------------------------------
# List and watch


@dataclass
class WatchStatus:
    """How the watch is doing, for the page (and the tests)."""

    state: str = "starting"
    resource_version: str = ""
    lists: int = 0
    resumes: int = 0
    events: int = 0
    error: str | None = None
    synced: bool = False

    def to_json(self) -> JSON:
        """The status as sent to the browser."""
        return {
            "state": self.state,
            "resourceVersion": self.resource_version,
            "lists": self.lists,
            "resumes": self.resumes,
            "events": self.events,
            "error": self.error,
            "synced": self.synced,
        }


@dataclass
class ListWatch:
    """One collection of the namespace, kept up to date by list + watch (see the module doc).

    ``path`` is the collection (``/api/v1/namespaces/NS/pods``); ``field_selector`` narrows it
    (an RBAC rule with resourceNames allows list and watch only with ``metadata.name=<name>``).
    ``on_change`` is called after every change of the items or of the status.
    """

    api: Api
    path: str
    on_change: Callable[[], None] = lambda: None
    field_selector: str | None = None
    watch_timeout_s: int = WATCH_TIMEOUT_S
    status: WatchStatus = field(default_factory=WatchStatus)
    _items: dict[str, JSON] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _must_list: bool = True

    def items(self) -> list[JSON]:
        """The current objects, by name."""
        with self._lock:
            return [self._items[name] for name in sorted(self._items)]

    def _query(self) -> dict[str, str]:
        return {"fieldSelector": self.field_selector} if self.field_selector else {}

    def list(self) -> None:
        """List the collection; its resourceVersion is where the next watch starts."""
        self.status.state = "listing"
        data = self.api.get(self.path, self._query())
        items = [item for item in data.get("items") or [] if isinstance(item, dict)]
        with self._lock:
            self._items = {_name(item): item for item in items}
        self.status.resource_version = str((data.get("metadata") or {}).get("resourceVersion", ""))
        self.status.lists += 1
        self.status.synced = True
        self.status.error = None
        self._must_list = False
        self.on_change()

    def watch_once(self) -> None:
        """One watch from the current resourceVersion, until the stream ends.

        Raises ``Gone`` (list again) or ``ApiError``; a stream that simply ends returns.
        """
        query = {
            **self._query(),
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": self.status.resource_version,
            "timeoutSeconds": str(self.watch_timeout_s),
        }
        with self.api.watch(self.path, query) as lines:
            self.status.state = "watching"
            self.on_change()
            for line in lines:
                self.apply_line(line)

    def apply_line(self, line: bytes) -> None:
        """Apply one line of a watch stream to the items."""
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ApiError(0, "the watch sent a line that is not JSON") from exc
        kind = str(event.get("type", ""))
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            message = str(obj.get("message") or obj.get("reason") or "watch error")
            if code == 410:
                raise Gone(message)
            raise ApiError(code, message)
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if version:
            self.status.resource_version = version
        if kind == "BOOKMARK":
            return
        name = _name(obj)
        with self._lock:
            if kind == "DELETED":
                self._items.pop(name, None)
            elif kind in ("ADDED", "MODIFIED"):
                self._items[name] = obj
        self.status.events += 1
        self.on_change()

    def step(self) -> None:
        """List if needed, then watch once. A 410 Gone marks the items for a fresh list."""
        if self._must_list:
            self.list()
        else:
            self.status.resumes += 1
        try:
            self.watch_once()
        except Gone:
            self._must_list = True
            raise

    def run(self, stop: threading.Event, sleep: Callable[[float], bool] | None = None) -> None:
        """Keep the items up to date until ``stop`` is set (meant for a daemon thread)."""
        wait = sleep or stop.wait
        failures = 0
        while not stop.is_set():
            try:
                self.step()
                failures = 0
            except Gone as exc:
                self._failed(f"resourceVersion expired ({exc.message}); listing again")
                failures = 0
            except ApiError as exc:
                failures += 1
                if failures >= RESUME_ATTEMPTS or exc.status not in (0, 429, 500, 503, 504):
                    self._must_list = True
                self._failed(str(exc))
                # Interruptible back-off: 0.5 s, 1 s, 2 s ... up to MAX_BACKOFF_S.
                wait(min(MAX_BACKOFF_S, 0.25 * 2**failures))

    def _failed(self, message: str) -> None:
        self.status.state = "retrying"
        self.status.error = message
        self.on_change()


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


# ---------------------------------------------------------------------------------------------
# What the page shows


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``repo:tag`` or ``repo:tag@digest``), if it has one."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


#: A content-named tag (`v1-<12 hex>`, how the suite names its images: suite/images.py).
_CONTENT_TAG = re.compile(r"^(?P<version>.+)-[0-9a-f]{12}$")


def version_of_tag(tag: str) -> str:
    """The version a tag names: `v2-3f2a9c0d41b7` (named by content) -> `v2`; others as they are."""
    match = _CONTENT_TAG.match(tag)
    return match["version"] if match else tag


def parse_time(value: Any) -> float | None:
    """An API timestamp (RFC 3339) as epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def describe_state(state: Mapping[str, Any] | None) -> JSON:
    """A container state (``running``, ``waiting`` or ``terminated``) as {state, reason, exitCode}.

    ``terminated`` is the API's word (the original read ``terminating`` and so never saw one).
    """
    state = state or {}
    if "terminated" in state:
        done = state["terminated"] or {}
        return {
            "state": "terminated",
            "reason": done.get("reason") or "",
            "exitCode": done.get("exitCode"),
            "signal": done.get("signal"),
            "finishedAt": done.get("finishedAt"),
        }
    if "waiting" in state:
        waiting = state["waiting"] or {}
        return {"state": "waiting", "reason": waiting.get("reason") or ""}
    if "running" in state:
        return {"state": "running", "reason": ""}
    return {"state": "unknown", "reason": ""}


def pod_status_text(pod: Mapping[str, Any], containers: list[JSON]) -> str:
    """One word or phrase like kubectl's STATUS column."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    for container in containers:
        state = container["state"]
        if state["state"] == "terminated":
            text = f"Terminated: {state['reason'] or 'exited'}"
            if state.get("exitCode") is not None:
                text += f" (exit {state['exitCode']})"
            return text
        if state["state"] == "waiting" and state["reason"]:
            return str(state["reason"])
    return str((pod.get("status") or {}).get("phase") or "Unknown")


def summarize_pod(pod: Mapping[str, Any]) -> JSON:
    """The facts one row of the page shows about a pod."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    conditions = status.get("conditions") or []
    images = [str(c.get("image", "")) for c in spec.get("containers") or []]
    # The image tag is what runs; a version label can go stale after `set image`.
    tag = image_tag(images[0]) if images else None
    version = (version_of_tag(tag) if tag else None) or labels.get(VERSION_LABEL)
    containers = []
    for entry in status.get("containerStatuses") or []:
        last = describe_state(entry.get("lastState"))
        containers.append(
            {
                "name": entry.get("name"),
                "ready": bool(entry.get("ready")),
                "restarts": int(entry.get("restartCount") or 0),
                "state": describe_state(entry.get("state")),
                "last": last if last["state"] == "terminated" else None,
            }
        )
    summary = {
        "name": _name(pod),
        "app": labels.get(APP_LABEL),
        "node": spec.get("nodeName"),
        "phase": status.get("phase"),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        "restarts": sum(c["restarts"] for c in containers),
        "version": version,
        "created": parse_time(meta.get("creationTimestamp")),
        "deleting": meta.get("deletionTimestamp") is not None,
        "containers": containers,
    }
    summary["status"] = pod_status_text(pod, containers)
    return summary


def summarize_hpa(hpa: Mapping[str, Any]) -> JSON:
    """Replicas and CPU of a HorizontalPodAutoscaler (autoscaling/v2) as the page shows them."""
    spec = hpa.get("spec") or {}
    status = hpa.get("status") or {}
    target = None
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target = (resource.get("target") or {}).get("averageUtilization")
    current = None
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            current = (resource.get("current") or {}).get("averageUtilization")
    problem = None
    for entry in status.get("conditions") or []:
        if entry.get("type") == "ScalingActive" and entry.get("status") == "False":
            problem = f"{entry.get('reason')}: {entry.get('message')}"
    return {
        "name": _name(hpa),
        "minReplicas": spec.get("minReplicas", 1),
        "maxReplicas": spec.get("maxReplicas"),
        "currentReplicas": status.get("currentReplicas"),
        "desiredReplicas": status.get("desiredReplicas"),
        "targetCPU": target,
        "currentCPU": current,
        "lastScaleTime": parse_time(status.get("lastScaleTime")),
        "problem": problem,
    }


def now() -> float:
    """Wall-clock seconds (the browser shows ages against the server's clock)."""
    return time.time()

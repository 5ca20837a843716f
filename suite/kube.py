"""The one door to the Kubernetes API: JSON dicts in, JSON dicts out.

Everything in the suite talks to the cluster through the small `Kube` protocol below. The real
implementation rides on the official client's `ApiClient` (authentication, TLS, kubeconfig and
exec plugins stay its business) but asks for raw responses (`_preload_content=False` semantics),
so objects stay plain dicts: JSON-serialisable for the report, easy to fake in unit tests, and
independent of the generated models. Only this module imports `kubernetes`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

JSON = dict[str, Any]
Query = Mapping[str, str | int | bool]

#: Connect and read timeouts (seconds) for ordinary requests. Watches and streams set their own.
DEFAULT_TIMEOUT = (5.0, 30.0)
#: An API answer that takes this long (to its headers) is slow enough to name when a wait runs
#: out: the suite's deadlines assume answers in well under a second.
SLOW_ANSWER_S = 1.0


class KubeError(Exception):
    """An API request failed: the HTTP status (0 when no answer came), the reason and the body."""

    def __init__(
        self, status: int, reason: str, body: str = "", *, method: str = "", path: str = ""
    ) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.method = method
        self.path = path
        super().__init__(str(self))

    @property
    def message(self) -> str:
        """The server's own explanation (Status.message) when it sent one, else the reason."""
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return self.body.strip()[:300] or self.reason
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            return str(parsed["message"])
        return self.reason

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.path else ""
        detail = self.message
        if detail and detail != self.reason:
            return f"{where}{self.status} {self.reason}: {detail}"
        return f"{where}{self.status} {self.reason}"


class KubeconfigError(Exception):
    """A kubeconfig that cannot be used (missing file, unknown context, bad credentials entry)."""


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again and watch from there."""


class LineStream(Protocol):
    """Lines of a streaming response; `close()` may be called from another thread to unblock it."""

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


class Kube(Protocol):
    """The API surface the suite needs: one request, one streaming request."""

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        """Send one request; return parsed JSON (or text for non-JSON answers)."""
        ...

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> LineStream:
        """Send one request and return its body as a stream of lines."""
        ...


# ---------------------------------------------------------------------------------------------
# How long answers take


class Latency:
    """How long the API server takes to answer, as this client sees it: from sending a request to
    its answer's headers (a watch or stream counts until it starts), thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, keep: int = 2000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: deque[tuple[float, float]] = deque(maxlen=keep)
        self._open: dict[int, float] = {}
        self._tokens = itertools.count()

    def now(self) -> float:
        """This measure's clock."""
        return self._clock()

    def begin(self) -> int:
        """A request is sent; returns its token for `end`."""
        token = next(self._tokens)
        with self._lock:
            self._open[token] = self._clock()
        return token

    def end(self, token: int) -> None:
        """The request's answer (or its failure) came."""
        now = self._clock()
        with self._lock:
            started = self._open.pop(token, None)
            if started is not None:
                self._answers.append((started, now - started))

    def seconds(self, since: float) -> list[float]:
        """How long each request sent after `since` took to be answered, in order of sending."""
        with self._lock:
            return [seconds for started, seconds in self._answers if started >= since]

    def note(self, since: float, slow_s: float = SLOW_ANSWER_S) -> str:
        """ "" unless an answer to a request sent after `since` (this clock) took `slow_s` or more,
        or a request has waited that long unanswered; else that, in words, with the figures."""
        now = self._clock()
        with self._lock:
            took = sorted(seconds for started, seconds in self._answers if started >= since)
            waiting = sorted(now - started for started in self._open.values())
        slow = [seconds for seconds in took if seconds >= slow_s]
        stuck = [seconds for seconds in waiting if seconds >= slow_s]
        if not slow and not stuck:
            return ""
        parts = []
        if took:
            parts.append(
                f"{len(slow)} of {len(took)} answers took {slow_s:.0f}s or more (median "
                f"{statistics.median(took):.1f}s, slowest {took[-1]:.1f}s)"
            )
        if stuck:
            parts.append(f"{len(stuck)} requests unanswered after up to {stuck[-1]:.1f}s")
        return "the API server answered slowly: " + ", ".join(parts) + " (measured by the suite)"


def latency_now(kube: Kube) -> float:
    """Now on the clock of `kube`'s Latency (where `latency_note` measures from)."""
    latency = getattr(kube, "latency", None)
    return latency.now() if isinstance(latency, Latency) else time.monotonic()


def latency_note(kube: Kube, since: float) -> str:
    """`Latency.note` of a Kube that measures its answers ("" for one that does not)."""
    latency = getattr(kube, "latency", None)
    return latency.note(since) if isinstance(latency, Latency) else ""


# ---------------------------------------------------------------------------------------------
# The real thing


class _UrllibLineStream:
    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[str]:
        buffer = bytearray()
        try:
            for segment in self._response.stream(amt=None, decode_content=True):
                if self._closed.is_set():
                    return
                buffer.extend(segment)
                while (newline := buffer.find(b"\n")) != -1:
                    line = buffer[:newline].decode("utf-8", errors="replace")
                    del buffer[: newline + 1]
                    yield line
            if buffer and not self._closed.is_set():
                yield buffer.decode("utf-8", errors="replace")
        except Exception as error:
            if self._closed.is_set():
                return
            raise KubeError(0, f"stream broke: {type(error).__name__}: {error}") from error
        finally:
            self._release()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        # A read blocked in another thread only returns when its socket goes away; shutting the
        # socket down (rather than closing the response) is what unblocks it without deadlock.
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None) if connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _release(self) -> None:
        try:
            self._response.close()
            self._response.release_conn()
        except Exception:  # noqa: S110 - releasing a dead connection may fail; nothing to do
            pass


def client_configuration(kubeconfig: Path | None, context: str | None) -> Any:
    """The official client's `Configuration` for a kubeconfig and context (None: the default
    file, the current context), loaded the way kubectl would; no request is sent.

    The one place a kubeconfig becomes server address and credentials: `ApiKube` builds on it,
    and so can anything that needs the same address, CA or credentials for another client.
    An unusable kubeconfig raises KubeconfigError naming the file and the context.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except Exception as error:  # ConfigException, OSError, YAML errors: all mean "unusable"
        where = (
            str(kubeconfig)
            if kubeconfig
            else "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
        )
        what = f"context {context!r} of " if context else ""
        raise KubeconfigError(f"cannot use {what}{where}: {error}") from error
    return configuration


class ApiKube:
    """`Kube` over the official client's `ApiClient` (built from a kubeconfig)."""

    def __init__(self, api_client: Any) -> None:
        self._api = api_client
        self.latency = Latency()

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: Path | None, context: str | None, *, pool_size: int = 32
    ) -> ApiKube:
        """Load a kubeconfig (and context) the way kubectl would; no request is sent yet.

        Retries are kept to one so an unreachable server fails fast; the connection pool is
        large because every test runs several watches at once.
        """
        import urllib3
        from kubernetes import client

        configuration = client_configuration(kubeconfig, context)
        configuration.retries = urllib3.util.Retry(total=1, connect=1, read=0, backoff_factor=0.2)
        configuration.connection_pool_maxsize = pool_size
        return cls(client.ApiClient(configuration=configuration))

    @staticmethod
    def current_context(kubeconfig: Path | None) -> str:
        """The kubeconfig's current-context ("" when it cannot be read)."""
        from kubernetes import config

        try:
            _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                str(kubeconfig) if kubeconfig else None
            )
        except Exception:
            return ""
        return str((active or {}).get("name", ""))

    @property
    def host(self) -> str:
        """The API server URL."""
        return str(self._api.configuration.host)

    def _send(
        self,
        method: str,
        path: str,
        query: Query | None,
        body: Any,
        content_type: str | None,
        accept: str,
        timeout: float | tuple[float, float] | None,
    ) -> Any:
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": accept}
        if body is not None or method in ("POST", "PUT", "PATCH"):
            headers["Content-Type"] = content_type or "application/json"
        params = [(key, _query_value(value)) for key, value in (query or {}).items()]
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        token = self.latency.begin()
        try:
            return self._api.call_api(*serialized, _request_timeout=timeout or DEFAULT_TIMEOUT)
        except ApiException as error:
            raise KubeError(
                int(error.status or 0),
                str(error.reason),
                str(error.body or ""),
                method=method,
                path=path,
            ) from error
        except Exception as error:  # urllib3 / socket errors: no answer at all
            raise KubeError(
                0, f"{type(error).__name__}: {error}", method=method, path=path
            ) from error
        finally:
            self.latency.end(token)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        """Send one request; return parsed JSON, or text when the answer is not JSON."""
        response = self._send(
            method, path, query, body, content_type, "application/json, */*", timeout
        )
        data = response.read()
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
        if not 200 <= int(response.status) <= 299:
            raise KubeError(
                int(response.status), str(response.reason), text, method=method, path=path
            )
        content = str(response.headers.get("content-type", ""))
        if "json" in content:
            return json.loads(text) if text else None
        return text

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> LineStream:
        """Send one request and return the body line by line as it arrives."""
        response = self._send(method, path, query, body, None, "application/json, */*", timeout)
        if not 200 <= int(response.status) <= 299:
            data = response.read()
            text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
            raise KubeError(
                int(response.status), str(response.reason), text, method=method, path=path
            )
        return _UrllibLineStream(response.response)


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Resources, list and watch


@dataclass(frozen=True)
class Resource:
    """A REST collection: `kind` for messages, `api` prefix and `plural` for paths."""

    kind: str
    api: str
    plural: str
    namespaced: bool = True

    @property
    def short(self) -> str:
        """The kubectl-style lower-case name used in messages (deployment/getip)."""
        return self.kind.lower()

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The collection path (or one object's path when `name` is given)."""
        base = self.api
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


PODS = Resource("Pod", "/api/v1", "pods")
EVENTS = Resource("Event", "/api/v1", "events")
SERVICES = Resource("Service", "/api/v1", "services")
SERVICEACCOUNTS = Resource("ServiceAccount", "/api/v1", "serviceaccounts")
NAMESPACES = Resource("Namespace", "/api/v1", "namespaces", namespaced=False)
NODES = Resource("Node", "/api/v1", "nodes", namespaced=False)
DEPLOYMENTS = Resource("Deployment", "/apis/apps/v1", "deployments")
REPLICASETS = Resource("ReplicaSet", "/apis/apps/v1", "replicasets")
HPAS = Resource("HorizontalPodAutoscaler", "/apis/autoscaling/v2", "horizontalpodautoscalers")
ENDPOINTSLICES = Resource("EndpointSlice", "/apis/discovery.k8s.io/v1", "endpointslices")
APISERVICES = Resource(
    "APIService", "/apis/apiregistration.k8s.io/v1", "apiservices", namespaced=False
)


def get_object(kube: Kube, resource: Resource, namespace: str | None, name: str) -> JSON:
    """GET one object."""
    result = kube.request("GET", resource.path(namespace, name))
    return dict(result)


def list_objects(
    kube: Kube,
    resource: Resource,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> tuple[list[JSON], str]:
    """List a collection (following `continue` pages); return its items and resourceVersion."""
    items: list[JSON] = []
    token = ""
    while True:
        query: dict[str, str | int | bool] = {"limit": 500}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if token:
            query["continue"] = token
        page = kube.request("GET", resource.path(namespace), query=query)
        items.extend(page.get("items") or [])
        meta = page.get("metadata") or {}
        token = str(meta.get("continue") or "")
        if not token:
            return items, str(meta.get("resourceVersion") or "")


#: A ListWatcher retries after an error at once and then ever later, this many seconds apart at
#: first, doubling up to the most; the first success starts it over.
WATCH_RETRY_FIRST_S = 0.2
WATCH_RETRY_MAX_S = 5.0


# ---------------------------------------------------------------------------------------------
# Small helpers on plain dicts


def name_of(obj: Mapping[str, Any]) -> str:
    """metadata.name."""
    return str((obj.get("metadata") or {}).get("name", ""))


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """metadata.labels (never None)."""
    return dict((obj.get("metadata") or {}).get("labels") or {})


def selector_string(match_labels: Mapping[str, str]) -> str:
    """A label selector string from matchLabels (`a=b,c=d`)."""
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """True when every selector label is present with the same value."""
    return all(labels.get(key) == value for key, value in selector.items())


def condition(obj: Mapping[str, Any], kind: str) -> JSON | None:
    """status.conditions entry of a type, if present."""
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    entry = condition(pod, "Ready")
    return bool(entry and entry.get("status") == "True")


def is_terminating(obj: Mapping[str, Any]) -> bool:
    """metadata.deletionTimestamp is set."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def container_statuses(pod: Mapping[str, Any]) -> Sequence[JSON]:
    """status.containerStatuses (never None)."""
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def restart_count(pod: Mapping[str, Any]) -> int:
    """Sum of restartCount over the pod's containers."""
    return sum(int(status.get("restartCount") or 0) for status in container_statuses(pod))

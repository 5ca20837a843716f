"""List and watch: a collection's objects, then every change to them, as `WatchEvent`s; a watch that
expires (410 Gone) or breaks is relisted with the last resourceVersion kept, so a caller sees every
change or is told which it missed. Built on the `Kube` protocol (suite.kube).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from suite.kube import (
    DEFAULT_TIMEOUT,
    JSON,
    WATCH_RETRY_FIRST_S,
    WATCH_RETRY_MAX_S,
    Kube,
    KubeError,
    LineStream,
    Resource,
    WatchExpired,
    list_objects,
)


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ADDED, MODIFIED, DELETED or BOOKMARK, and the object as a dict."""

    type: str
    object: JSON

    @property
    def resource_version(self) -> str:
        """The object's resourceVersion (where to resume the watch from)."""
        return str(self.object.get("metadata", {}).get("resourceVersion", ""))


def parse_watch_line(line: str) -> WatchEvent | None:
    """Decode one line of a watch stream; raise WatchExpired on 410, KubeError on other errors."""
    if not line.strip():
        return None
    event = json.loads(line)
    kind = str(event.get("type", ""))
    obj = event.get("object") or {}
    if kind == "ERROR":
        code = int(obj.get("code") or 0)
        if code == 410:
            raise WatchExpired(str(obj.get("message", "resourceVersion too old")))
        raise KubeError(code, str(obj.get("reason", "watch error")), json.dumps(obj))
    return WatchEvent(kind, obj)


def open_watch(
    kube: Kube,
    resource: Resource,
    namespace: str | None,
    resource_version: str,
    *,
    timeout_s: int,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> LineStream:
    """Start a watch from `resource_version`; the server ends it after `timeout_s`."""
    query: dict[str, str | int | bool] = {
        "watch": True,
        "allowWatchBookmarks": True,
        "timeoutSeconds": max(1, int(timeout_s)),
    }
    if resource_version:
        query["resourceVersion"] = resource_version
    if label_selector:
        query["labelSelector"] = label_selector
    if field_selector:
        query["fieldSelector"] = field_selector
    try:
        return kube.stream(
            "GET",
            resource.path(namespace),
            query=query,
            timeout=(DEFAULT_TIMEOUT[0], float(timeout_s) + 15.0),
        )
    except KubeError as error:
        if error.status == 410:
            raise WatchExpired(error.message) from error
        raise


class ListWatcher:
    """Keeps up with one collection: list, then watch from the list's resourceVersion, forever.

    `on_sync(items)` gets the full state after every (re)list; `on_event(type, obj)` gets each
    change. Expired watches (410 Gone) and broken connections lead to a relist, so consumers
    never miss a state even if they miss intermediate changes; `on_lost(reason)` is told once
    per such loss, when it is noticed, so a consumer can say from when to when it was blind (the
    next `on_sync` ends the loss). Runs in a daemon thread until `stop()`.
    """

    def __init__(
        self,
        kube: Kube,
        resource: Resource,
        namespace: str | None,
        *,
        on_sync: Callable[[list[JSON]], None],
        on_event: Callable[[str, JSON], None],
        on_error: Callable[[Exception], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout_s: int = 50,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout_s = watch_timeout_s
        self._on_sync = on_sync
        self._on_event = on_event
        self._on_error = on_error
        self._on_lost = on_lost
        self._lost = False
        self._stopping = threading.Event()
        self._stream: LineStream | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{resource.plural}-{namespace}", daemon=True
        )
        self.resource_version = ""
        self.relists = 0

    def start(self) -> ListWatcher:
        """Start the background thread (returns self)."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and wait (bounded) for the thread to end."""
        self.signal_stop()
        self.join(timeout)

    def signal_stop(self) -> None:
        """Ask the thread to stop and unblock its read; does not wait."""
        self._stopping.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def join(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the thread to end."""
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        """True once `stop()` was called."""
        return self._stopping.is_set()

    def _run(self) -> None:
        backoff = WATCH_RETRY_FIRST_S
        while not self._stopping.is_set():
            try:
                self._list_and_watch()
                backoff = WATCH_RETRY_FIRST_S
            except Exception as error:
                if self._stopping.is_set():
                    return
                self._lose(str(error))
                if self._on_error is not None:
                    self._on_error(error)
                # Back off after an error (API server restarting, network blip), interruptibly.
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, WATCH_RETRY_MAX_S)

    def _lose(self, reason: str) -> None:
        # Only a watch that had listed can lose anything; one call per loss, not per retry.
        if self._lost or not self.relists:
            return
        self._lost = True
        if self._on_lost is not None:
            self._on_lost(reason)

    def _list_and_watch(self) -> None:
        items, self.resource_version = list_objects(
            self.kube,
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        self.relists += 1
        self._lost = False
        self._on_sync(items)
        while not self._stopping.is_set():
            try:
                stream = open_watch(
                    self.kube,
                    self.resource,
                    self.namespace,
                    self.resource_version,
                    timeout_s=self.watch_timeout_s,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                )
            except WatchExpired as expired:
                self._lose(f"watch expired (410 Gone): {expired}")
                return
            with self._lock:
                self._stream = stream
                # A stop that came while the watch was opening found no stream to close.
                stopping = self._stopping.is_set()
            if stopping:
                with self._lock:
                    self._stream = None
                stream.close()
                return
            try:
                for line in stream:
                    if self._stopping.is_set():
                        return
                    event = parse_watch_line(line)
                    if event is None:
                        continue
                    if event.resource_version:
                        self.resource_version = event.resource_version
                    if event.type != "BOOKMARK":
                        self._on_event(event.type, event.object)
            except WatchExpired as expired:
                self._lose(f"watch expired (410 Gone): {expired}")
                return  # relist
            finally:
                with self._lock:
                    self._stream = None
                stream.close()

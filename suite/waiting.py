"""The one waiting module.

Kubernetes state is waited for as *get, check, watch* under ONE explicit deadline: every source
is listed (get), the check runs on the full state, then every change (watch) re-runs the check.
A check answers `Done(value)`, `Failed(reason)` (stop early: the state can no longer become
right, e.g. ImagePullBackOff) or `Pending(seen)` (what was last seen, for the timeout message).
Watches that expire (410 Gone) are relisted with their resourceVersion kept between events
(see `suite.listwatch.ListWatcher`).

HTTP readiness is waited for with bounded tenacity retries over a stated list of transient errors.

Every failure message reads
`<what> in <where>: <last seen> after <N>s (expected <state> within <T>s); last event: <...>;
see: <where to look>`.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from localcluster.util import Deadline as Deadline  # the one deadline class, shared
from suite.kube import (
    EVENTS,
    JSON,
    Kube,
    KubeError,
    Resource,
    latency_note,
    latency_now,
    list_objects,
    name_of,
)
from suite.listwatch import ListWatcher

T = TypeVar("T")

#: Container waiting reasons after which a pod will not become ready by itself.
IMAGE_FAILURES = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
START_FAILURES = frozenset(
    {"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)
#: HTTP statuses worth retrying while something becomes reachable (0: no answer at all).
TRANSIENT_STATUSES = frozenset({0, 429, 502, 503, 504})


class WaitFailed(AssertionError):
    """The awaited state cannot be reached (a failure condition held) or was not reached in time."""


class WaitTimeout(WaitFailed):
    """The deadline passed before the awaited state was seen."""


@dataclass(frozen=True)
class Done:
    """The awaited state holds; `value` is handed back to the caller."""

    value: Any = None


@dataclass(frozen=True)
class Failed:
    """The state went somewhere it will not come back from by itself."""

    reason: str


@dataclass(frozen=True)
class Pending:
    """Not there yet; `seen` describes the current state for the timeout message."""

    seen: str


Verdict = Done | Failed | Pending
#: The observed state handed to checks: source key -> object name -> object.
State = Mapping[str, Mapping[str, JSON]]


@dataclass(frozen=True)
class Source:
    """One collection to watch while waiting."""

    key: str
    resource: Resource
    namespace: str | None
    label_selector: str | None = None
    field_selector: str | None = None


def format_message(
    what: str,
    where: str,
    seen: str,
    elapsed: float,
    expected: str,
    *,
    timeout_s: float | None = None,
    last_event: str = "",
    hint: str = "",
    api: str = "",
) -> str:
    """The house format: what, where, last seen, time spent, expected state, where to look (and,
    in `api`, how slowly the API server answered when that may explain it)."""
    within = f" within {timeout_s:.0f}s" if timeout_s is not None else ""
    text = f"{what} in {where}: {seen} after {elapsed:.0f}s (expected {expected}{within})"
    if api:
        text += f"; {api}"
    if last_event:
        text += f"; last event: {last_event}"
    if hint:
        text += f"; see: {hint}"
    return text


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("series") or {}).get("lastObservedTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def describe_event(event: Mapping[str, Any]) -> str:
    """`Reason (kind/name: message)` of one Event, kept short."""
    involved = event.get("involvedObject") or event.get("regarding") or {}
    target = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
    message = " ".join(str(event.get("message") or event.get("note") or "").split())
    if len(message) > 160:
        message = message[:157] + "..."
    return f"{event.get('reason', '?')} ({target}: {message})"


def last_event(
    kube: Kube, namespace: str | None, related: Callable[[Mapping[str, Any]], bool] | None = None
) -> str:
    """The most recent Event in `namespace` (optionally only related ones), described; "" if none
    or if the events cannot be read."""
    if not namespace:
        return ""
    try:
        events, _ = list_objects(kube, EVENTS, namespace)
    except KubeError:
        return ""
    chosen = [event for event in events if related is None or related(event)]
    if not chosen:
        return ""
    return describe_event(max(chosen, key=_event_time))


def wait_until(
    kube: Kube,
    sources: Sequence[Source],
    check: Callable[[State], Verdict],
    *,
    timeout_s: float,
    what: str,
    where: str,
    expected: str,
    hint: str = "",
    events_namespace: str | None = None,
    related_event: Callable[[Mapping[str, Any]], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    watch_timeout_s: int | None = None,
) -> Any:
    """Get, check, watch: return `Done.value` as soon as the check says so, under one deadline.

    Raises `WaitFailed` on a `Failed` verdict and `WaitTimeout` when the deadline passes, both
    with a message in the house format (the last Event of `events_namespace` included).
    """
    deadline = Deadline(timeout_s, clock)
    sent_since = latency_now(kube)
    inbox: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    state: dict[str, dict[str, JSON]] = {source.key: {} for source in sources}
    synced: set[str] = set()
    seen = "nothing observed yet"
    last_error: Exception | None = None
    server_timeout = watch_timeout_s or max(1, min(50, math.ceil(timeout_s) + 1))

    def make(source: Source) -> ListWatcher:
        key = source.key
        return ListWatcher(
            kube,
            source.resource,
            source.namespace,
            on_sync=lambda items: inbox.put((key, "sync", items)),
            on_event=lambda kind, obj: inbox.put((key, "event", (kind, obj))),
            on_error=lambda error: inbox.put((key, "error", error)),
            label_selector=source.label_selector,
            field_selector=source.field_selector,
            watch_timeout_s=server_timeout,
        )

    watchers = [make(source) for source in sources]

    def fail(cls: type[WaitFailed], text: str) -> WaitFailed:
        elapsed = deadline.elapsed()
        # Measured before the last event is fetched (one more request, as slow as the others).
        api = latency_note(kube, sent_since)
        event = last_event(kube, events_namespace, related_event)
        return cls(
            format_message(
                what,
                where,
                text,
                elapsed,
                expected,
                timeout_s=timeout_s,
                last_event=event,
                hint=hint,
                api=api,
            )
        )

    try:
        for watcher in watchers:
            watcher.start()
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                break
            try:
                key, kind, payload = inbox.get(timeout=remaining)
            except queue.Empty:
                break
            if kind == "error":
                last_error = payload
                continue
            if kind == "sync":
                state[key] = {name_of(obj): obj for obj in payload}
                synced.add(key)
            else:
                event_type, obj = payload
                if event_type == "DELETED":
                    state[key].pop(name_of(obj), None)
                else:
                    state[key][name_of(obj)] = obj
            if len(synced) < len(sources):
                continue
            verdict = check(state)
            if isinstance(verdict, Done):
                return verdict.value
            if isinstance(verdict, Failed):
                raise fail(WaitFailed, verdict.reason)
            seen = verdict.seen
        if len(synced) < len(sources) and last_error is not None:
            seen = f"{seen}; the API did not answer: {last_error}"
        raise fail(WaitTimeout, seen)
    finally:
        for watcher in watchers:
            watcher.signal_stop()
        for watcher in watchers:
            watcher.join(2.0)


# ---------------------------------------------------------------------------------------------
# Things that are not Kubernetes objects (the waits for objects are in suite/waits.py)


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying while a Service or pod becomes reachable through the API server's
    proxy: no answer (status 0), 429, 502, 503 (no endpoints yet), 504, and plain connection or
    timeout errors."""
    if isinstance(error, KubeError):
        return error.status in TRANSIENT_STATUSES
    return isinstance(error, ConnectionError | TimeoutError)


def retry_transient(
    action: Callable[[], T],
    *,
    timeout_s: float,
    what: str,
    where: str,
    expected: str,
    hint: str = "",
    transient: Callable[[BaseException], bool] = is_transient,
    max_backoff_s: float = 2.0,
) -> T:
    """Call `action` until it succeeds, retrying only transient errors, for at most `timeout_s`.

    Non-transient errors propagate at once; running out of time raises `WaitTimeout` naming the
    last error.
    """
    started = time.monotonic()
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout_s),
        wait=tenacity.wait_exponential(multiplier=0.1, max=max_backoff_s),
        retry=tenacity.retry_if_exception(transient),
        reraise=False,
    )
    try:
        return retrying(action)
    except tenacity.RetryError as error:
        last = error.last_attempt.exception()
        raise WaitTimeout(
            format_message(
                what,
                where,
                f"last error {last}",
                time.monotonic() - started,
                expected,
                timeout_s=timeout_s,
                hint=hint,
            )
        ) from last


def wait_condition(
    lock: threading.Condition,
    predicate: Callable[[], Verdict],
    *,
    timeout_s: float,
    what: str,
    where: str,
    expected: str,
    hint: str = "",
) -> Any:
    """Wait on an in-process condition variable (e.g. answers collected by background traffic)
    until `predicate` says Done or Failed, under one deadline."""
    deadline = Deadline(timeout_s)
    with lock:
        while True:
            verdict = predicate()
            if isinstance(verdict, Done):
                return verdict.value
            if isinstance(verdict, Failed):
                raise WaitFailed(
                    format_message(
                        what, where, verdict.reason, deadline.elapsed(), expected, hint=hint
                    )
                )
            remaining = deadline.remaining()
            if remaining <= 0:
                raise WaitTimeout(
                    format_message(
                        what,
                        where,
                        verdict.seen,
                        deadline.elapsed(),
                        expected,
                        timeout_s=timeout_s,
                        hint=hint,
                    )
                )
            lock.wait(remaining)

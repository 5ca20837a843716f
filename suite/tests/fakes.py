"""A fake `Kube`: routes requests to canned answers, streams scripted lines."""

from __future__ import annotations

import copy
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from suite.kube import KubeError
from suite.samples import PodView
from suite.traffic import Answer


class FakeStream:
    """Scripted lines (an exception among them is raised there: the stream breaks); with
    `block`, waits for more (pushed) lines until closed."""

    def __init__(self, lines: Iterable[str | BaseException] = (), *, block: bool = False) -> None:
        self._queue: queue.Queue[str | BaseException] = queue.Queue()
        for line in lines:
            self._queue.put(line)
        self.block = block
        self.closed = threading.Event()

    def push(self, line: str) -> None:
        self._queue.put(line)

    def __iter__(self) -> Iterator[str]:
        while not self.closed.is_set():
            try:
                item = self._queue.get(timeout=0.02)
            except queue.Empty:
                if not self.block:
                    return
                continue
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.closed.set()


Handler = Callable[..., Any]


class FakeKube:
    """Answers requests from registered routes (regex on the path); records every call."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Any]] = []
        self.calls: list[tuple[str, str, dict[str, Any], Any]] = []
        self.lock = threading.Lock()

    def on(self, method: str, pattern: str, answer: Any) -> FakeKube:
        """Register an answer: a value (deep-copied), an exception (raised) or a callable
        (called with method, path, query, body)."""
        self.routes.insert(0, (method, re.compile(pattern + r"$"), answer))
        return self

    def _answer(self, method: str, path: str, query: Any, body: Any) -> Any:
        with self.lock:
            self.calls.append((method, path, dict(query or {}), body))
        for route_method, pattern, answer in self.routes:
            if route_method == method and pattern.match(path):
                if isinstance(answer, BaseException):
                    raise answer
                if callable(answer):
                    return answer(method, path, dict(query or {}), body)
                return copy.deepcopy(answer)
        raise KubeError(404, "Not Found", json.dumps({"message": f"no route {method} {path}"}))

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Any = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: Any = None,
    ) -> Any:
        return self._answer(method, path, query, body)

    def stream(
        self, method: str, path: str, *, query: Any = None, body: Any = None, timeout: Any = None
    ) -> Any:
        result = self._answer(method, path, query, body)
        if isinstance(result, FakeStream):
            return result
        return FakeStream(result)

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, _, _ in self.calls if method is None or m == method]


class Collection:
    """A watchable collection: list answers `items`; each watch pops the next scripted stream
    (then blocks with nothing)."""

    def __init__(self, items: list[dict[str, Any]], resource_version: str = "100") -> None:
        self.items = items
        self.resource_version = resource_version
        self.watches: list[FakeStream] = []
        self.opened: list[dict[str, Any]] = []
        self.lists = 0

    def handler(self, method: str, path: str, query: dict[str, Any], body: Any) -> Any:
        if query.get("watch"):
            self.opened.append(query)
            if self.watches:
                return self.watches.pop(0)
            return FakeStream(block=True)
        self.lists += 1
        return {
            "items": copy.deepcopy(self.items),
            "metadata": {"resourceVersion": self.resource_version},
        }


def event(kind: str, obj: dict[str, Any]) -> str:
    """One watch line."""
    return json.dumps({"type": kind, "object": obj})


def pod(
    name: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
    restarts: int = 0,
    waiting: str | None = None,
    terminated: tuple[str, int] | None = None,
    last: tuple[str, int] | None = None,
    image: str = "localhost/kube-alive/workloads:v1",
    deleting: bool = False,
    rv: str = "1",
) -> dict[str, Any]:
    """A Pod object with one container named `app`."""
    state: dict[str, Any] = {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": f"{waiting} message"}}
    if terminated:
        state = {"terminated": {"reason": terminated[0], "exitCode": terminated[1]}}
    last_state = {"terminated": {"reason": last[0], "exitCode": last[1]}} if last else {}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "ka-test",
        "labels": labels if labels is not None else {"app.kubernetes.io/name": "app"},
        "resourceVersion": rv,
        "ownerReferences": [{"kind": "ReplicaSet", "name": "app-rs1"}],
    }
    if deleting:
        metadata["deletionTimestamp"] = "2025-01-01T00:00:10Z"
    return {
        "metadata": metadata,
        "spec": {"nodeName": "node1", "containers": [{"name": "app", "image": image}]},
        "status": {
            "phase": phase,
            "podIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": image,
                    "ready": ready,
                    "restartCount": restarts,
                    "state": state,
                    "lastState": last_state,
                }
            ],
        },
    }


def deployment(
    name: str = "app",
    *,
    replicas: int = 4,
    ready: int = 4,
    updated: int | None = None,
    total: int | None = None,
    available: int | None = None,
    generation: int = 1,
    observed: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Deployment object."""
    return {
        "metadata": {"name": name, "generation": generation, "resourceVersion": "5"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"spec": {"containers": [{"name": name, "image": "img:v1"}]}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas if total is None else total,
            "updatedReplicas": replicas if updated is None else updated,
            "readyReplicas": ready,
            "availableReplicas": ready if available is None else available,
            "conditions": conditions or [],
        },
    }


def answer(start, *, ok=True, pod="a", end=None, received=0.0, chunk=0, status=None, error=None):
    """One answer of the prober, as the proofs' tests build them."""
    return Answer(
        seq=0,
        start=start,
        end=start + 0.01 if end is None else end,
        status=status if status is not None else (200 if ok else 503),
        ok=ok,
        pod=pod,
        version="v1",
        error=error,
        chunk=chunk,
        received=received,
    )


def recorded_event(obj, reason, message, t=1.0):
    """One recorded event, as the proofs' tests build them."""
    return {"object": obj, "reason": reason, "message": message, "t": t}


#: A healthy pod "h" answering every 0.1 s from 10.0 to 19.9.
SERVED = [answer(10.0 + 0.1 * i, pod="h") for i in range(100)]


def ready_view(ready):
    """A running pod "s", Ready or not."""
    return PodView(name="s", phase="Running", ready=ready, terminating=False)

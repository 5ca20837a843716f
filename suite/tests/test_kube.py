import json
import threading

import pytest

from suite.kube import (
    DEPLOYMENTS,
    HPAS,
    NAMESPACES,
    PODS,
    KubeError,
    Latency,
    WatchExpired,
    latency_note,
    list_objects,
    restart_count,
    selector_string,
)
from suite.listwatch import ListWatcher, parse_watch_line
from suite.tests.fakes import Collection, FakeKube, FakeStream, event, pod


def test_resource_paths():
    assert PODS.path("ns") == "/api/v1/namespaces/ns/pods"
    assert PODS.path("ns", "p") == "/api/v1/namespaces/ns/pods/p"
    assert DEPLOYMENTS.path("ns", "d") == "/apis/apps/v1/namespaces/ns/deployments/d"
    assert HPAS.path("ns") == "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers"
    assert NAMESPACES.path(name="x") == "/api/v1/namespaces/x"


def test_kube_error_prefers_the_servers_message():
    error = KubeError(
        403, "Forbidden", json.dumps({"message": "no you cannot"}), method="GET", path="/x"
    )
    assert error.message == "no you cannot"
    assert str(error) == "GET /x: 403 Forbidden: no you cannot"
    assert str(KubeError(0, "ConnectionRefused")) == "0 ConnectionRefused"


def test_parse_watch_line():
    assert parse_watch_line("") is None
    parsed = parse_watch_line(event("ADDED", pod("a", rv="7")))
    assert parsed.type == "ADDED"
    assert parsed.resource_version == "7"
    with pytest.raises(WatchExpired):
        parse_watch_line(
            json.dumps({"type": "ERROR", "object": {"code": 410, "message": "too old"}})
        )
    with pytest.raises(KubeError):
        parse_watch_line(json.dumps({"type": "ERROR", "object": {"code": 500, "reason": "boom"}}))


def test_list_follows_continue_pages():
    pages = {
        "": {
            "items": [{"metadata": {"name": "a"}}],
            "metadata": {"continue": "t1", "resourceVersion": "9"},
        },
        "t1": {"items": [{"metadata": {"name": "b"}}], "metadata": {"resourceVersion": "10"}},
    }
    kube = FakeKube().on(
        "GET", "/api/v1/namespaces/ns/pods", lambda m, p, q, b: pages[q.get("continue", "")]
    )
    items, rv = list_objects(kube, PODS, "ns", label_selector="a=b")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert rv == "10"
    assert kube.calls[0][2]["labelSelector"] == "a=b"


def test_list_watcher_syncs_streams_keeps_resource_version_and_relists_on_410():
    collection = Collection([pod("a", rv="1")], resource_version="10")
    collection.watches = [
        FakeStream(
            [
                event("ADDED", pod("b", rv="11")),
                json.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}),
            ]
        ),
        FakeStream([json.dumps({"type": "ERROR", "object": {"code": 410, "message": "gone"}})]),
    ]
    kube = FakeKube().on("GET", "/api/v1/namespaces/ns/pods", collection.handler)
    seen: list[tuple[str, object]] = []
    relisted = threading.Event()

    def on_sync(items):
        seen.append(("sync", sorted(i["metadata"]["name"] for i in items)))
        if len([s for s in seen if s[0] == "sync"]) == 2:
            relisted.set()

    watcher = ListWatcher(
        kube,
        PODS,
        "ns",
        on_sync=on_sync,
        on_event=lambda t, o: seen.append((t, o["metadata"]["name"])),
    ).start()
    assert relisted.wait(5)
    watcher.stop()
    assert seen[:2] == [("sync", ["a"]), ("ADDED", "b")]
    assert seen[2][0] == "sync"
    assert collection.lists == 2
    # the second watch resumed from the bookmark's resourceVersion
    assert collection.opened[0]["resourceVersion"] == "10"
    assert collection.opened[1]["resourceVersion"] == "12"


def test_list_watcher_reports_errors_and_retries():
    calls = {"n": 0}
    done = threading.Event()

    def flaky(method, path, query, body):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KubeError(0, "ConnectionRefused")
        if not query.get("watch"):
            done.set()
        return Collection([]).handler(method, path, query, body)

    errors = []
    kube = FakeKube().on("GET", "/api/v1/namespaces/ns/pods", flaky)
    watcher = ListWatcher(
        kube,
        PODS,
        "ns",
        on_sync=lambda items: None,
        on_event=lambda t, o: None,
        on_error=errors.append,
    ).start()
    assert done.wait(5)
    watcher.stop()
    assert len(errors) == 1


def test_list_watcher_tells_each_loss_once_and_relists_after_it():
    """A watch that breaks and whose reopening fails twice is one loss, told once, ended by the
    relist; an error before the first list is no loss (nothing was watched yet)."""
    collection = Collection([pod("a", rv="1")], resource_version="10")
    collection.watches = [FakeStream([event("ADDED", pod("b", rv="11"))])]
    attempts = {"n": 0, "after_break": 0}
    synced = threading.Event()
    syncs: list[list[str]] = []

    def flaky(method, path, query, body):
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise KubeError(0, "ConnectionRefused before the first list")
        if collection.lists == 1 and not collection.watches:
            # the first stream ended (the API server went away): reopening the watch and the
            # relist after it fail, then the relist succeeds
            attempts["after_break"] += 1
            if attempts["after_break"] <= 2:
                raise KubeError(0, "ConnectionRefused")
        return collection.handler(method, path, query, body)

    def on_sync(items):
        syncs.append(sorted(i["metadata"]["name"] for i in items))
        if len(syncs) == 2:
            synced.set()

    lost: list[str] = []
    errors: list[Exception] = []
    kube = FakeKube().on("GET", "/api/v1/namespaces/ns/pods", flaky)
    watcher = ListWatcher(
        kube,
        PODS,
        "ns",
        on_sync=on_sync,
        on_event=lambda t, o: None,
        on_error=errors.append,
        on_lost=lost.append,
    ).start()
    assert synced.wait(10)
    watcher.stop()
    assert len(errors) == 3
    assert lost == ["0 ConnectionRefused"]
    assert collection.lists == 2


def test_list_watcher_tells_an_expired_watch_as_a_loss():
    collection = Collection([pod("a", rv="1")], resource_version="10")
    collection.watches = [
        FakeStream([json.dumps({"type": "ERROR", "object": {"code": 410, "message": "too old"}})])
    ]
    relisted = threading.Event()
    lost: list[str] = []
    kube = FakeKube().on("GET", "/api/v1/namespaces/ns/pods", collection.handler)
    watcher = ListWatcher(
        kube,
        PODS,
        "ns",
        on_sync=lambda items: relisted.set() if collection.lists == 2 else None,
        on_event=lambda t, o: None,
        on_lost=lost.append,
    ).start()
    assert relisted.wait(5)
    watcher.stop()
    assert lost == ["watch expired (410 Gone): too old"]


def test_small_helpers():
    assert selector_string({"b": "2", "a": "1"}) == "a=1,b=2"
    assert restart_count(pod("a", restarts=3)) == 3


class Ticks:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_latency_names_slow_and_unanswered_requests_with_their_figures():
    clock = Ticks()
    latency = Latency(clock)
    since = latency.now()
    fast = latency.begin()
    clock.t += 0.2
    latency.end(fast)
    assert latency.note(since) == ""
    slow = latency.begin()
    clock.t += 3.0
    latency.end(slow)
    latency.begin()  # never answered
    clock.t += 2.5
    assert latency.note(since) == (
        "the API server answered slowly: 1 of 2 answers took 1s or more (median 1.6s, slowest "
        "3.0s), 1 requests unanswered after up to 2.5s (measured by the suite)"
    )
    # Answers to requests sent before `since` are not this wait's.
    assert latency.note(clock.t).startswith("the API server answered slowly: 1 requests")


def test_latency_note_of_a_kube_that_does_not_measure_is_empty():
    assert latency_note(FakeKube(), 0.0) == ""

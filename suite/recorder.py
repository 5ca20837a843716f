"""A background recorder of everything that happens in one test namespace.

It watches pods, events, ReplicaSets, Deployments, HorizontalPodAutoscalers and EndpointSlices
(one list+watch thread each, resumed by relisting when a watch expires or breaks, e.g. while the
API server restarts) and timestamps every change twice: on
the monotonic clock (`t`, seconds since the recorder started; for durations) and the wall clock
(`wall`, epoch seconds; to line up with request records and other machines). Scenarios `mark()`
their own actions on the same clocks, ask `pod_moments()` and friends for assertions, and
`to_dict()` goes into the report.

A watch that was lost and re-listed is a gap: from when the loss was noticed to the relist, the
recorder was blind. The relist shows which objects changed since the last change the watch
delivered (their resourceVersion moved), so nothing escapes it even when the loss is noticed
late: none, and the data is complete; some, and their states in between were never seen and
their changes are stamped at the relist. `gaps()` lists them and `gap_problems()` names the ones
that cost data inside a verdict's window, so a verdict fails naming the gap instead of passing on
data that is not there.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from suite.kube import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    EVENTS,
    HPAS,
    JSON,
    NODES,
    PODS,
    REPLICASETS,
    Kube,
    Resource,
    latency_note,
    latency_now,
    matches,
    name_of,
)
from suite.listwatch import ListWatcher
from suite.podcount import Change, Moment, Reading, replay
from suite.samples import (
    PodView,
    deployment_sample,
    endpointslice_sample,
    event_sample,
    hpa_sample,
    node_sample,
    pod_view,
    replicaset_sample,
)
from suite.waiting import Done, Pending, Verdict, WaitFailed, wait_condition

WATCHED: dict[str, Resource] = {
    "Pod": PODS,
    "Event": EVENTS,
    "ReplicaSet": REPLICASETS,
    "Deployment": DEPLOYMENTS,
    "HorizontalPodAutoscaler": HPAS,
    "EndpointSlice": ENDPOINTSLICES,
}


#: How much of a lost watch's reason a gap keeps (the client's errors run long).
GAP_REASON_CHARS = 160


def gap_text(gap: Mapping[str, Any]) -> str:
    """One gap in words: which watch, from when to when, why, and what the relist found."""
    what = f"watch of {gap['watch']}"
    reason = str(gap.get("reason") or "")
    if gap.get("until_t") is None:
        return f"{what} interrupted since t={gap['from_t']:.1f}s ({reason}); not re-listed yet"
    text = (
        f"{what} interrupted from t={gap['from_t']:.1f}s to t={gap['until_t']:.1f}s "
        f"({reason}); re-listed"
    )
    changed = list(gap.get("changed") or [])
    if not changed:
        return text + ": nothing changed meanwhile, the data is complete"
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return (
        f"{text}: {len(changed)} changed meanwhile ({shown}); their states in between were not "
        f"seen and their changes are stamped at t={gap['until_t']:.1f}s"
    )


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass
class _PodEntry:
    t: float
    wall: float
    name: str
    type: str
    view: PodView | None  # None: deleted
    batch: int = 0  # entries of one relist share a batch: no moment between them


@dataclass
class Recorder:
    """Records one namespace's pods, events, ReplicaSets, Deployments, HPAs and EndpointSlices
    over time."""

    kube: Kube | None
    namespace: str
    monotonic: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    resources: Mapping[str, Resource] = field(default_factory=lambda: dict(WATCHED))

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._origin = self.monotonic()
        self.started_wall = self.wall_clock()
        self._watchers: list[ListWatcher] = []
        self._pods: dict[str, PodView] = {}
        self._pod_log: list[_PodEntry] = []
        self._marks: list[JSON] = []
        self._events: list[JSON] = []
        self._event_keys: set[tuple[str, int]] = set()
        self._latest: dict[str, dict[str, JSON]] = {
            "Deployment": {},
            "ReplicaSet": {},
            "HorizontalPodAutoscaler": {},
            "EndpointSlice": {},
            "Node": {},
        }
        self._samples: dict[str, list[JSON]] = {
            "Deployment": [],
            "ReplicaSet": [],
            "HorizontalPodAutoscaler": [],
            "EndpointSlice": [],
            "Node": [],
        }
        self._known: dict[str, set[str]] = {kind: set() for kind in (*WATCHED, "Node")}
        self._errors: list[JSON] = []
        self._versions: dict[str, dict[str, str]] = {kind: {} for kind in (*WATCHED, "Node")}
        self._gaps: list[JSON] = []
        self._open_gaps: dict[str, JSON] = {}
        self._synced: set[str] = set()
        self._batch = 0
        self._batches = 0
        self._changed = threading.Condition(self._lock)

    # -- clocks and marks ----------------------------------------------------------------------

    def now(self) -> tuple[float, float]:
        """(t, wall): seconds since the recorder started, and epoch seconds."""
        return self.monotonic() - self._origin, self.wall_clock()

    def mark(self, label: str, **data: Any) -> float:
        """Put a scenario action on the timeline; returns its `t`."""
        t, wall = self.now()
        with self._lock:
            self._marks.append({"t": t, "wall": wall, "label": label, **data})
        return t

    def mark_time(self, label: str) -> float:
        """`t` of the (last) mark with this label."""
        with self._lock:
            for entry in reversed(self._marks):
                if entry["label"] == label:
                    return float(entry["t"])
        raise KeyError(f"no mark {label!r}")

    def wall_to_t(self, wall: float) -> float:
        """Convert an epoch time to this recorder's `t`."""
        return wall - self.started_wall

    # -- watching ------------------------------------------------------------------------------

    def start(self) -> Recorder:
        """Start one list+watch thread per resource (returns self)."""
        if self.kube is None:
            raise RuntimeError("a recorder without a Kube cannot watch")
        for kind, resource in self.resources.items():
            self._watchers.append(self._watcher(self.kube, kind, resource).start())
        return self

    def watch_nodes(self) -> None:
        """Also record the cluster's Nodes (cluster-scoped: their Ready condition and taints),
        for a scenario that breaks one; `wait_synced` then waits for their list too."""
        if self.kube is None:
            raise RuntimeError("a recorder without a Kube cannot watch")
        with self._lock:
            self.resources = {**self.resources, "Node": NODES}
        self._watchers.append(self._watcher(self.kube, "Node", NODES).start())

    def _watcher(self, kube: Kube, kind: str, resource: Resource) -> ListWatcher:
        def on_sync(items: list[JSON]) -> None:
            self.observe_sync(kind, items)

        def on_event(event_type: str, obj: JSON) -> None:
            self.observe(kind, event_type, obj)

        def on_error(error: Exception) -> None:
            self._error(kind, error)

        def on_lost(reason: str) -> None:
            self.observe_lost(kind, reason)

        return ListWatcher(
            kube,
            resource,
            self.namespace,
            on_sync=on_sync,
            on_event=on_event,
            on_error=on_error,
            on_lost=on_lost,
        )

    def stop(self) -> None:
        """Stop all watches (bounded wait)."""
        for watcher in self._watchers:
            watcher.signal_stop()
        for watcher in self._watchers:
            watcher.join(3.0)
        self._watchers.clear()

    def wait_synced(self, timeout_s: float = 15.0) -> bool:
        """Wait until every resource was listed once (so nothing before this point is missed)."""
        try:
            wait_condition(
                self._changed,
                lambda: (
                    Done()
                    if self._synced >= set(self.resources)
                    else Pending(f"listed {sorted(self._synced)}")
                ),
                timeout_s=timeout_s,
                what="recorder",
                where=self.namespace,
                expected=f"every resource listed ({sorted(self.resources)})",
            )
        except WaitFailed:
            return False
        return True

    @property
    def synced(self) -> bool:
        """True once every watched resource was listed (nothing before that point is missed)."""
        with self._lock:
            return self._synced >= set(self.resources)

    def errors(self) -> list[JSON]:
        """Watch errors so far (each one a gap in which changes may have been missed)."""
        with self._lock:
            return [dict(error) for error in self._errors]

    def gaps(self) -> list[JSON]:
        """Every lost watch so far: `watch` (plural), `from_t`/`from_wall`, `until_t`/`until_wall`
        (None while still lost), `reason`, and `changed` (objects whose state moved meanwhile)."""
        with self._lock:
            return [dict(gap) for gap in self._gaps]

    def gap_problems(
        self,
        kinds: Iterable[str] | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> list[str]:
        """The gaps of `kinds` (default: all) that cost data inside `since <= t <= until`: still
        open, or something changed while the watch was lost. A verdict on that window rests on
        data that is not there; each problem says which watch, from when to when, and what."""
        wanted = set(kinds) if kinds is not None else set(self.resources)
        problems = []
        for gap in self.gaps():
            if gap["kind"] not in wanted:
                continue
            ends = gap["until_t"] if gap["until_t"] is not None else float("inf")
            if until is not None and gap["from_t"] > until:
                continue
            if since is not None and ends < since:
                continue
            if gap["until_t"] is None or gap["changed"]:
                problems.append(gap_text(gap))
        return problems

    def wait_gaps_closed(self, timeout_s: float) -> None:
        """Wait until every lost watch was re-listed (raises WaitFailed naming the open ones)."""

        def closed() -> Verdict:
            if not self._open_gaps:
                return Done()
            return Pending("; ".join(gap_text(gap) for gap in self._open_gaps.values()))

        self.wait_for(
            closed, timeout_s=timeout_s, what="recorder", expected="every lost watch re-listed"
        )

    def wait_for(
        self, predicate: Callable[[], Verdict], *, timeout_s: float, what: str, expected: str
    ) -> Any:
        """Wait until `predicate` (re-run after every recorded change) says Done, under one
        deadline; e.g. for an Event that is written a moment after the change it reports. A
        timeout says how slowly the API server answered the recorder, when it did."""
        since = latency_now(self.kube) if self.kube is not None else 0.0
        try:
            return wait_condition(
                self._changed,
                predicate,
                timeout_s=timeout_s,
                what=what,
                where=self.namespace,
                expected=expected,
            )
        except WaitFailed as error:
            slow = latency_note(self.kube, since) if self.kube is not None else ""
            if not slow:
                raise
            raise type(error)(f"{error}; {slow}") from error

    def events_problem(
        self, problem: Callable[[list[JSON]], str | None], *, timeout_s: float, what: str
    ) -> str | None:
        """Judge the recorded events with `problem` (None: fine), waiting up to `timeout_s` for
        them to come right: an Event is written a moment after the change it reports. Returns
        the last problem, or None."""
        with contextlib.suppress(WaitFailed):
            self.wait_for(
                lambda: Done() if problem(self.events()) is None else Pending("not yet"),
                timeout_s=timeout_s,
                what="events",
                expected=what,
            )
        return problem(self.events())

    def _error(self, kind: str, error: Exception) -> None:
        t, wall = self.now()
        with self._lock:
            self._errors.append({"t": t, "wall": wall, "kind": kind, "error": str(error)[:300]})
            self._changed.notify_all()

    # -- observing (also the entry points for unit tests) --------------------------------------

    def observe_lost(self, kind: str, reason: str) -> None:
        """The watch of `kind` was lost (broken, API unreachable, expired): a gap opens until the
        next full list."""
        t, wall = self.now()
        with self._lock:
            if kind in self._open_gaps or kind not in self._synced:
                return
            resource = self.resources.get(kind) or WATCHED.get(kind)
            gap: JSON = {
                "kind": kind,
                "watch": resource.plural if resource else kind.lower(),
                "from_t": t,
                "from_wall": wall,
                "until_t": None,
                "until_wall": None,
                "reason": " ".join(reason.split())[:GAP_REASON_CHARS],
                "changed": [],
            }
            self._open_gaps[kind] = gap
            self._gaps.append(gap)
            self._changed.notify_all()

    def observe_sync(self, kind: str, items: Iterable[JSON]) -> None:
        """A full list of `kind`: record what changed, and deletions missed while not watching."""
        items = list(items)
        with self._lock:
            gap = self._open_gaps.pop(kind, None)
            if gap is not None:
                known = self._versions[kind]
                listed = {name_of(obj): _resource_version(obj) for obj in items}
                gap["changed"] = sorted(
                    name for name in set(known) | set(listed) if known.get(name) != listed.get(name)
                )
                gap["until_t"], gap["until_wall"] = self.now()
            self._batches += 1
            self._batch = self._batches
            try:
                present = {name_of(obj) for obj in items}
                for name in sorted(self._known[kind] - present):
                    self._observe_locked(kind, "DELETED", {"metadata": {"name": name}})
                for obj in items:
                    self._observe_locked(kind, "SYNCED", obj)
            finally:
                self._batch = 0
            self._synced.add(kind)
            self._changed.notify_all()

    def observe(self, kind: str, event_type: str, obj: JSON) -> None:
        """One watch event of `kind`."""
        with self._lock:
            self._observe_locked(kind, event_type, obj)
            self._changed.notify_all()

    def _observe_locked(self, kind: str, event_type: str, obj: JSON) -> None:
        t, wall = self.now()
        name = name_of(obj)
        if event_type == "DELETED":
            self._known[kind].discard(name)
            self._versions[kind].pop(name, None)
        else:
            self._known[kind].add(name)
            self._versions[kind][name] = _resource_version(obj)
        if kind == "Pod":
            self._observe_pod(t, wall, event_type, name, obj)
        elif kind == "Event":
            if event_type != "DELETED":
                self._observe_event(t, wall, obj)
        else:
            self._observe_sampled(t, wall, kind, event_type, name, obj)

    def _observe_pod(self, t: float, wall: float, event_type: str, name: str, obj: JSON) -> None:
        if event_type == "DELETED":
            if name in self._pods:
                del self._pods[name]
                self._pod_log.append(_PodEntry(t, wall, name, "DELETED", None, self._batch))
            return
        view = pod_view(obj)
        if self._pods.get(name) == view:
            return
        kind = "ADDED" if name not in self._pods else "MODIFIED"
        self._pods[name] = view
        self._pod_log.append(_PodEntry(t, wall, name, kind, view, self._batch))

    def _observe_event(self, t: float, wall: float, obj: JSON) -> None:
        sample = event_sample(obj)
        key = (str((obj.get("metadata") or {}).get("uid") or name_of(obj)), sample["count"])
        if key in self._event_keys:
            return
        self._event_keys.add(key)
        self._events.append({"t": t, "wall": wall, **sample})

    def _observe_sampled(
        self, t: float, wall: float, kind: str, event_type: str, name: str, obj: JSON
    ) -> None:
        if event_type == "DELETED":
            if self._latest[kind].pop(name, None) is not None:
                self._samples[kind].append({"t": t, "wall": wall, "name": name, "deleted": True})
            return
        maker = {
            "Deployment": deployment_sample,
            "ReplicaSet": replicaset_sample,
            "HorizontalPodAutoscaler": hpa_sample,
            "EndpointSlice": endpointslice_sample,
            "Node": node_sample,
        }[kind]
        sample = maker(obj)
        if self._latest[kind].get(name) == sample:
            return
        self._latest[kind][name] = sample
        self._samples[kind].append({"t": t, "wall": wall, **sample})

    # -- queries -------------------------------------------------------------------------------

    def pods(self, selector: Mapping[str, str] | None = None) -> dict[str, PodView]:
        """The pods as last seen (optionally only those matching a label selector)."""
        with self._lock:
            return {
                name: view
                for name, view in self._pods.items()
                if selector is None or matches(view.label_map(), selector)
            }

    def pod_history(self, name: str) -> list[tuple[float, float, PodView | None]]:
        """Every recorded state of one pod: (t, wall, view or None once deleted)."""
        with self._lock:
            return [(e.t, e.wall, e.view) for e in self._pod_log if e.name == name]

    def pod_moments(
        self,
        selector: Mapping[str, str] | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Moment]:
        """Pod counts after every observed pod change (of pods matching `selector`), replayed in
        the order the API server reported them, restricted to `since <= t <= until`.

        The moment just before `since` is included (as at `since`) so the window starts with the
        state that held when it opened. A relist is applied as one change (no moments between
        its entries, which would show states that never existed).
        """
        with self._lock:
            log = list(self._pod_log)
        changes = [
            Change(
                entry.t,
                entry.wall,
                entry.name,
                entry.view,
                # A relist's entries share their batch; any other entry is a change of its own.
                entry.batch or -1 - index,
            )
            for index, entry in enumerate(log)
        ]

        def counted(view: PodView) -> bool:
            return selector is None or matches(view.label_map(), selector)

        reading = Reading(counted, lambda v: v.terminating, lambda v: v.ready, lambda v: v.status)
        moments: list[Moment] = []
        before: Moment | None = None
        for moment in replay(changes, reading):
            if since is not None and moment.t < since:
                before = moment
                continue
            if until is not None and moment.t > until:
                break
            moments.append(moment)
        if before is not None:
            assert since is not None
            moments.insert(
                0,
                Moment(
                    since,
                    before.wall,
                    before.pods,
                    before.terminating,
                    before.ready,
                    "window opens",
                ),
            )
        return moments

    def samples(self, kind: str, name: str | None = None) -> list[JSON]:
        """Recorded samples of Deployments, ReplicaSets, HorizontalPodAutoscalers, EndpointSlices
        or (after `watch_nodes`) Nodes."""
        with self._lock:
            return [dict(s) for s in self._samples[kind] if name is None or s.get("name") == name]

    def events(self) -> list[JSON]:
        """Recorded Events, in the order they were seen."""
        with self._lock:
            return [dict(event) for event in self._events]

    def marks(self) -> list[JSON]:
        """The scenario's marks."""
        with self._lock:
            return [dict(mark) for mark in self._marks]

    def to_dict(self) -> JSON:
        """Everything recorded, JSON-serialisable."""
        with self._lock:
            return {
                "namespace": self.namespace,
                "started_wall": self.started_wall,
                "marks": [dict(mark) for mark in self._marks],
                "pods": [
                    {
                        "t": e.t,
                        "wall": e.wall,
                        "name": e.name,
                        "type": e.type,
                        "state": e.view.to_dict() if e.view else None,
                    }
                    for e in self._pod_log
                ],
                "events": [dict(event) for event in self._events],
                "deployments": [dict(s) for s in self._samples["Deployment"]],
                "replicasets": [dict(s) for s in self._samples["ReplicaSet"]],
                "hpas": [dict(s) for s in self._samples["HorizontalPodAutoscaler"]],
                "endpointslices": [dict(s) for s in self._samples["EndpointSlice"]],
                "nodes": [dict(s) for s in self._samples["Node"]],
                "errors": [dict(error) for error in self._errors],
                "gaps": [dict(gap) for gap in self._gaps],
            }


def _endpoint_text(endpoint: Mapping[str, Any]) -> str:
    who = endpoint.get("pod") or ",".join(endpoint.get("addresses") or [])
    if endpoint.get("ready"):
        return f"{who}=ready"
    return f"{who}=" + ("terminating" if endpoint.get("terminating") else "not-ready")


def timeline_text(recording: Mapping[str, Any], limit: int = 400) -> str:
    """A readable, time-ordered text timeline of a recording (for failure evidence)."""
    rows: list[tuple[float, str]] = []
    for mark in recording.get("marks", []):
        rows.append((mark["t"], f"MARK   {mark['label']}"))
    for entry in recording.get("pods", []):
        state = entry.get("state")
        if state is None:
            rows.append((entry["t"], f"POD    {entry['name']} deleted"))
            continue
        containers = ", ".join(
            f"{c['name']}={c['state']}"
            + (f"({c['reason']})" if c.get("reason") else "")
            + (f" exit={c['exit_code']}" if c.get("exit_code") is not None else "")
            + (f" restarts={c['restart_count']}" if c.get("restart_count") else "")
            + (f" last={c['last_reason']}:{c['last_exit_code']}" if c.get("last_reason") else "")
            for c in state.get("containers", [])
        )
        rows.append((entry["t"], f"POD    {entry['name']} {state['status']} [{containers}]"))
    for event in recording.get("events", []):
        rows.append(
            (
                event["t"],
                f"EVENT  {event['type']} {event['reason']} {event['object']}: "
                f"{event['message'][:200]}",
            )
        )
    for key, label in (
        ("deployments", "DEPLOY"),
        ("replicasets", "RS"),
        ("hpas", "HPA"),
        ("endpointslices", "SLICE"),
        ("nodes", "NODE"),
    ):
        for sample in recording.get(key, []):
            if sample.get("deleted"):
                rows.append((sample["t"], f"{label:<6} {sample['name']} deleted"))
                continue
            if key == "endpointslices":
                text = " ".join(_endpoint_text(e) for e in sample.get("endpoints", []))
            elif key == "hpas":
                text = (
                    f"current={sample['current_replicas']} desired={sample['desired_replicas']}"
                    f" cpu={sample['cpu_utilization']}%/{sample['target_utilization']}%"
                )
            elif key == "nodes":
                text = f"Ready={sample['ready']} taints={','.join(sample['taints']) or '-'}"
            elif key == "deployments":
                text = (
                    f"gen={sample['observed_generation']}/{sample['generation']} "
                    f"replicas={sample['replicas']} updated={sample['updated']} "
                    f"ready={sample['ready']} available={sample['available']}"
                )
            else:
                text = (
                    f"rev={sample['revision']} replicas={sample['replicas']} "
                    f"ready={sample['ready']}"
                )
            rows.append((sample["t"], f"{label:<6} {sample['name']} {text}"))
    for gap in recording.get("gaps", []):
        rows.append((gap["from_t"], f"GAP    {gap_text(gap)}"))
    rows.sort(key=lambda row: row[0])
    lines = [f"{t:8.2f}s  {text}" for t, text in rows]
    if len(lines) > limit:
        head, tail = lines[: limit // 4], lines[-(limit - limit // 4) :]
        lines = [*head, f"... {len(lines) - limit} lines left out ...", *tail]
    return "\n".join(lines)

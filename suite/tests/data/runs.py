"""Runs that look like real ones: what `Recorder.to_dict()`, `ProbeResult.to_dict()` and the
scenarios' figures hold after a run on the local cluster, shaped after the scenario code (marks,
pod lifecycles, events, HPA and Deployment samples, prober answers on the wall clock).

Made in code with a fixed seed rather than stored: a full run holds thousands of answers, and the
variants (a failed rollout, a skipped scenario, hostile pod names) are one argument away.

`python -m suite.tests.data.runs OUT.json [--failing]` writes one as report.json would be.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from typing import Any

from suite import report
from suite.preflight import ClusterFacts, NodeFact
from suite.session import TestOutcome
from suite.stats import chi_square_uniform

STARTED = 1_764_205_200.0  # 2025-11-27 01:00:00 UTC
IMAGE = "localhost/kube-alive/workloads:{tag}"
NODE = "ka-node-1"
SCENARIOS = "suite/scenarios"

LB = f"{SCENARIOS}/test_load_balancing.py::test_service_spreads_new_connections_over_every_replica"
INFECT = (
    f"{SCENARIOS}/test_self_healing.py::"
    "test_infected_pod_is_restarted_while_the_service_keeps_answering"
)
KILL = f"{SCENARIOS}/test_self_healing.py::test_killed_process_is_restarted_and_reports_exit_code_1"
DELETE = f"{SCENARIOS}/test_self_healing.py::test_deleted_pod_is_replaced_by_its_replicaset"
READINESS = (
    f"{SCENARIOS}/test_readiness_gating.py::"
    "test_unready_pod_leaves_the_service_and_returns_without_a_restart"
)
HPA = f"{SCENARIOS}/test_autoscaling.py::test_cpu_load_scales_the_deployment_out_and_back_in"
ROLL = (
    f"{SCENARIOS}/test_rolling_update.py::"
    "test_rolling_update_replaces_every_pod_without_a_failed_request"
)
GRACEFUL = (
    f"{SCENARIOS}/test_graceful_termination.py::"
    "test_graceful_pods_lose_no_request_in_a_rollout_and_abrupt_ones_are_shown"
)
OOM = (
    f"{SCENARIOS}/test_oom_backoff.py::"
    "test_oom_killed_container_restarts_with_backoff_while_the_service_answers"
)
FAILED_ROLLOUT = (
    f"{SCENARIOS}/test_failed_rollout.py::"
    "test_failed_rollout_stops_within_its_bounds_and_undo_restores_capacity"
)
DISRUPTION = (
    f"{SCENARIOS}/test_disruption_budget.py::"
    "test_a_drain_through_the_eviction_api_keeps_the_disruption_budget"
)
INTERRUPT = f"{SCENARIOS}/test_interrupt.py::test_interrupted_run_leaves_no_test_namespace"


@dataclass
class Pod:
    """The recorder's view of one pod, mutated step by step."""

    name: str
    owner: str
    app: str
    tag: str = "v1"
    phase: str = "Pending"
    ready: bool = False
    terminating: bool = False
    node: str = ""
    ip: str = ""
    state: str = "unknown"
    reason: str = ""
    exit_code: int | None = None
    restarts: int = 0
    last_reason: str = ""
    last_exit_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        status = "Terminating" if self.terminating else "Ready" if self.ready else self.phase
        return {
            "name": self.name,
            "phase": self.phase,
            "ready": self.ready,
            "terminating": self.terminating,
            "node": self.node,
            "ip": self.ip,
            "owner": self.owner,
            "containers": [
                {
                    "name": self.app,
                    "state": self.state,
                    "reason": self.reason,
                    "exit_code": self.exit_code,
                    "ready": self.ready,
                    "restart_count": self.restarts,
                    "last_reason": self.last_reason,
                    "last_exit_code": self.last_exit_code,
                    "image": IMAGE.format(tag=self.tag),
                }
            ],
            "status": status,
            "restarts": self.restarts,
        }


@dataclass
class Sim:
    """Builds one recording (and the probes of that test) on the recorder's clocks."""

    namespace: str
    started_wall: float
    rng: random.Random
    marks: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    hpas: list[dict[str, Any]] = field(default_factory=list)
    live: dict[str, Pod] = field(default_factory=dict)
    ips: int = 10

    def wall(self, t: float) -> float:
        return self.started_wall + t

    def mark(self, t: float, label: str, **data: Any) -> None:
        self.marks.append({"t": t, "wall": self.wall(t), "label": label, **data})

    def event(self, t: float, reason: str, obj: str, message: str, kind: str = "Normal") -> None:
        stamp = _iso(self.wall(t))
        self.events.append(
            {
                "t": t + 0.05,
                "wall": self.wall(t + 0.05),
                "type": kind,
                "reason": reason,
                "object": obj,
                "message": message,
                "count": 1,
                "first_timestamp": stamp,
                "last_timestamp": stamp,
            }
        )

    def _log(self, t: float, pod: Pod, kind: str) -> None:
        self.pods.append(
            {"t": t, "wall": self.wall(t), "name": pod.name, "type": kind, "state": pod.to_dict()}
        )

    def change(self, t: float, name: str, **changes: Any) -> None:
        pod = self.live[name]
        for key, value in changes.items():
            setattr(pod, key, value)
        self._log(t, pod, "MODIFIED")

    def start_pod(self, t: float, owner: str, app: str, *, tag: str = "v1") -> tuple[str, float]:
        """A pod from creation to Ready; returns (name, ready t)."""
        name = f"{owner}-{_suffix(self.rng)}"
        pod = Pod(name, owner, app, tag=tag)
        self.live[name] = pod
        self._log(t, pod, "ADDED")
        self.event(t, "SuccessfulCreate", f"replicaset/{owner}", f"Created pod: {name}")
        self.ips += 1
        self.change(t + 0.03, name, node=NODE)
        self.event(
            t + 0.03, "Scheduled", f"pod/{name}", f"Successfully assigned {self.namespace}/{name}"
        )
        created = t + 0.4 + self.rng.random() * 0.5
        self.event(
            created,
            "Pulled",
            f"pod/{name}",
            f'Container image "{IMAGE.format(tag=tag)}" already present on machine',
        )
        self.event(created + 0.02, "Created", f"pod/{name}", f"Created container: {app}")
        self.event(created + 0.1, "Started", f"pod/{name}", f"Started container {app}")
        self.change(
            created + 0.15,
            name,
            phase="Running",
            state="running",
            ip=f"10.88.0.{self.ips}",
        )
        ready = created + 1.2 + self.rng.random() * 0.8
        self.change(ready, name, ready=True)
        return name, ready

    def stop_pod(self, t: float, name: str, grace: float) -> None:
        pod = self.live[name]
        self.change(t, name, terminating=True)
        self.event(t, "Killing", f"pod/{name}", f"Stopping container {pod.app}")
        self.change(t + 0.3, name, ready=False)
        self.change(t + grace, name, state="terminated", reason="Completed", exit_code=0)
        end = t + grace + 0.2
        self.pods.append(
            {"t": end, "wall": self.wall(end), "name": name, "type": "DELETED", "state": None}
        )
        del self.live[name]

    def deployment(self, t: float, name: str, tag: str, **status: int) -> None:
        sample = {
            "name": name,
            "generation": status.pop("generation", 1),
            "observed_generation": status.pop("observed_generation", 1),
            "spec_replicas": status.pop("spec_replicas", 1),
            "replicas": 0,
            "updated": 0,
            "ready": 0,
            "available": 0,
            "unavailable": 0,
            "image": IMAGE.format(tag=tag),
        }
        sample.update(status)
        self.deployments.append({"t": t, "wall": self.wall(t), **sample})

    def replicaset(self, t: float, name: str, tag: str, revision: str, **status: int) -> None:
        sample = {
            "name": name,
            "revision": revision,
            "spec_replicas": 0,
            "replicas": 0,
            "ready": 0,
            "available": 0,
            "image": IMAGE.format(tag=tag),
        }
        sample.update(status)
        self.replicasets.append({"t": t, "wall": self.wall(t), **sample})

    def deploy(self, t: float, app: str, replicas: int, *, tag: str = "v1") -> tuple[str, float]:
        """Apply an app (marks included), returns (ReplicaSet name, ready t)."""
        self.mark(t, f"apply {app}")
        rs = f"{app}-{_hash(self.rng)}"
        self.deployment(t + 0.02, app, tag, spec_replicas=replicas, observed_generation=0)
        self.event(
            t + 0.03,
            "ScalingReplicaSet",
            f"deployment/{app}",
            f"Scaled up replica set {rs} from 0 to {replicas}",
        )
        self.replicaset(t + 0.03, rs, tag, "1", spec_replicas=replicas)
        ready = t
        for _ in range(replicas):
            _, pod_ready = self.start_pod(t + 0.05, rs, app, tag=tag)
            ready = max(ready, pod_ready)
        self.replicaset(
            ready + 0.01,
            rs,
            tag,
            "1",
            spec_replicas=replicas,
            replicas=replicas,
            ready=replicas,
            available=replicas,
        )
        self.deployment(
            ready + 0.02,
            app,
            tag,
            spec_replicas=replicas,
            replicas=replicas,
            updated=replicas,
            ready=replicas,
            available=replicas,
        )
        self.mark(ready + 0.1, f"{app} ready")
        return rs, ready + 0.1

    def names(self, owner: str) -> list[str]:
        return sorted(name for name, pod in self.live.items() if pod.owner == owner)

    def recording(self) -> dict[str, Any]:
        def by_t(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return sorted(items, key=lambda item: item["t"])

        return {
            "namespace": self.namespace,
            "started_wall": self.started_wall,
            "marks": by_t(self.marks),
            "pods": by_t(self.pods),
            "events": by_t(self.events),
            "deployments": by_t(self.deployments),
            "replicasets": by_t(self.replicasets),
            "hpas": by_t(self.hpas),
            "errors": [],
        }


def _suffix(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def _hash(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(9))


def _iso(wall: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


ANSWER_FIELDS = ["seq", "chunk", "start", "end", "status", "ok", "pod", "version", "error"]


@dataclass
class Traffic:
    """A probe's answers, appended in time order."""

    label: str
    url: str
    concurrency: int
    interval_ms: int
    timeout_s: float
    count: int = 20_000
    duration_s: float = 10.0
    answers: list[list[Any]] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    chunk_s: float | None = None

    def add(
        self,
        start: float,
        took: float,
        pod: str | None,
        version: str | None,
        *,
        status: int | None = 200,
        error: str | None = None,
    ) -> None:
        ok = status == 200 and error is None
        chunk = int((start - self.started) // self.chunk_s) if self.chunk_s else 0
        self.answers.append(
            [
                len(self.answers),
                chunk,
                round(start, 4),
                round(start + took, 4),
                status,
                ok,
                pod,
                version,
                error,
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        ok = [a for a in self.answers if a[5]]
        by_pod: dict[str, int] = {}
        by_version: dict[str, int] = {}
        for answer in ok:
            by_pod[answer[6] or "?"] = by_pod.get(answer[6] or "?", 0) + 1
            by_version[answer[7] or "?"] = by_version.get(answer[7] or "?", 0) + 1
        chunks = 1 + max((a[1] for a in self.answers), default=0)
        summaries = [{"sent": sum(1 for a in self.answers if a[1] == c)} for c in range(chunks)]
        return {
            "label": self.label,
            "request": {
                "url": self.url,
                "count": self.count,
                "concurrency": self.concurrency,
                "duration_s": self.duration_s,
                "interval_ms": self.interval_ms,
                "timeout_s": self.timeout_s,
            },
            "started": self.started,
            "ended": self.ended,
            "chunks": chunks,
            "errors": [],
            "summaries": summaries,
            "sent": len(self.answers),
            "ok": len(ok),
            "failed": len(self.answers) - len(ok),
            "by_pod": by_pod,
            "by_version": by_version,
            "answers": self.answers,
            "answer_fields": ANSWER_FIELDS,
        }


def _prober(sim: Sim, t: float) -> float:
    _, ready = sim.deploy(t, "prober", 1)
    return ready


# -- the scenarios ---------------------------------------------------------------------------------


def load_balancing(started: float, rng: random.Random, *, app: str = "getip") -> dict:
    sim = Sim("ka-r1-test-service-spreads-new-conne-3f2a", started, rng)
    t = _prober(sim, 0.05)
    rs, t = sim.deploy(t + 0.4, app, 4)
    pods = sim.names(rs)
    sim.mark(t + 1.0, "traffic start")
    traffic = Traffic(app, f"http://{app}/", 8, 0, 2.0, count=400, duration_s=120.0)
    traffic.started = sim.wall(t + 1.0)
    clock = traffic.started + 0.05
    for index in range(400):
        start = clock + (index // 8) * 0.031 + rng.random() * 0.01
        traffic.add(start, 0.004 + rng.random() * 0.01, rng.choice(pods), "v1")
    traffic.ended = sim.wall(t + 1.0) + 1.7
    sim.mark(t + 2.8, "traffic end")
    probe = traffic.to_dict()
    by_pod = dict(sorted(probe["by_pod"].items()))
    test = chi_square_uniform(list(by_pod.values()))
    figures = {
        "replicas": 4,
        "requests": probe["sent"],
        "answered": probe["ok"],
        "failed": probe["failed"],
        "by_pod": by_pod,
        "chi_square": round(test.statistic, 3),
        "p_value": round(test.p_value, 4),
    }
    return _record(LB, sim, [probe], figures)


def infected(started: float, rng: random.Random) -> dict:
    sim = Sim("ka-r1-test-infected-pod-is-restarted-w-9c1e", started, rng)
    t = _prober(sim, 0.05)
    rs, t = sim.deploy(t + 0.4, "healthcheck", 2)
    sick, healthy = sim.names(rs)
    traffic = Traffic("healthcheck", "http://healthcheck/", 2, 50, 2.0, chunk_s=10.0)
    traffic.started = sim.wall(t + 0.3)
    t_infect = t + 1.6
    t_not_ready = t_infect + 0.9
    t_restart = t_infect + 2.7
    t_ready = t_restart + 1.6
    end = t_ready + 2.2
    sim.mark(t_infect, "infect", pod=sick)
    sim.event(
        t_infect + 0.85,
        "Unhealthy",
        f"pod/{sick}",
        "Liveness probe failed: HTTP probe failed with statuscode: 503",
        "Warning",
    )
    sim.event(
        t_infect + 0.88,
        "Unhealthy",
        f"pod/{sick}",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "Warning",
    )
    sim.event(
        t_infect + 0.9,
        "Killing",
        f"pod/{sick}",
        "Container healthcheck failed liveness probe, will be restarted",
    )
    sim.change(t_not_ready, sick, ready=False)
    sim.change(t_restart - 0.4, sick, state="terminated", reason="Completed", exit_code=0)
    sim.event(
        t_restart - 0.2,
        "Pulled",
        f"pod/{sick}",
        f'Container image "{IMAGE.format(tag="v1")}" already present on machine',
    )
    sim.event(t_restart - 0.1, "Started", f"pod/{sick}", "Started container healthcheck")
    sim.change(
        t_restart,
        sick,
        state="running",
        reason="",
        exit_code=None,
        restarts=1,
        last_reason="Completed",
        last_exit_code=0,
    )
    sim.mark(t_restart + 0.1, "restarted", pod=sick)
    sim.change(t_ready, sick, ready=True)
    sim.mark(t_ready + 0.1, "ready again", pod=sick)
    leaving_until = t_not_ready + 0.8
    clock = t + 0.35
    lanes = [clock, clock + 0.03]
    while min(lanes) < end:
        lane = lanes.index(min(lanes))
        start = lanes[lane]
        in_rotation = [healthy] + ([sick] if start < leaving_until or start > t_ready + 0.5 else [])
        pod = rng.choice(in_rotation)
        if pod == sick and t_infect < start < leaving_until:
            traffic.add(
                sim.wall(start),
                0.006,
                None,
                None,
                status=503,
                error=None if rng.random() < 0.8 else "connection refused",
            )
        else:
            traffic.add(sim.wall(start), 0.004 + rng.random() * 0.006, pod, "v1")
        lanes[lane] = start + 0.05 + 0.01 + rng.random() * 0.004
    traffic.ended = sim.wall(end + 0.1)
    probe = traffic.to_dict()
    failed = probe["failed"]
    figures = {
        "restarted_after_s": round(t_restart - t_infect, 2),
        "floor_s": 1,
        "not_ready_after_s": round(t_not_ready - t_infect, 2),
        "ready_again_after_s": round(t_ready + 0.1 - t_infect, 2),
        "requests": probe["sent"],
        "failed_while_leaving_endpoints": failed,
        "failed_otherwise": 0,
        "answered_by": probe["by_pod"],
    }
    return _record(INFECT, sim, [probe], figures)


def killed(started: float, rng: random.Random) -> dict:
    sim = Sim("ka-r1-test-killed-process-is-restarted-7b0d", started, rng)
    rs, t = sim.deploy(0.05, "healthcheck", 2)
    victim = sim.names(rs)[0]
    t_kill = t + 0.5
    sim.mark(t_kill, "kill", pod=victim)
    sim.change(t_kill + 0.3, victim, ready=False, state="terminated", reason="Error", exit_code=1)
    sim.event(
        t_kill + 0.5,
        "Pulled",
        f"pod/{victim}",
        f'Container image "{IMAGE.format(tag="v1")}" already present on machine',
    )
    sim.event(t_kill + 0.6, "Started", f"pod/{victim}", "Started container healthcheck")
    t_restart = t_kill + 0.8
    sim.change(
        t_restart,
        victim,
        state="running",
        reason="",
        exit_code=None,
        restarts=1,
        last_reason="Error",
        last_exit_code=1,
    )
    sim.mark(t_restart + 0.1, "restarted", pod=victim)
    t_ready = t_restart + 1.3
    sim.change(t_ready, victim, ready=True)
    figures = {
        "restarted_after_s": round(t_restart + 0.1 - t_kill, 2),
        "exit_code": 1,
        "reason": "Error",
        "ready_again_after_s": round(t_ready + 0.1 - t_kill, 2),
    }
    return _record(KILL, sim, [], figures)


def deleted(started: float, rng: random.Random) -> dict:
    sim = Sim("ka-r1-test-deleted-pod-is-replaced-by-1d44", started, rng)
    rs, t = sim.deploy(0.05, "healthcheck", 2)
    victim = sim.names(rs)[0]
    t_delete = t + 0.5
    sim.mark(t_delete, "delete", pod=victim)
    sim.stop_pod(t_delete + 0.02, victim, grace=1.1)
    replacement, ready = sim.start_pod(t_delete + 0.05, rs, "healthcheck")
    sim.mark(ready + 0.1, "replaced", pod=replacement)
    figures = {
        "deleted": victim,
        "replacement": replacement,
        "replaced_and_ready_after_s": round(ready + 0.1 - t_delete, 2),
    }
    return _record(DELETE, sim, [], figures)


def readiness(started: float, rng: random.Random) -> dict:
    sim = Sim("ka-r1-test-unready-pod-leaves-the-serv-5d21", started, rng)
    t = _prober(sim, 0.05)
    rs, t = sim.deploy(t + 0.4, "healthcheck", 2)
    flipped, other = sim.names(rs)
    traffic = Traffic("healthcheck", "http://healthcheck/", 2, 50, 2.0, chunk_s=3.0)
    traffic.started = sim.wall(t + 0.3)
    t_flip = t + 1.6
    t_not_ready = t_flip + 0.9
    t_out = t_not_ready + 0.05
    t_routed = t_out + 1.1
    t_back = t_out + 7.5
    t_ready = t_back + 0.8
    t_in = t_ready + 0.05
    t_routed_in = t_in + 1.0
    end = t_routed_in + 1.5
    sim.mark(t_flip, "unready", pod=flipped)
    sim.event(
        t_flip + 0.85,
        "Unhealthy",
        f"pod/{flipped}",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "Warning",
    )
    sim.change(t_not_ready, flipped, ready=False)
    sim.mark(t_not_ready + 0.02, "not ready", pod=flipped)
    sim.mark(t_out + 0.02, "out of the slice", pod=flipped)
    sim.mark(t_back, "ready", pod=flipped)
    sim.change(t_ready, flipped, ready=True)
    sim.mark(t_ready + 0.02, "ready again", pod=flipped)
    sim.mark(t_in + 0.02, "back in the slice", pod=flipped)
    clock = t + 0.35
    lanes = [clock, clock + 0.03]
    while min(lanes) < end:
        lane = lanes.index(min(lanes))
        start = lanes[lane]
        routed = start < t_routed or start > t_routed_in
        pod = rng.choice([other, flipped] if routed else [other])
        traffic.add(sim.wall(start), 0.004 + rng.random() * 0.006, pod, "v1")
        lanes[lane] = start + 0.05 + 0.01 + rng.random() * 0.004
    traffic.ended = sim.wall(end + 0.1)
    probe = traffic.to_dict()
    figures = {
        "not_ready_after_s": round(t_not_ready - t_flip, 2),
        "slice_out_after_not_ready_s": round(t_out - t_not_ready, 2),
        "out_of_slice_after_s": round(t_out - t_flip, 2),
        "last_answer_after_s": round(t_routed - t_flip, 2),
        "ready_after_s": round(t_ready - t_back, 2),
        "slice_in_after_ready_s": round(t_in - t_ready, 2),
        "first_answer_after_s": round(t_routed_in - t_back, 2),
        "answers_while_out": 0,
        "requests": probe["sent"],
        "failed": probe["failed"],
        "answered_by": probe["by_pod"],
        "restarts": {flipped: 0, other: 0},
    }
    return _record(READINESS, sim, [probe], figures)


def oom_backoff(started: float, rng: random.Random) -> dict:
    sim = Sim("ka-r1-test-oom-killed-container-restart-2c4e", started, rng)
    t = _prober(sim, 0.05)
    rs, t = sim.deploy(t + 0.4, "memhog", 2)
    victim, other = sim.names(rs)
    traffic = Traffic("memhog", "http://memhog/", 2, 50, 2.0, chunk_s=3.0)
    traffic.started = sim.wall(t + 0.3)
    t_oom = t + 1.0
    sim.mark(t_oom, "oom", pod=victim)
    # killed at once, restarted at once; then 10 s and 20 s of back-off (whole seconds)
    kills = [t_oom + 0.6, t_oom + 2.6, t_oom + 15.6]
    starts = [t_oom + 1.6, t_oom + 14.6, t_oom + 37.6]
    sim.change(kills[0], victim, ready=False, state="terminated", reason="OOMKilled", exit_code=137)
    sim.mark(kills[0] + 0.4, "not ready", pod=victim)
    sim.mark(kills[0] + 0.45, "out of the slice", pod=victim)
    routed_out = kills[0] + 1.5
    for index, (start, kill) in enumerate(zip(starts, [*kills[1:], None], strict=True)):
        last = {"restarts": index + 1, "last_reason": "OOMKilled", "last_exit_code": 137}
        sim.change(start, victim, state="running", reason="", exit_code=None, **last)
        if kill is not None:
            sim.change(kill, victim, state="terminated", reason="OOMKilled", exit_code=137)
            sim.change(kill + 0.5, victim, state="waiting", reason="CrashLoopBackOff")
    t_ready = starts[-1] + 1.5
    sim.change(t_ready, victim, ready=True)
    sim.mark(t_ready + 0.02, "ready again", pod=victim)
    sim.mark(t_ready + 0.05, "back in the slice", pod=victim)
    end = t_ready + 2.5
    clock = t + 0.35
    lanes = [clock, clock + 0.03]
    failed = 0
    while min(lanes) < end:
        lane = lanes.index(min(lanes))
        start = lanes[lane]
        routed = start < routed_out or start > t_ready + 1.0
        pod = rng.choice([other, victim] if routed else [other])
        if pod == victim and kills[0] <= start < routed_out:
            traffic.add(sim.wall(start), 0.002, None, None, status=None, error="refused")
            failed += 1
        else:
            traffic.add(sim.wall(start), 0.004 + rng.random() * 0.006, pod, "v1")
        lanes[lane] = start + 0.05 + 0.01 + rng.random() * 0.004
    traffic.ended = sim.wall(end + 0.1)
    probe = traffic.to_dict()
    runs = [(t_oom - 6.0, kills[0]), *zip(starts, kills[1:], strict=False), (starts[-1], None)]
    delays = [round(start - kill) for kill, start in zip(kills, starts, strict=True)]
    figures = {
        "kills": 3,
        "reasons": ["OOMKilled"] * 3,
        "restart_delays_s": delays,
        "expected_backoff_s": [0.0, 10.0, 20.0],
        "delay_windows_s": [[-1.0, 4.0], [9.0, 29.0], [19.0, 39.0]],
        "backoff_source": "the kubelet's defaults",
        "runs": [
            {
                "started": round(sim.wall(a)),
                "finished": round(sim.wall(b)) if b is not None else None,
                "reason": "OOMKilled" if b is not None else "",
            }
            for a, b in runs
        ],
        "serving_again_after_s": round(t_ready - t_oom, 2),
        "requests": probe["sent"],
        "failed": probe["failed"],
        "failed_after_oom": failed,
        "answered_by": probe["by_pod"],
        "restart_count": 3,
    }
    return _record(OOM, sim, [probe], figures)


def autoscaling(started: float, rng: random.Random) -> dict:
    sim = Sim("ka-r1-test-cpu-load-scales-the-deploym-5e7a", started, rng)
    t = _prober(sim, 0.05)
    rs, t = sim.deploy(t + 0.4, "cpuhog", 1)

    def hpa(at: float, current: int, desired: int, cpu: int | None, active: str) -> None:
        sim.hpas.append(
            {
                "t": at,
                "wall": sim.wall(at),
                "name": "cpuhog",
                "min_replicas": 1,
                "max_replicas": 4,
                "current_replicas": current,
                "desired_replicas": desired,
                "cpu_utilization": cpu,
                "target_utilization": 50,
                "last_scale_time": None if at < 40 else _iso(sim.wall(at)),
                "conditions": {
                    "AbleToScale": "True/ReadyForNewScale",
                    "ScalingActive": active,
                    "ScalingLimited": "False/DesiredWithinRange",
                },
            }
        )

    no_metrics = "False/FailedGetResourceMetric"
    hpa(t - 0.5, 1, 1, None, no_metrics)
    t_first = t + 29.0
    hpa(t_first - 0.1, 1, 1, 2, "True/ValidMetricFound")
    sim.mark(t_first, "first CPU reading")
    t_load = t_first + 0.3
    sim.mark(t_load, "load start")
    traffic = Traffic("cpu load", "http://cpuhog/?ms=500", 4, 0, 10.0, chunk_s=10.0)
    traffic.started = sim.wall(t_load)
    t_out = t_load + 17.2
    hpa(t_load + 2.1, 1, 1, 74, "True/ValidMetricFound")
    hpa(t_out - 0.1, 1, 3, 138, "True/ValidMetricFound")
    sim.event(
        t_out - 0.05,
        "SuccessfulRescale",
        "horizontalpodautoscaler/cpuhog",
        "New size: 3; reason: cpu resource utilization (percentage of request) above target",
    )
    sim.deployment(
        t_out,
        "cpuhog",
        "v1",
        spec_replicas=3,
        replicas=1,
        updated=1,
        ready=1,
        available=1,
        generation=2,
        observed_generation=2,
    )
    sim.mark(t_out + 0.2, "scaled out", replicas=3)
    first_pods = sim.names(rs)
    readies = [sim.start_pod(t_out + 0.05, rs, "cpuhog")[1] for _ in range(2)]
    scaled_pods = sim.names(rs)
    sim.deployment(
        max(readies) + 0.02,
        "cpuhog",
        "v1",
        spec_replicas=3,
        replicas=3,
        updated=3,
        ready=3,
        available=3,
        generation=2,
        observed_generation=2,
    )
    t_stop = t_load + 20.0  # the current 10 s chunk ends
    traffic.ended = sim.wall(t_stop)
    sim.mark(t_stop + 0.1, "load stopped")
    hpa(t_out + 15.0, 3, 3, 96, "True/ValidMetricFound")
    hpa(t_out + 30.0, 3, 3, 1, "True/ValidMetricFound")
    t_in = t_stop + 38.2
    hpa(t_in - 0.1, 3, 1, 1, "True/ValidMetricFound")
    sim.event(
        t_in - 0.05,
        "SuccessfulRescale",
        "horizontalpodautoscaler/cpuhog",
        "New size: 1; reason: All metrics below target",
    )
    sim.deployment(
        t_in,
        "cpuhog",
        "v1",
        spec_replicas=1,
        replicas=3,
        updated=3,
        ready=3,
        available=3,
        generation=3,
        observed_generation=3,
    )
    for name in sorted(set(sim.names(rs)) - set(first_pods)):
        sim.stop_pod(t_in + 0.05, name, grace=1.4)
    hpa(t_in + 14.0, 1, 1, 1, "True/ValidMetricFound")
    sim.deployment(
        t_in + 1.7,
        "cpuhog",
        "v1",
        spec_replicas=1,
        replicas=1,
        updated=1,
        ready=1,
        available=1,
        generation=3,
        observed_generation=3,
    )
    sim.mark(t_in + 14.2, "scaled in")
    pods_at = lambda at: 1 if at < min(readies) else 3  # noqa: E731
    lanes = [t_load + 0.02 * i for i in range(4)]
    while min(lanes) < t_stop:
        lane = lanes.index(min(lanes))
        start = lanes[lane]
        took = 0.5 * (4 / pods_at(start)) ** 0.5 + rng.random() * 0.2
        serving = first_pods if pods_at(start) == 1 else scaled_pods
        traffic.add(sim.wall(start), took, rng.choice(serving), "v1")
        lanes[lane] = start + took + 0.01
    probe = traffic.to_dict()
    figures = {
        "scaled_out_after_s": round(t_out - t_load, 1),
        "scale_out_deadline_s": 75,
        "replicas_at_scale_out": 3,
        "max_replicas_seen": 3,
        "peak_cpu_percent": 138,
        "load_requests": probe["sent"],
        "scaled_in_after_s": round(t_in + 14.2 - t_stop, 1),
        "scale_in_deadline_s": 90,
    }
    return _record(HPA, sim, [probe], figures)


def rolling_update(started: float, rng: random.Random, *, failures: int = 0) -> dict:
    sim = Sim("ka-r1-test-rolling-update-replaces-ev-0a9b", started, rng)
    t = _prober(sim, 0.05)
    old_rs, t = sim.deploy(t + 0.4, "incver", 4)
    traffic = Traffic("incver", "http://incver/version", 2, 20, 2.0, chunk_s=5.0)
    traffic.started = sim.wall(t + 0.2)
    t_patch = t + 1.0
    sim.mark(t_patch, "set image", image=IMAGE.format(tag="v2"))
    new_rs = f"incver-{_hash(rng)}"
    sim.event(
        t_patch + 0.03,
        "ScalingReplicaSet",
        "deployment/incver",
        f"Scaled up replica set {new_rs} from 0 to 1",
    )
    serving: list[tuple[float, float, str, str]] = [  # (from, until, pod, version)
        (t, 1e9, name, "v1") for name in sim.names(old_rs)
    ]
    step_t = t_patch + 0.05
    old_pods = sim.names(old_rs)
    for step in range(4):
        name, ready = sim.start_pod(step_t, new_rs, "incver", tag="v2")
        serving.append((ready + 0.4, 1e9, name, "v2"))
        sim.deployment(
            ready + 0.02,
            "incver",
            "v2",
            spec_replicas=4,
            replicas=5,
            updated=step + 1,
            ready=5,
            available=5,
            unavailable=0,
            generation=2,
            observed_generation=2,
        )
        victim = old_pods[step]
        sim.event(
            ready + 0.05,
            "ScalingReplicaSet",
            "deployment/incver",
            f"Scaled down replica set {old_rs} from {4 - step} to {3 - step}",
        )
        sim.stop_pod(ready + 0.08, victim, grace=3.4)
        serving = [(a, ready + 0.3 if pod == victim else b, pod, v) for a, b, pod, v in serving]
        if step < 3:
            sim.event(
                ready + 0.06,
                "ScalingReplicaSet",
                "deployment/incver",
                f"Scaled up replica set {new_rs} from {step + 1} to {step + 2}",
            )
        step_t = ready + 0.1
    t_complete = step_t + 0.2
    sim.deployment(
        t_complete - 0.05,
        "incver",
        "v2",
        spec_replicas=4,
        replicas=4,
        updated=4,
        ready=4,
        available=4,
        generation=2,
        observed_generation=2,
    )
    sim.mark(t_complete, "rollout complete")
    end = t_complete + 5.5 + 1.5
    lanes = [t + 0.25, t + 0.26]
    failing = set(rng.sample(range(200, 900), failures)) if failures else set()
    while min(lanes) < end:
        lane = lanes.index(min(lanes))
        start = lanes[lane]
        live = [(pod, v) for a, b, pod, v in serving if a <= start < b]
        pod, version = rng.choice(live)
        if len(traffic.answers) in failing:
            traffic.add(sim.wall(start), 2.0, None, None, status=None, error="connection refused")
        else:
            traffic.add(sim.wall(start), 0.003 + rng.random() * 0.005, pod, version)
        lanes[lane] = start + 0.02 + 0.004 + rng.random() * 0.003
    traffic.ended = sim.wall(end + 0.1)
    probe = traffic.to_dict()
    figures = {
        "replicas": 4,
        "max_surge": 1,
        "max_unavailable": 0,
        "rollout_s": round(t_complete - t_patch, 1),
        "rollout_deadline_s": 70,
        "requests": probe["sent"],
        "failed": probe["failed"],
        "by_version": probe["by_version"],
        "max_pods": 5,
        "max_pods_with_terminating": 6,
        "min_ready": 4,
        "moments": 41,
    }
    return _record(ROLL, sim, [probe], figures)


def graceful_termination(started: float, rng: random.Random) -> dict:
    """Two halves of incver rolled at once: the graceful one answers all, the abrupt one loses a
    few requests right after each of its pods exits."""
    sim = Sim("ka-r1-test-graceful-pods-lose-no-req-1c2d", started, rng)
    t = _prober(sim, 0.05)
    olds = {}
    for app in ("incver", "incver-abrupt"):
        olds[app], t = sim.deploy(t + 0.2, app, 3)
    t_patch = t + 1.0
    sim.mark(t_patch, "set image", image=IMAGE.format(tag="v2"))
    probes = []
    for app, grace, lost in (("incver", 2.3, 0), ("incver-abrupt", 0.2, 4)):
        traffic = Traffic(app, f"http://{app}/version", 2, 20, 2.0, chunk_s=0.5)
        traffic.started = sim.wall(t + 0.2)
        serving = [(t, 1e9, name, "v1") for name in sim.names(olds[app])]
        refused: list[tuple[float, float]] = []
        new_rs = f"{app}-{_hash(rng)}"
        step_t = t_patch + 0.05
        for step, victim in enumerate(sim.names(olds[app])):
            name, ready = sim.start_pod(step_t, new_rs, app, tag="v2")
            serving.append((ready + 0.4, 1e9, name, "v2"))
            sim.stop_pod(ready + 0.08, victim, grace=grace)
            until = ready + (grace if grace > 1 else 0.1)
            serving = [(a, until if pod == victim else b, pod, v) for a, b, pod, v in serving]
            if lost:
                refused.append((until, until + 0.6))
            step_t = ready + 0.1 + step * 0.01
        if app == "incver-abrupt":
            sim.mark(step_t + 0.2, "rollouts complete")
        end = step_t + 5.0
        lanes = [t + 0.25, t + 0.26]
        while min(lanes) < end:
            lane = lanes.index(min(lanes))
            start = lanes[lane]
            live = [(pod, v) for a, b, pod, v in serving if a <= start < b]
            pod, version = rng.choice(live)
            if any(a <= start < b for a, b in refused) and rng.random() < 0.3:
                traffic.add(sim.wall(start), 0.001, None, None, status=None, error="refused")
            else:
                traffic.add(sim.wall(start), 0.003 + rng.random() * 0.005, pod, version)
            lanes[lane] = start + 0.02 + 0.004 + rng.random() * 0.003
        traffic.ended = sim.wall(end + 0.1)
        probes.append(traffic.to_dict())
    graceful, abrupt = probes
    figures = {
        "replicas": 3,
        "drain_s": 2,
        "rollout_s": 4.1,
        "graceful_requests": graceful["sent"],
        "graceful_failed": graceful["failed"],
        "graceful_answers_while_terminating": 212,
        "abrupt_requests": abrupt["sent"],
        "abrupt_failed": abrupt["failed"],
        "abrupt_failed_as": {"refused": abrupt["failed"]},
    }
    return _record(GRACEFUL, sim, probes, figures)


def failed_rollout(started: float, rng: random.Random) -> dict:
    sim = Sim("ka-r1-test-failed-rollout-stops-withi-7c3e", started, rng)
    t = _prober(sim, 0.05)
    old_rs, t = sim.deploy(t + 0.4, "incver", 3)
    sim.deployments[-1]["conditions"] = {"Progressing": "True/NewReplicaSetAvailable"}
    traffic = Traffic("incver", "http://incver/version", 2, 40, 2.0, chunk_s=2.0)
    traffic.started = sim.wall(t + 0.2)
    t_broken = t + 1.0
    sim.mark(t_broken, "broken rollout", image=IMAGE.format(tag="v2"))
    new_rs = f"incver-{_hash(rng)}"
    sim.event(
        t_broken + 0.03,
        "ScalingReplicaSet",
        "deployment/incver",
        f"Scaled up replica set {new_rs} from 0 to 1",
    )
    sim.replicaset(t_broken + 0.03, new_rs, "v2", "2", spec_replicas=1)
    broken = f"{new_rs}-{_suffix(rng)}"
    sim.live[broken] = Pod(broken, new_rs, "incver", tag="v2")
    sim._log(t_broken + 0.05, sim.live[broken], "ADDED")
    sim.change(t_broken + 0.08, broken, node=NODE)
    sim.change(t_broken + 0.9, broken, phase="Running", state="running", ip="10.88.0.99")
    sim.replicaset(t_broken + 0.06, new_rs, "v2", "2", spec_replicas=1, replicas=1)
    status = {"spec_replicas": 3, "replicas": 4, "updated": 1, "ready": 3, "available": 3}
    sim.deployment(t_broken + 0.07, "incver", "v2", generation=2, observed_generation=2, **status)
    sim.deployments[-1]["conditions"] = {"Progressing": "True/ReplicaSetUpdated"}
    t_exceeded = t_broken + 15.4
    sim.deployment(t_exceeded, "incver", "v2", generation=2, observed_generation=2, **status)
    sim.deployments[-1]["conditions"] = {"Progressing": "False/ProgressDeadlineExceeded"}
    sim.mark(t_exceeded + 0.01, "ProgressDeadlineExceeded")
    t_undo = t_exceeded + 0.02
    sim.mark(t_undo, "undo", revision=1)
    sim.replicaset(t_undo + 0.05, new_rs, "v2", "2", spec_replicas=0, replicas=1)
    sim.stop_pod(t_undo + 0.06, broken, grace=2.1)
    sim.replicaset(t_undo + 0.08, new_rs, "v2", "2", spec_replicas=0, replicas=0)
    sim.replicaset(
        t_undo + 0.08, old_rs, "v1", "3", spec_replicas=3, replicas=3, ready=3, available=3
    )
    t_restored = t_undo + 0.11
    whole = {"spec_replicas": 3, "replicas": 3, "updated": 3, "ready": 3, "available": 3}
    sim.deployment(t_restored, "incver", "v1", generation=3, observed_generation=3, **whole)
    sim.deployments[-1]["conditions"] = {"Progressing": "True/NewReplicaSetAvailable"}
    sim.mark(t_restored + 0.01, "restored")
    end = t_restored + 0.7
    lanes = [t + 0.25, t + 0.26]
    serving = sim.names(old_rs)
    while min(lanes) < end:
        lane = lanes.index(min(lanes))
        start = lanes[lane]
        traffic.add(sim.wall(start), 0.003 + rng.random() * 0.005, rng.choice(serving), "v1")
        lanes[lane] = start + 0.04 + 0.004 + rng.random() * 0.003
    traffic.ended = sim.wall(end + 0.1)
    probe = traffic.to_dict()
    figures = {
        "replicas": 3,
        "max_surge": 1,
        "max_unavailable": 0,
        "progress_deadline_s": 15.0,
        "progress_margin_s": 5.0,
        "restore_deadline_s": 10.0,
        "requests": probe["sent"],
        "failed": probe["failed"],
        "by_version": probe["by_version"],
        "exceeded_after_s": round(t_exceeded - t_broken, 2),
        "undo_to_restored_s": round(t_restored - t_undo, 2),
        "broken_pods": 1,
        "broken_replicaset": new_rs,
        "undo_to_revision": 1,
        "min_available": 3,
        "deployment_samples": 4,
    }
    return _record(FAILED_ROLLOUT, sim, [probe], figures)


def disruption_budget(started: float, rng: random.Random) -> dict:
    """A node of two drained under a budget of 3 of 4: the second eviction is refused until the
    first pod's replacement is Ready; every request answered."""
    sim = Sim("ka-r1-test-a-drain-through-the-evicti-5d1e", started, rng)
    t = _prober(sim, 0.05)
    rs, t = sim.deploy(t + 0.2, "incver", 4)
    traffic = Traffic("incver", "http://incver/version", 2, 40, 2.0, chunk_s=2.0)
    traffic.started = sim.wall(t + 0.2)
    t_cordon = t + 1.0
    sim.mark(t_cordon, "cordon", node=NODE)
    serving = [(t, 1e9, name) for name in sim.names(rs)]
    victims = sim.names(rs)[:2]
    for other in sim.names(rs)[2:]:
        sim.change(t - 0.5, other, node="ka-node-2")
    step_t = t_cordon + 0.05
    for victim in victims:
        sim.mark(step_t, "evicted", pod=victim)
        sim.stop_pod(step_t, victim, grace=2.3)
        serving = [(a, step_t + 2.3 if pod == victim else b, pod) for a, b, pod in serving]
        name, ready = sim.start_pod(step_t + 0.02, rs, "incver")
        sim.change(step_t + 0.05, name, node="ka-node-2")
        serving.append((ready + 0.4, 1e9, name))
        step_t = ready + 0.2
    t_drained = step_t + 2.6
    sim.mark(t_drained, "drained", node=NODE)
    sim.mark(t_drained + 0.01, "restored")
    end = t_drained + 0.8
    lanes = [t + 0.25, t + 0.26]
    while min(lanes) < end:
        lane = lanes.index(min(lanes))
        start = lanes[lane]
        pod = rng.choice([p for a, b, p in serving if a <= start < b])
        traffic.add(sim.wall(start), 0.003 + rng.random() * 0.005, pod, "v1")
        lanes[lane] = start + 0.04 + 0.004 + rng.random() * 0.003
    traffic.ended = sim.wall(end + 0.1)
    sim.mark(end + 0.2, "uncordon", node=NODE)
    probe = traffic.to_dict()
    figures = {
        "replicas": 4,
        "min_available": 3,
        "disruptions_allowed": 1,
        "drained_node": NODE,
        "pods_on_node": 2,
        "drain_deadline_s": 60.0,
        "evictions_tried": 3,
        "evictions_refused": 1,
        "evictions_accepted": 2,
        "refusal_certain": True,
        "min_ready_seen": 3,
        "drain_s": round(t_drained - t_cordon, 2),
        "restored_s": round(t_drained - t_cordon, 2),
        "requests": probe["sent"],
        "failed": probe["failed"],
    }
    return _record(DISRUPTION, sim, [probe], figures)


def _record(nodeid: str, sim: Sim, probes: list[dict], figures: dict) -> dict:
    return {
        "nodeid": nodeid,
        "namespace": sim.namespace,
        "figures": figures,
        "probes": probes,
        "recording": sim.recording(),
        "evidence": [],
    }


UNIT_MODULES = {
    "workloads/tests/test_apps.py": 38,
    "workloads/tests/test_prober.py": 17,
    "localcluster/tests/test_pki.py": 21,
    "localcluster/tests/test_configs.py": 26,
    "suite/tests/test_waiting.py": 24,
    "suite/tests/test_recorder.py": 15,
    "suite/tests/test_report.py": 14,
}


def full_run(
    *,
    seed: int = 7,
    failing_rollout: bool = False,
    skip_autoscaling: bool = False,
    app: str = "getip",
    log_text: str = "",
) -> dict[str, Any]:
    """A report.json document of a whole `pytest --cluster=local` run (scenarios + unit tests)."""
    rng = random.Random(seed)  # noqa: S311 (made-up data, not secrets)
    clock = STARTED + 40.0  # cluster preparation came first
    records: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, TestOutcome] = {}
    makers = [
        (LB, lambda s: load_balancing(s, rng, app=app)),
        (INFECT, lambda s: infected(s, rng)),
        (KILL, lambda s: killed(s, rng)),
        (DELETE, lambda s: deleted(s, rng)),
        # its own generator: the others' made-up data stays as it was before it was added
        (READINESS, lambda s: readiness(s, random.Random(seed + 1))),  # noqa: S311
        (HPA, lambda s: autoscaling(s, rng)),
        (ROLL, lambda s: rolling_update(s, rng, failures=3 if failing_rollout else 0)),
        (GRACEFUL, lambda s: graceful_termination(s, random.Random(seed + 2))),  # noqa: S311
        (OOM, lambda s: oom_backoff(s, random.Random(seed + 3))),  # noqa: S311
        # its own generator, as the readiness gating's
        (FAILED_ROLLOUT, lambda s: failed_rollout(s, random.Random(seed + 4))),  # noqa: S311
        (DISRUPTION, lambda s: disruption_budget(s, random.Random(seed + 5))),  # noqa: S311
    ]
    for nodeid, make in makers:
        if nodeid == HPA and skip_autoscaling:
            outcomes[nodeid] = TestOutcome(
                nodeid,
                "skipped",
                0.4,
                skip_reason="no metrics API (v1beta1.metrics.k8s.io): install metrics-server "
                "(not registered)",
            )
            continue
        record = make(clock)
        records[nodeid] = record
        recording = record["recording"]
        last = max(item["t"] for key in ("marks", "pods", "events") for item in recording[key])
        duration = last + 4.0
        outcomes[nodeid] = TestOutcome(nodeid, "passed", duration)
        clock += duration + 1.0
    if failing_rollout:
        record = records[ROLL]
        first = next(a for a in record["probes"][0]["answers"] if not a[5])
        patch = next(m for m in record["recording"]["marks"] if m["label"] == "set image")
        sent = record["probes"][0]["sent"]
        reason = (
            f"3 of {sent} requests failed during the rollout, first at "
            f"{first[2] - patch['wall']:+.1f}s from the image change: {sent} sent, "
            f"{sent - 3} answered, 3 failed (connection refused x3) (readiness probe, preStop "
            "sleep and graceful shutdown make zero failures possible)"
        )
        message = (
            "    def test_rolling_update_replaces_every_pod_without_a_failed_request(\n"
            "    ...\n"
            '        assert not result.errors, f"the traffic was interrupted: ..."\n'
            ">       assert not result.failed, (\n"
            '            f"{len(result.failed)} of {result.sent} requests failed during ..."\n'
            "        )\n"
            f"E       AssertionError: {reason}\n"
            "E       assert not [Answer(seq=412, chunk=1, start=1764205391.23, ...)]\n\n"
            "suite/scenarios/test_rolling_update.py:171: AssertionError"
        )
        pods = sorted({e["name"] for e in record["recording"]["pods"]})
        evidence = [
            (
                f"kube-alive: events in {record['namespace']}",
                "\n".join(
                    f"{e['last_timestamp']} {e['type']} {e['reason']} {e['object']}: {e['message']}"
                    for e in record["recording"]["events"]
                ),
            )
        ] + [
            (
                f"kube-alive: logs pod/{pod} -c incver",
                f"2025-11-27T01:04:0{i}.123Z [INFO] Starting gunicorn 23.0.0\n"
                f"2025-11-27T01:04:0{i}.130Z [INFO] Listening at: http://0.0.0.0:8080\n"
                + (log_text + "\n" if log_text else "")
                + "2025-11-27T01:04:09.002Z [INFO] Handling signal: term\n",
            )
            for i, pod in enumerate(pods[:3])
        ]
        outcomes[ROLL] = TestOutcome(ROLL, "failed", outcomes[ROLL].duration, message, evidence)
    outcomes[INTERRUPT] = TestOutcome(INTERRUPT, "passed", 31.2)
    clock += 32.0
    for module, count in UNIT_MODULES.items():
        for index in range(count):
            nodeid = f"{module}::test_case_{index:02d}"
            outcomes[nodeid] = TestOutcome(nodeid, "passed", 0.01 + rng.random() * 0.2)
    return report.build(
        run_id="r1k7q2",
        started=STARTED,
        ended=clock + 6.0,
        exitstatus=1 if failing_rollout else 0,
        cluster=CLUSTER,
        outcomes=outcomes,
        records=records,
    )


CLUSTER = {
    "provider": "local",
    "describe": "local (localcluster, started by this run)",
    "kubeconfig": "/var/lib/kube-alive/kubeconfig/admin.kubeconfig",
    "context": "kube-alive-local",
    "created": True,
    "facts": ClusterFacts(
        provider="local",
        context="kube-alive-local",
        server="https://127.0.0.1:6443",
        server_version="v1.34.2",
        nodes=[NodeFact(NODE, True, "amd64", "Debian GNU/Linux 12 (bookworm)", "v1.34.2")],
        metrics_problem=None,
        images={
            "repository": "localhost/kube-alive/workloads",
            "digest": "0123456789ab",
            "tags": ["v1-0123456789ab", "v2-0123456789ab"],
            "refs": [
                "localhost/kube-alive/workloads:v1-0123456789ab",
                "localhost/kube-alive/workloads:v2-0123456789ab",
            ],
        },
    ).to_dict(),
}


def main(argv: list[str]) -> None:
    document = full_run(failing_rollout="--failing" in argv)
    with open(argv[0], "w") as handle:
        json.dump(document, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])

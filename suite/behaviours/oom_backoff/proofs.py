"""Out of memory and the restart back-off: its decision functions. The container's runs as the
kubelet reported them (each start, end and reason), the delays between them against the kubelet's
crash-loop back-off, and the requests through the Service around the kill.

Pure and cluster-free, each unit-tested (test_proofs.py beside it). A sentence names a part (the
kubelet, the EndpointSlice controller, kube-proxy) only when what was recorded points at it: the
fault matrix counts a catch by the part the message names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from suite.samples import PodView
from suite.traffic import Answer

KUBELET = "the kubelet"
ENDPOINTSLICE_CONTROLLER = "the EndpointSlice controller (kube-controller-manager)"
KUBE_PROXY = "the node's service proxy (kube-proxy)"
OOM_KILLED = "OOMKilled"

#: The kubelet's crash-loop back-off (pkg/kubelet/kubelet.go, v1.34): 10 s first, doubling, at
#: most 300 s; with the ReduceDefaultCrashLoopBackOffDecay feature gate 1 s and 60 s; with
#: KubeletCrashLoopBackOffMax, crashLoopBackOff.maxContainerRestartPeriod caps both.
DEFAULT_INITIAL_S = 10.0
DEFAULT_MAX_S = 300.0
REDUCED_INITIAL_S = 1.0
REDUCED_MAX_S = 60.0


def parse_time(text: str) -> float | None:
    """An API timestamp (RFC 3339, whole seconds) as epoch seconds; None for none."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _duration_s(text: Any) -> float | None:
    """A Go duration as the kubelet's config prints it ("5m0s", "30s", "1m30s") in seconds."""
    if not isinstance(text, str) or not text:
        return None
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    i = 0
    while i < len(text):
        char = text[i]
        if char.isdigit() or char == ".":
            number += char
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else char
        if unit not in units or not number:
            return None
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    return total if not number else None


@dataclass(frozen=True)
class Backoff:
    """The kubelet's crash-loop back-off as configured: the first delay, the cap, and where
    that was read."""

    initial_s: float
    max_s: float
    source: str

    def expected_s(self, restart: int) -> float:
        """The back-off before restart number `restart` (1-based). The first restart has none:
        the kubelet's back-off entry for the container is created at that restart (doBackOff in
        pkg/kubelet/kuberuntime finds no entry, starts the container and records the initial
        delay), so only the second waits `initial_s`, the third twice that, and so on."""
        if restart <= 1:
            return 0.0
        return float(min(self.initial_s * 2.0 ** (restart - 2), self.max_s))


def backoff_of(configz: Mapping[str, Any] | None) -> Backoff:
    """The back-off a kubelet runs with, from its /configz (None: not readable, the upstream
    defaults). Feature gates not set in the config are taken as off (their default up to 1.34)."""
    if not configz:
        return Backoff(DEFAULT_INITIAL_S, DEFAULT_MAX_S, "the upstream defaults (no /configz)")
    config = configz.get("kubeletconfig") or configz
    gates = config.get("featureGates") or {}
    initial, cap, source = DEFAULT_INITIAL_S, DEFAULT_MAX_S, "the kubelet's defaults"
    if gates.get("ReduceDefaultCrashLoopBackOffDecay"):
        initial, cap = REDUCED_INITIAL_S, REDUCED_MAX_S
        source = "ReduceDefaultCrashLoopBackOffDecay"
    period = _duration_s((config.get("crashLoopBackOff") or {}).get("maxContainerRestartPeriod"))
    if gates.get("KubeletCrashLoopBackOffMax") and period is not None:
        cap = period
        initial = min(initial, cap)
        source += f", maxContainerRestartPeriod {period:g}s"
    return Backoff(initial, cap, source)


@dataclass(frozen=True)
class Run:
    """One run of the container: the restartCount it ran under, when it started and ended
    (epoch seconds, whole seconds as the kubelet reports them; None: not seen) and how."""

    index: int
    started: float | None = None
    finished: float | None = None
    reason: str = ""
    exit_code: int | None = None

    def merged(self, other: Run) -> Run:
        """This run with what `other` saw of it filled in."""
        return replace(
            self,
            started=self.started if self.started is not None else other.started,
            finished=self.finished if self.finished is not None else other.finished,
            reason=self.reason or other.reason,
            exit_code=self.exit_code if self.exit_code is not None else other.exit_code,
        )


def container_runs(
    history: Iterable[tuple[float, float, PodView | None]], container: str
) -> dict[int, Run]:
    """Every run of one container the recorded pod states tell of, by index (0: the first).
    A run shows as the current state (running, terminated) under its restartCount, and as the
    last state once the next run began: its end is seen even when it lasted less than the
    kubelet's status update (a start that ran out of memory at once)."""
    runs: dict[int, Run] = {}

    def add(run: Run) -> None:
        runs[run.index] = runs[run.index].merged(run) if run.index in runs else run

    for _, _, view in history:
        if view is None:
            continue
        for c in view.containers:
            if c.name != container:
                continue
            count = c.restart_count
            if c.state == "running":
                add(Run(count, parse_time(c.started_at)))
            elif c.state == "terminated":
                add(
                    Run(
                        count,
                        parse_time(c.started_at),
                        parse_time(c.finished_at),
                        c.reason,
                        c.exit_code,
                    )
                )
            if count >= 1 and c.last_finished_at:
                add(
                    Run(
                        count - 1,
                        parse_time(c.last_started_at),
                        parse_time(c.last_finished_at),
                        c.last_reason,
                        c.last_exit_code,
                    )
                )
    return runs


def oom_problems(runs: Mapping[int, Run], kills: int) -> list[str]:
    """Runs 0 .. kills-1 each ended OOMKilled, as the kubelet reported it (lastState.terminated
    .reason), and run `kills` started."""
    problems = []
    for index in range(kills):
        run = runs.get(index)
        if run is None or run.finished is None:
            problems.append(f"the end of run {index + 1} of the container was never reported")
        elif run.reason != OOM_KILLED:
            problems.append(
                f"run {index + 1} ended {run.reason or 'without a reason'} (exit "
                f"{run.exit_code}), not {OOM_KILLED}: the memory limit did not stop it"
            )
    if runs.get(kills) is None or runs[kills].started is None:
        problems.append(f"run {kills + 1} (after {kills} restarts) was never seen starting")
    return problems


@dataclass(frozen=True)
class Delay:
    """Restart number `restart`: from its run's end to the next run's start, against the
    back-off window [low_s, high_s] around `expected_s`."""

    restart: int
    delay_s: float | None
    expected_s: float
    low_s: float
    high_s: float

    def problem(self) -> str | None:
        """None when the restart came within its window."""
        if self.delay_s is None:
            return f"restart {self.restart}: its delay was not seen (a run's end or start missing)"
        if self.delay_s < self.low_s:
            return (
                f"restart {self.restart} came {self.delay_s:.0f}s after the OOM kill, before its "
                f"back-off of {self.expected_s:g}s (at least {self.low_s:g}s): {KUBELET} did not "
                "hold the crash-looping container back"
            )
        if self.delay_s > self.high_s:
            return (
                f"restart {self.restart} came {self.delay_s:.0f}s after the OOM kill, later than "
                f"its back-off of {self.expected_s:g}s allows (at most {self.high_s:g}s): "
                f"{KUBELET} was late restarting it"
            )
        return None


def restart_delays(
    runs: Mapping[int, Run],
    restarts: int,
    backoff: Backoff,
    *,
    immediate_s: float,
    recheck_s: float,
    resolution_s: float,
) -> list[Delay]:
    """The delay of each of the first `restarts` restarts and its window. The first restart has
    no back-off: within `immediate_s`. The later ones wait their back-off B at least (less the
    timestamps' `resolution_s`) and at most B + `recheck_s` (the pod worker's re-check after a
    sync that found it in back-off) + `immediate_s` + `resolution_s`."""
    delays = []
    for restart in range(1, restarts + 1):
        before, after = runs.get(restart - 1), runs.get(restart)
        delay = (
            after.started - before.finished
            if before is not None
            and after is not None
            and before.finished is not None
            and after.started is not None
            else None
        )
        expected = backoff.expected_s(restart)
        if restart == 1:
            low, high = -resolution_s, immediate_s + resolution_s
        else:
            low = expected - resolution_s
            high = expected + recheck_s + immediate_s + resolution_s
        delays.append(Delay(restart, delay, expected, low, high))
    return delays


def staircase_problems(delays: Sequence[Delay]) -> list[str]:
    """Every restart that came outside its back-off window; none seen is a problem too."""
    if not delays:
        return ["no restart was measured"]
    return [problem for delay in delays if (problem := delay.problem()) is not None]


def _kinds(failed: Iterable[Answer]) -> dict[str, int]:
    return dict(Counter(a.error or f"HTTP {a.status}" for a in failed).most_common(3))


def failures_outside_problems(
    answers: Sequence[Answer],
    killed: float,
    routed_out: float | None,
    *,
    skew_s: float,
) -> list[str]:
    """Failed requests through the Service are allowed only while the killed pod was still
    routed to: from the kill (`killed`) until its EndpointSlice listed it as not ready plus the
    service proxy's bound (`routed_out`). Before the kill nothing fails; after it, the other
    replica answers everything while the pod crash-loops (it is never Ready in between)."""
    if not answers:
        return ["no request went through the Service"]
    until = routed_out if routed_out is not None else killed
    before = [a for a in answers if not a.ok and a.start < killed - skew_s]
    after = [a for a in answers if not a.ok and a.start > until + skew_s]
    problems = []
    if before:
        problems.append(
            f"{len(before)} requests failed before the OOM, first at "
            f"{before[0].start - killed:+.1f}s ({_kinds(before)}): {KUBE_PROXY} or the pod "
            "network did not deliver them to ready pods"
        )
    if after:
        where = (
            f"after it left the EndpointSlice and the routing bound: {KUBE_PROXY} kept routing "
            "to the dead pod"
            if routed_out is not None
            else f"and it never left the EndpointSlice: {ENDPOINTSLICE_CONTROLLER} kept it listed"
        )
        problems.append(
            f"{len(after)} requests failed after the OOM kill {where}, the last at "
            f"+{after[-1].start - killed:.1f}s ({_kinds(after)})"
        )
    return problems


def ready_between(
    history: Iterable[tuple[float, float, PodView | None]], start: float, end: float
) -> list[float]:
    """Walls in (start, end) at which the pod was seen Ready: a crash-looping pod never is."""
    return [wall for _, wall, view in history if view and view.ready and start < wall < end]

"""Named faults the local cluster switches to and back from, to prove the scenarios catch them.

Each fault breaks one part of the cluster the way it breaks in real life: a component stopped, or
restarted with one setting changed. `apply` records the fault in `<state>/run/fault.json` BEFORE it
touches anything, so a run that crashes half-way still leaves a record that `clear` (and `up`,
which calls it) acts on: `python -m localcluster up` always brings back the normal component.

While a fault is applied, `/tmp/kube-alive-fault.lock` (override: KUBE_ALIVE_FAULT_LOCK) holds its
name, so other people and tools sharing the cluster can see it is broken on purpose.

There is deliberately no "kubelet probes ignore failures" fault: the kubelet has no switch for
that, and faking it (dropping probe traffic) would make probes fail, the opposite of the fault.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from localcluster import build, components, config, processes
from localcluster.util import ClusterError, Log, poll, run

#: kube-proxy's minSyncPeriod under `service-routing-late`: endpoint changes reach the node's
#: rules up to this late (the healthy setting is the 1 s default).
LATE_SYNC_S = 20
#: How long a stopped metrics-server takes to show as a missing metrics API: the aggregator
#: fails the first request to an endpoint that refuses connections.
METRICS_GONE_S = 30.0


class FaultNotApplicable(ClusterError):
    """The fault cannot be applied on this machine or in this state (reported as not run)."""


@dataclass(frozen=True)
class Fault:
    """One way to break the cluster: which component, and how."""

    name: str
    component: str
    #: What is broken, in the words a failure message should use.
    broken: str
    #: How the fault is made.
    how: str
    #: None: the component is stopped. Else: its argv under the fault.
    argv: Callable[[config.Paths, list[str]], list[str]] | None = None
    #: Extra work after stopping (e.g. flushing kube-proxy's rules).
    after_stop: Callable[[config.Paths], None] | None = None
    #: Returns None once the fault shows, else what is seen (polled after applying).
    shows: Callable[[config.Paths], str | None] | None = None
    shows_within_s: float = 30.0


def _flush_proxy_rules(paths: config.Paths) -> None:
    run([str(build.binary(paths, "kube-proxy")), "--cleanup"], check=False, timeout=60)


def _proxy_rules_gone(paths: config.Paths) -> str | None:
    del paths
    nat = run(["iptables-save", "-t", "nat"], check=False).stdout
    return "KUBE-SERVICES still in the nat table" if ":KUBE-SERVICES" in nat else None


def _late_proxy(paths: config.Paths, argv: list[str]) -> list[str]:
    cfg = paths.state / "config"
    settings = yaml.safe_load((cfg / "kube-proxy.yaml").read_text())
    settings["iptables"] = {"minSyncPeriod": f"{LATE_SYNC_S}s"}
    late = cfg / "kube-proxy-late.yaml"
    late.write_text(yaml.safe_dump(settings))
    return [f"--config={late}" if arg.startswith("--config=") else arg for arg in argv]


def _without_controller(controller: str) -> Callable[[config.Paths, list[str]], list[str]]:
    def argv(paths: config.Paths, normal: list[str]) -> list[str]:
        del paths
        return [*normal, f"--controllers=*,-{controller}"]

    return argv


def _metrics_api_gone(paths: config.Paths) -> str | None:
    ready = components.metrics_ready(paths)
    return "the metrics API still answers" if ready is None else None


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "service-routing-stopped",
            "kube-proxy",
            "Service routing (kube-proxy)",
            "kube-proxy stopped and its iptables rules flushed (kube-proxy --cleanup)",
            after_stop=_flush_proxy_rules,
            shows=_proxy_rules_gone,
        ),
        Fault(
            "service-routing-late",
            "kube-proxy",
            "Service routing that follows endpoint changes late (kube-proxy)",
            f"kube-proxy restarted with iptables.minSyncPeriod {LATE_SYNC_S}s (healthy: 1s)",
            argv=_late_proxy,
        ),
        Fault(
            "hpa-controller-off",
            "kube-controller-manager",
            "the HorizontalPodAutoscaler controller (kube-controller-manager)",
            "kube-controller-manager restarted with "
            "--controllers=*,-horizontal-pod-autoscaler-controller",
            argv=_without_controller("horizontal-pod-autoscaler-controller"),
        ),
        Fault(
            "deployment-controller-off",
            "kube-controller-manager",
            "the Deployment controller (kube-controller-manager)",
            "kube-controller-manager restarted with --controllers=*,-deployment-controller",
            argv=_without_controller("deployment-controller"),
        ),
        Fault(
            "metrics-api-gone",
            "metrics-server",
            "the resource metrics API (metrics-server)",
            "metrics-server stopped (its APIService stays registered, unavailable)",
            shows=_metrics_api_gone,
            shows_within_s=METRICS_GONE_S,
        ),
    )
}


def lock_path() -> Path:
    """The file that says a fault is applied (other users of the cluster check it)."""
    return Path(os.environ.get("KUBE_ALIVE_FAULT_LOCK", "/tmp/kube-alive-fault.lock"))  # noqa: S108


def _marker(paths: config.Paths) -> Path:
    return paths.run / "fault.json"


def known() -> str:
    """One line listing the known faults."""
    return "known faults: " + ", ".join(FAULTS)


def lookup(name: str) -> Fault:
    """The fault called `name`; an unknown name raises one line listing the known ones."""
    try:
        return FAULTS[name]
    except KeyError:
        raise ClusterError(f"unknown fault {name!r}; {known()}") from None


def active(paths: config.Paths) -> Fault | None:
    """The applied fault, if any (an unreadable or unknown record counts as the first fault of its
    component, so `clear` still restores it)."""
    marker = _marker(paths)
    if not marker.exists():
        return None
    try:
        name = str(json.loads(marker.read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError):
        name = ""
    return FAULTS.get(name) or Fault(name or "unknown", "", "an unrecorded fault", "unknown")


def excused(paths: config.Paths) -> set[str]:
    """Components a healthy-check should not expect running: the one an applied fault stopped."""
    fault = active(paths)
    return {fault.component} if fault is not None and fault.argv is None else set()


#: A stopped process's listening sockets close a moment after its pid looks gone (the kernel
#: drops the process's memory, which `/proc/<pid>/exe` reads, before its files).
PORTS_FREE_S = 15.0


def _stop(paths: config.Paths, component: str) -> None:
    """Stop `component` and wait until its ports are free, so it (or `up`) can start again."""
    if not processes.stop(paths, component):
        return
    ports = [port for port, who in config.PORTS.items() if who.split(" ", 1)[0] == component]

    def free() -> str | None:
        listening = run(["ss", "-Hltnu"], check=False).stdout
        held = [p for p in ports if re.search(rf":{p}\s", listening)]
        return f"port(s) {held} still held" if held else None

    if ports:
        poll(free, what=f"{component} ports", seconds=PORTS_FREE_S, interval=0.2)


def _spec(paths: config.Paths, component: str) -> components.Spec:
    return next(spec for spec in components.specs(paths) if spec.name == component)


def _start(paths: config.Paths, spec: components.Spec, argv: list[str], log: Log) -> None:
    processes.start(paths, spec.name, argv)
    waited = poll(
        spec.ready,
        what=spec.name,
        seconds=spec.deadline_s,
        alive=lambda: processes.death_note(paths, spec.name),
    )
    log(f"{spec.name} ready ({waited:.1f}s)")


def apply(paths: config.Paths, name: str, log: Log, *, healthy: Callable[[], bool]) -> Fault:
    """Break the cluster as `name` says; `healthy` tells whether the cluster runs normally first."""
    fault = lookup(name)
    current = active(paths)
    if current is not None:
        if current.name == fault.name:
            log(f"fault {name} is already applied")
            return fault
        raise FaultNotApplicable(
            f"cannot apply {name}: fault {current.name} is applied; "
            f"`python -m localcluster fault clear` first"
        )
    if not healthy():
        raise FaultNotApplicable(
            f"cannot apply {name}: the local cluster is not running healthy "
            "(`python -m localcluster up`, then `status`)"
        )
    spec = _spec(paths, fault.component)
    binary = Path(spec.argv[0])
    if not binary.exists():
        raise FaultNotApplicable(f"cannot apply {name}: {binary} is missing")
    # The record comes first: whatever happens next, `clear` and `up` know what to restore.
    _marker(paths).write_text(json.dumps({"name": fault.name, "applied": time.time()}))
    lock_path().write_text(f"{fault.name}\n")
    _stop(paths, spec.name)
    if fault.after_stop is not None:
        fault.after_stop(paths)
    if fault.argv is not None:
        _start(paths, spec, fault.argv(paths, list(spec.argv)), log)
    if fault.shows is not None:
        shows = fault.shows
        poll(lambda: shows(paths), what=f"fault {name}", seconds=fault.shows_within_s)
    log(f"fault {name} applied: {fault.how}")
    return fault


def clear(paths: config.Paths, log: Log, name: str | None = None, *, restart: bool = True) -> bool:
    """Undo the applied fault (or check it is `name`); False when none was applied.

    With `restart=False` (what `up` uses, since it starts every stopped component itself), the
    faulted component is only stopped, and the record removed.
    """
    fault = active(paths)
    if name is not None:
        lookup(name)
    if fault is None:
        lock_path().unlink(missing_ok=True)
        log("no fault applied")
        return False
    if name is not None and name != fault.name:
        raise ClusterError(f"fault {fault.name} is applied, not {name}")
    if fault.component:
        _stop(paths, fault.component)
        if restart and processes.pid_of(paths, "kube-apiserver") is not None:
            spec = _spec(paths, fault.component)
            _start(paths, spec, list(spec.argv), log)
    _marker(paths).unlink(missing_ok=True)
    lock_path().unlink(missing_ok=True)
    log(f"fault {fault.name} cleared" + ("" if restart else f"; {fault.component} stopped"))
    return True


def restart(
    paths: config.Paths,
    component: str,
    log: Log,
    *,
    while_stopped: Callable[[], None] | None = None,
) -> float:
    """Stop `component`, run `while_stopped`, start it again with its normal argv and wait until
    it is ready; returns the seconds it was gone. A restart, not a fault: nothing is left changed,
    and the lock file names it meanwhile. A run that dies half-way leaves the component stopped,
    which `up` starts again."""
    current = active(paths)
    if current is not None:
        raise FaultNotApplicable(
            f"cannot restart {component}: fault {current.name} is applied; "
            "`python -m localcluster fault clear` first"
        )
    spec = _spec(paths, component)
    lock_path().write_text(f"restart {component}\n")
    stopped = time.monotonic()
    try:
        _stop(paths, component)
        log(f"{component} stopped")
        if while_stopped is not None:
            while_stopped()
    finally:
        _start(paths, spec, list(spec.argv), log)
        lock_path().unlink(missing_ok=True)
    return time.monotonic() - stopped


def describe() -> list[str]:
    """One line per known fault: name, what is broken, how."""
    width = max(len(name) for name in FAULTS)
    return [f"{f.name:<{width}}  {f.broken}: {f.how}" for f in FAULTS.values()]

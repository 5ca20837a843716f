"""The local cluster's Python surface, used by the `--cluster=local` provider and the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from localcluster import build as _build
from localcluster import cluster, config, faults, processes
from localcluster.util import ClusterError, Log, file_lock
from suite import images

__all__ = [
    "ClusterError",
    "build",
    "component_argv",
    "down",
    "fault_active",
    "fault_apply",
    "fault_clear",
    "is_healthy",
    "kubeconfig_path",
    "load_images",
    "status",
    "up",
    "variant_active",
    "variant_apply",
    "variant_clear",
]


#: The lock every command that changes the cluster takes (`up`, `down`, `fault`/`variant`
#: `apply`/`clear`), so two at once cannot interleave. In the cache directory: `down` removes the
#: state directory, and a lock file removed while held would let the next command in beside it.
COMMAND_LOCK = "localcluster.lock"
#: How long a command waits for another one to finish. The longest holder is a cold `up` (the Go
#: builds: about 25 minutes on 2 cores, README); a warm `up`, `down` or a fault switch holds it
#: for a minute or two.
COMMAND_LOCK_WAIT_S = 1800.0


def _paths() -> config.Paths:
    return config.Paths.default()


@contextlib.contextmanager
def _one_at_a_time(command: str, log: Log) -> Iterator[None]:
    """Hold the command lock; a second command waits, saying who holds it, then fails in one
    line (localcluster.util.file_lock)."""
    what = f"localcluster {command} (one command at a time changes the cluster)"
    path = _paths().cache / COMMAND_LOCK
    held = contextlib.ExitStack()
    try:
        held.enter_context(file_lock(path, what, log, wait_s=COMMAND_LOCK_WAIT_S))
    except PermissionError:
        raise ClusterError(
            f"cannot take the lock {path} as this user: the local cluster is root's, run it with "
            "sudo"
        ) from None
    with held:
        yield


def kubeconfig_path() -> Path:
    """The admin kubeconfig of the local cluster."""
    return _paths().admin_kubeconfig


def component_argv(name: str) -> list[str] | None:
    """The argument list of a running component (its /proc cmdline), None if it does not run."""
    pid = processes.pid_of(_paths(), name)
    if pid is None:
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_healthy() -> bool:
    """True when a local cluster runs with every component and its node is Ready."""
    paths = _paths()
    return paths.admin_kubeconfig.exists() and cluster.is_healthy(paths)


def build(log: Log) -> None:
    """Build (or find cached) every component binary and the pause image."""
    cluster.preflight(for_build=True)
    paths = _paths()
    _build.build_binaries(paths, log)
    _build.build_pause_image(paths, log)


def applied_change_problem() -> str | None:
    """None when no fault or variant is applied, else the one line `up` fails with: which one,
    and how to clear it. Someone applied it on purpose (a fault matrix, a person showing a
    failure), or a crashed run left its record: `up` must not undo it behind their back."""
    change = faults.active(_paths())
    if change is None:
        return None
    return (
        f"{change.kind} {change.name} is applied ({change.how}); `up` leaves it as it is: clear "
        f"it with `python -m localcluster {change.kind} clear`, or restore the normal cluster in "
        "one step with `python -m localcluster up --restore`"
    )


def up(log: Log, *, restore: bool = False) -> None:
    """Start the cluster unless a healthy one runs; idempotent. An applied fault or variant is
    left alone and fails `up` (applied_change_problem), unless `restore` (then it is cleared
    and the normal cluster started)."""
    with _one_at_a_time("up", log):
        problem = applied_change_problem()
        if problem is not None and not restore:
            raise ClusterError(problem)
        if problem is None and is_healthy():
            log(f"a healthy local cluster is running; KUBECONFIG={kubeconfig_path()}")
            return
        cluster.up(_paths(), log)


def down(log: Log) -> None:
    """Stop everything `up` started and remove its state (binaries stay cached)."""
    with _one_at_a_time("down", log):
        cluster.down(_paths(), log)


def status(out: Log) -> bool:
    """Print each component's state; True when healthy."""
    return cluster.status(_paths(), out)


def load_images(refs: Sequence[str], log: Log) -> None:
    """Build the workload images (cached) and import them into the node's containerd; `refs`
    may name plain versions (`...workloads:v1`), which mean this checkout's content tags."""
    refs = [images.pin(ref) for ref in refs]
    paths = _paths()
    # Two runs at once (pytest -n, or a second terminal) must not delete each other's archives.
    with _build.images_lock(paths, log):
        built = _build.build_workload_images(paths, log)
        known = {ref for ref, _ in built}
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise ClusterError(
                f"no local build for {', '.join(unknown)}; buildable: {sorted(known)}"
            )
        chosen = [(ref, archive) for ref, archive in built if not refs or ref in refs]
        cluster.import_images(paths, [archive for _, archive in chosen], log)
        # The demo's manifests name the plain tags (`:v1`): point them at what was imported.
        aliases = [
            (ref, images.alias_ref(images.version_of(images.tag_of(ref)))) for ref, _ in chosen
        ]
        cluster.tag_images(paths, aliases, log)


def fault_apply(name: str, log: Log) -> None:
    """Switch the running cluster to the named fault (see `localcluster.faults`)."""
    faults.lookup(name)  # an unknown name is told first, whoever holds the lock
    with _one_at_a_time("fault apply", log):
        faults.apply(_paths(), name, log, healthy=is_healthy)


def fault_clear(name: str | None, log: Log) -> None:
    """Switch back from the applied fault (checking it is `name`, if given)."""
    with _one_at_a_time("fault clear", log):
        faults.clear(_paths(), log, name)


def fault_active() -> str | None:
    """The name of the applied fault, or None (also while a variant is applied)."""
    fault = faults.active(_paths())
    return fault.name if fault is not None and fault.kind == "fault" else None


def variant_apply(name: str, log: Log) -> None:
    """Switch the running, healthy cluster to the named variant (see `localcluster.faults`)."""
    faults.lookup_variant(name)  # an unknown name is told first, whoever holds the lock
    with _one_at_a_time("variant apply", log):
        faults.apply_variant(_paths(), name, log, healthy=is_healthy)


def variant_clear(name: str | None, log: Log) -> None:
    """Switch back from the applied variant (checking it is `name`, if given)."""
    with _one_at_a_time("variant clear", log):
        faults.clear(_paths(), log, name)


def variant_active() -> str | None:
    """The name of the applied variant, or None."""
    change = faults.active(_paths())
    return change.name if change is not None and change.kind == "variant" else None

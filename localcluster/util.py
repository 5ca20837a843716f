"""Small helpers shared by the local cluster's modules (and the suite): subprocesses, logging,
deadlines, file locks."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """A failure with a message meant for the person running the command."""


def stderr_log(message: str) -> None:
    """Default progress log: one line on stderr with the time since start."""
    print(f"[localcluster {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


_T0 = time.monotonic()


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with captured output; a failure raises ClusterError with its stderr tail."""
    args = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
            input=input_text,
        )
    except FileNotFoundError as exc:
        raise ClusterError(f"{args[0]}: not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{' '.join(args[:4])} ...: no answer within {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ClusterError(f"{' '.join(args[:6])} exited {proc.returncode}:\n{tail}")
    return proc


def tree_hash(paths: Iterable[Path], extra: str = "") -> str:
    """A short content hash of files (sorted by path), to key build caches."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, or a note that it is missing."""
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


#: How often a bounded wait for a file lock tries it again (flock itself has no timeout).
LOCK_RETRY_S = 0.5


@contextlib.contextmanager
def file_lock(path: Path, what: str, log: Log, *, wait_s: float | None = None) -> Iterator[float]:
    """Hold an exclusive lock on `path` (an flock, between processes and between threads);
    yields the seconds spent waiting for it.

    The lock is tried without blocking first, so a wait behind another holder is said through
    `log` (with `what` the lock guards, and who holds it) instead of looking like a hang. The
    holder writes its pid into the file for that message; the lock, not the file, excludes.
    With `wait_s`, a holder that keeps it longer than that fails the wait: ClusterError, one
    line naming the holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        started = time.monotonic()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            bound = "" if wait_s is None else f", at most {wait_s:.0f}s"
            log(f"{what}: waiting for the lock held by {_lock_holder(handle)} ({path}){bound}")
            if wait_s is None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            else:
                _wait_for_lock(handle, path, what, wait_s)
        waited = time.monotonic() - started
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield waited
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wait_for_lock(handle: IO[str], path: Path, what: str, wait_s: float) -> None:
    def taken() -> str | None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _lock_holder(handle)
        return None

    try:
        poll(taken, what=what, seconds=wait_s, interval=LOCK_RETRY_S)
    except ClusterError:
        raise ClusterError(
            f"{what}: the lock is still held by {_lock_holder(handle)} after {wait_s:.0f}s "
            f"({path}); try again once it is done"
        ) from None


def _lock_holder(handle: IO[str]) -> str:
    """`pid N (its command line)` from a lock file's content; `another process` when unknown."""
    handle.seek(0)
    pid = handle.read().strip()
    if not pid.isdigit():
        return "another process"
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"pid {pid}"
    # One line whatever the command (a `python -c` program has newlines in its argument).
    command = " ".join(raw.split())
    return f"pid {pid} ({command[:120]})" if command else f"pid {pid}"


@dataclass
class Deadline:
    """One explicit deadline: `seconds` from creation, on the monotonic clock (or `clock`).

    The one deadline class of the repository: the suite's waits (`suite.waiting.Deadline`) use it
    too, so it lives here, where `python -m localcluster` finds it without the suite.
    """

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def elapsed(self) -> float:
        """Seconds since the deadline was set."""
        return self.clock() - self.started

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.seconds - self.elapsed())

    @property
    def expired(self) -> bool:
        """True once no time is left."""
        return self.remaining() <= 0.0


def poll(
    check: Callable[[], str | None],
    *,
    what: str,
    seconds: float,
    interval: float = 0.5,
    alive: Callable[[], str | None] | None = None,
) -> float:
    """Poll `check` (None = ready, else the state seen) until it is ready or the deadline passes.

    Local processes have no watch API, so polling their health endpoints at a fixed short interval
    under one deadline is the honest way to wait. `alive` returns a failure message as soon as the
    process died, so a crash fails at once instead of at the deadline.
    """
    deadline = Deadline(seconds)
    last = "not checked yet"
    while True:
        if alive is not None and (dead := alive()) is not None:
            raise ClusterError(f"{what}: {dead}")
        state = check()
        if state is None:
            return deadline.elapsed()
        last = state
        if deadline.expired:
            raise ClusterError(
                f"{what}: not ready after {deadline.elapsed():.0f}s (deadline {seconds:.0f}s); "
                f"last seen: {last}"
            )
        time.sleep(interval)

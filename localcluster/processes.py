"""Starting, finding and stopping the cluster's host processes.

Each process runs in its own session (it outlives the command that started it), logs to
`<state>/logs/<name>.log`, and has a pid file in `<state>/run/`. A pid file is trusted only while
`/proc/<pid>/exe` still is the binary that was started, so a reused pid is never signalled.
`launch`, `pid_in`, `exit_note` and `stop_in` do the same for a log and pid file named by the
caller (the kind engine's processes, see `localcluster.engine`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from localcluster import config
from localcluster.util import ClusterError, Log, tail


def _pidfile(paths: config.Paths, name: str) -> Path:
    return paths.run / f"{name}.pid"


NEEDS_ROOT = "run it as root (sudo python3 -m localcluster ...): the components run as root"


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except PermissionError:
        # Another user's process: it exists, but whose binary it runs is not ours to see.
        raise
    except OSError:
        return None


def _exe_if_visible(pid: int) -> str | None:
    try:
        return _exe(pid)
    except PermissionError:
        return None


def pid_of(paths: config.Paths, name: str) -> int | None:
    """The pid of a running component started by us, else None (see `pid_in`)."""
    return pid_in(_pidfile(paths, name), name)


def pid_in(pidfile: Path, name: str) -> int | None:
    """The pid in a pid file written by `launch`, while that process still runs the binary it
    was started with; else None.

    Raises ClusterError when this user cannot tell (the pid file or `/proc/<pid>/exe` is
    root's): "stopped" would be a guess, and a wrong one while the cluster runs.
    """
    try:
        pid_text, exe = pidfile.read_text().split("\n", 1)
        pid = int(pid_text)
    except PermissionError as error:
        raise ClusterError(f"cannot tell whether {name} runs: {error}; {NEEDS_ROOT}") from None
    except (OSError, ValueError):
        return None
    try:
        return pid if _exe(pid) == exe.strip() else None
    except PermissionError:
        raise ClusterError(
            f"cannot tell whether {name} runs (pid {pid} is another user's process); {NEEDS_ROOT}"
        ) from None


def start(paths: config.Paths, name: str, argv: Sequence[str | Path]) -> int:
    """Start a component detached from this process, logging to its own file."""
    return launch(name, argv, log_file=paths.logs / f"{name}.log", pidfile=_pidfile(paths, name))


def launch(
    name: str,
    argv: Sequence[str | Path],
    *,
    log_file: Path,
    pidfile: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start a process in its own session (it outlives this one), appending its output to
    `log_file`; `pidfile` records its pid and the binary it runs, for `pid_in` and `stop_in`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        out.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S')} start {name}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    # A bare name is found on the PATH the process got, as Popen found it.
    program = shutil.which(str(argv[0]), path=(os.environ if env is None else env).get("PATH"))
    exe = str(Path(program or str(argv[0])).resolve())
    pidfile.write_text(f"{proc.pid}\n{exe}\n")
    return proc.pid


def death_note(paths: config.Paths, name: str) -> str | None:
    """None while the component runs; else a message with the last lines of its log."""
    return exit_note(name, log_file=paths.logs / f"{name}.log", pidfile=_pidfile(paths, name))


def exit_note(name: str, *, log_file: Path, pidfile: Path) -> str | None:
    """None while the process of `pidfile` runs; else a message with the last lines of its log."""
    if pid_in(pidfile, name) is not None:
        return None
    # Reap it if it was our child, so its exit status is not lost as a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)
    return f"{name} exited; last lines of {log_file}:\n{tail(log_file)}"


def stop(paths: config.Paths, name: str, grace: float = 10) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds. True if something was running."""
    return stop_in(_pidfile(paths, name), name, grace)


def stop_in(pidfile: Path, name: str, grace: float = 10, log: Log | None = None) -> bool:
    """Stop the process of `pidfile`: SIGTERM, then SIGKILL after `grace` seconds (said through
    `log`, if given); the pid file is removed. True if something was running."""
    pid = pid_in(pidfile, name)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _exe(pid) is not None:
        _reap()
        time.sleep(0.1)
    if _exe(pid) is not None:
        if log is not None:
            log(f"{name} (pid {pid}) ignored SIGTERM for {grace:.0f}s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            _reap()
            if _exe(pid) is None:
                break
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return True


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def strays(binaries: Sequence[Path]) -> list[tuple[int, str]]:
    """Processes running one of our binaries without a pid file that names them (after a crash)."""
    wanted = {str(b.resolve()) for b in binaries}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (exe := _exe_if_visible(int(entry.name))) in wanted:
            found.append((int(entry.name), exe))
    return found

"""memhog: a pod that runs out of memory on request, and again at its next starts (the oom-backoff
witness).

``POST /oom?starts=N`` writes N into a file on an emptyDir volume (it survives container restarts)
and has the container's main process, the gunicorn master, allocate memory until the kernel's OOM
killer ends it. While the file says more starts are to fail, each new start takes one off and
allocates again before gunicorn serves anything, so the container is OOMKilled N + 1 times in a
row and the kubelet's restart back-off shows; then it serves again, in the same pod.

The allocation is done by the master (PID 1 of the container), never by a worker: on cgroup v1
the OOM killer ends only the biggest process, and a worker it killed would be replaced by gunicorn
without the container ever dying (on cgroup v2 the kubelet sets memory.oom.group, which ends the
whole container either way). The worker asks the master with ``OOM_SIGNAL``, which
``workloads.__main__`` handles for this app only.

The route is reached through the API server's pod proxy, never from the frontend's page.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import flask

from workloads.common import answer, identity, int_param, log_json, new_app
from workloads.healthcheck import MASTER_PID_ENV

#: Where the emptyDir that outlives the container is mounted (the manifest mounts it there).
STATE_DIR_ENV = "MEMHOG_STATE_DIR"
DEFAULT_STATE_DIR = "/state"
STARTS_FILE = "oom-starts"
#: How much to allocate at most. Far past the manifest's limit (96Mi), so the OOM killer acts
#: long before; a container that survives this much has no limit near it, and lives on.
ALLOCATE_MIB_ENV = "MEMHOG_ALLOCATE_MIB"
DEFAULT_ALLOCATE_MIB = 512
CHUNK_MIB = 8
#: At most this many failing starts after the first OOM: the back-off doubles each time.
MAX_OOM_STARTS = 4
#: The worker asks the master to allocate with this signal (gunicorn ignores it otherwise when
#: not daemonized, and no terminal sends it in a container).
OOM_SIGNAL = signal.SIGWINCH
#: Time between answering ``POST /oom`` and the signal: the 202 must leave the socket first.
OOM_DELAY_S = 0.2


def state_dir() -> Path:
    """The emptyDir that keeps the count of failing starts across container restarts."""
    return Path(os.environ.get(STATE_DIR_ENV, DEFAULT_STATE_DIR))


def allocate_mib() -> int:
    """How much ``exhaust_memory`` allocates at most (MiB)."""
    raw = os.environ.get(ALLOCATE_MIB_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_ALLOCATE_MIB


def starts_left(directory: Path) -> int:
    """How many more starts are to run out of memory (0 when the file is absent or unreadable)."""
    try:
        raw = (directory / STARTS_FILE).read_text().strip()
    except OSError:
        return 0
    return int(raw) if raw.isdigit() else 0


def set_starts(directory: Path, starts: int) -> None:
    """Write how many more starts are to run out of memory (atomically: a rename)."""
    temporary = directory / (STARTS_FILE + ".new")
    temporary.write_text(f"{starts}\n")
    temporary.replace(directory / STARTS_FILE)


def take_start(directory: Path) -> bool:
    """At a start: True (and one fewer left) when this start is to run out of memory."""
    left = starts_left(directory)
    if left <= 0:
        return False
    set_starts(directory, left - 1)
    return True


def exhaust_memory(limit_mib: int, chunk_mib: int = CHUNK_MIB) -> int:
    """Allocate and touch memory, chunk by chunk, up to `limit_mib`: under a smaller memory limit
    the kernel kills this process on the way. Returns the MiB held when it was not killed (all
    freed again)."""
    held: list[bytes] = []
    total = 0
    while total + chunk_mib <= limit_mib:
        # Filled, not zeroed: every page is written, so it is really resident (bytes(n) could be
        # untouched zero pages).
        held.append(b"\xa5" * (chunk_mib << 20))
        total += chunk_mib
    log_json({"event": "oom-not-killed", "allocated_mib": total})
    return total


def before_serving(
    directory: Path | None = None, exhaust: Callable[[int], int] | None = None
) -> bool:
    """In the container's main process, before gunicorn starts: run out of memory if this start
    is one of those ``POST /oom`` asked for. True when it allocated (and was not killed)."""
    directory = state_dir() if directory is None else directory
    if not take_start(directory):
        return False
    log_json({"event": "oom-at-start", "starts_left": starts_left(directory)})
    (exhaust or exhaust_memory)(allocate_mib())
    return True


def ask_master() -> None:
    """Have the gunicorn master run out of memory; without a master (tests, a bare run), this
    process does."""
    master = os.environ.get(MASTER_PID_ENV)
    if master is not None and master == str(os.getppid()):
        os.kill(int(master), OOM_SIGNAL)
        return
    exhaust_memory(allocate_mib())


def create_app(on_oom: Callable[[], None] | None = None) -> flask.Flask:
    """``GET /`` (the pod that answered), ``/healthz``, ``/readyz``; ``POST /oom?starts=N``."""
    app = new_app("memhog")
    trigger = ask_master if on_oom is None else on_oom

    @app.get("/")
    def index() -> flask.Response:
        ident = identity()
        return answer({"ip": ident.ip, "node": ident.node})

    @app.post("/oom")
    def oom() -> flask.Response:
        starts = int_param("starts", 0, 0, MAX_OOM_STARTS)
        set_starts(state_dir(), starts)
        response = answer(
            {"oom": True, "failing_starts": starts, "allocate_mib": allocate_mib()}, status=202
        )

        def soon() -> None:
            timer = threading.Timer(OOM_DELAY_S, trigger)
            timer.daemon = True
            timer.start()

        # Start the countdown only once the answer has been handed to the server.
        response.call_on_close(soon)
        return response

    return app

"""``python -m workloads <app>``: serve one workload with gunicorn on 0.0.0.0:8080.

gunicorn runs in this process (its documented custom-application API), so this process is the
gunicorn master and the container's main process: SIGTERM stops it gracefully, and the exit status
of the container is the master's. The master differs from stock gunicorn in one way: SIGUSR2 (which
would re-exec gunicorn, something a container never needs) halts it with exit status 1. That is how
``POST /kill`` on the healthcheck ends the whole container with status 1 rather than one worker,
which gunicorn would quietly replace.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from gunicorn.errors import HaltServer  # type: ignore[import-untyped]

from workloads import APPS, memhog
from workloads.healthcheck import KILL_EXIT_STATUS, MASTER_PID_ENV
from workloads.incver import LIFECYCLE_KEY

BIND = "0.0.0.0:8080"  # a container listens on all its interfaces
# Only for running the server outside a container (the unit tests bind a free loopback port).
BIND_ENV = "KUBE_ALIVE_BIND"
USAGE_EXIT_STATUS = 2
#: ``exit``: SIGTERM stops the server at once (its workers killed, requests in flight cut) instead
#: of gunicorn's graceful stop. The abrupt half of the graceful-termination
#: scenario (manifests/incver-abrupt) runs incver so: an app that exits the moment it is told to.
ON_SIGTERM_ENV = "KUBE_ALIVE_ON_SIGTERM"
ON_SIGTERM_EXIT = "exit"


@dataclass(frozen=True)
class Serving:
    """How gunicorn serves one app. Timeouts are in seconds."""

    workers: int = 1
    threads: int = 8
    # gthread workers heartbeat from their main loop, so this only catches a hung worker; it does
    # not cut long requests (cpuhog bursts, prober streams).
    timeout: int = 30
    # On SIGTERM in-flight requests get this long to finish. It must stay below the pod's
    # terminationGracePeriodSeconds (minus any preStop sleep) or kubelet kills us first.
    graceful_timeout: int = 10


SERVING: dict[str, Serving] = {
    "getip": Serving(),
    # One process: the infection lives in this process's memory, and /healthz must see it.
    "healthcheck": Serving(workers=1, threads=4, graceful_timeout=5),
    # Two processes, so two concurrent bursts burn two cores (threads of one process share the
    # GIL); the extra threads keep /healthz answering during a burst.
    "cpuhog": Serving(workers=2, threads=4),
    # terminationGracePeriodSeconds 20 - the preStop drain (at most 5 s) = 15 s left: finish
    # within 10 s. One process: its readiness (loaded, stopping) is one process's state.
    "incver": Serving(workers=1, graceful_timeout=10),
    # Each /probe holds a thread for up to 600 s and starts its own request threads.
    "prober": Serving(workers=1, threads=8, graceful_timeout=5),
    "frontend": Serving(),
    # One worker: the memory is the master's to exhaust (see workloads.memhog).
    "memhog": Serving(workers=1, threads=4, graceful_timeout=5),
}


def gunicorn_options(app: str) -> dict[str, Any]:
    """The gunicorn settings for ``app``."""
    serving = SERVING[app]
    return {
        "bind": os.environ.get(BIND_ENV, BIND),
        "worker_class": "gthread",
        "workers": serving.workers,
        "threads": serving.threads,
        "timeout": serving.timeout,
        "graceful_timeout": serving.graceful_timeout,
        "keepalive": 2,
        # The root filesystem is read-only: the worker heartbeat files go to memory, and there is
        # no control socket to create.
        "worker_tmp_dir": "/dev/shm",  # noqa: S108 (a tmpfs, not a shared temp dir)
        "control_socket_disable": True,
        # The apps log each request as JSON on stdout themselves; gunicorn's own log is JSON too.
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "logconfig_dict": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": "workloads.common.JsonFormatter"}},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "json",
                    "stream": "ext://sys.stderr",
                }
            },
            "root": {"level": "INFO", "handlers": ["stderr"]},
            "loggers": {
                "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
                "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
            },
        },
        "proc_name": f"kube-alive-{app}",
        "post_worker_init": post_worker_init,
    }


def post_worker_init(worker: Any) -> None:
    """gunicorn hook, in the worker once it has loaded the app and before it accepts: boot the
    app's lifecycle, and make SIGTERM fail its readiness before gunicorn's own handler stops the
    worker (a pod that is stopping is not ready, even without a preStop hook)."""
    app = worker.wsgi
    lifecycle = getattr(app, "extensions", {}).get(LIFECYCLE_KEY)
    if lifecycle is None:
        return
    stop_worker = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        lifecycle.stop("SIGTERM")
        if callable(stop_worker):
            stop_worker(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    # As gunicorn has it: SIGTERM must not interrupt the system calls of requests in flight.
    signal.siginterrupt(signal.SIGTERM, False)
    if not lifecycle.boot(app):
        worker.log.error("incver did not answer its own /version: it stays not ready")


class _Arbiter(Arbiter):  # type: ignore[misc]
    def handle_usr2(self) -> None:
        raise HaltServer("a worker asked for the container to exit (POST /kill)", KILL_EXIT_STATUS)

    def handle_term(self) -> None:
        if os.environ.get(ON_SIGTERM_ENV) == ON_SIGTERM_EXIT:
            # At once: the workers are killed with whatever they are serving (gunicorn's own
            # quick shutdown, SIGQUIT, still lets a gthread worker finish its requests).
            self.kill_workers(signal.SIGKILL)
        super().handle_term()

    def handle_winch(self) -> None:
        # memhog's POST /oom: the master (the container's main process) runs out of memory, so
        # the OOM killer ends the container, not one worker gunicorn would replace.
        if getattr(self.app, "app_name", None) == "memhog":
            memhog.exhaust_memory(memhog.allocate_mib())
            return
        super().handle_winch()


class WorkloadServer(BaseApplication):  # type: ignore[misc]
    """gunicorn serving ``workloads.<app>:create_app()``."""

    def __init__(self, app: str, options: dict[str, Any]) -> None:
        self.app_name = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        known = self.cfg.settings
        for key, value in self.options.items():
            # Settings that an older gunicorn lacks (the control socket) are simply not needed.
            if key in known:
                self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        module = importlib.import_module(f"workloads.{self.app_name}")
        return module.create_app()  # type: ignore[no-any-return]

    def run(self) -> None:
        os.environ[MASTER_PID_ENV] = str(os.getpid())
        _Arbiter(self).run()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the app named by the first argument; exit 2 with the list of apps otherwise."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in APPS:
        given = " ".join(args) or "nothing"
        print(
            f"usage: python -m workloads <app>; app is one of: {', '.join(APPS)} (got {given})",
            file=sys.stderr,
        )
        return USAGE_EXIT_STATUS
    if args[0] == "memhog":
        # Before gunicorn: this start may be one that POST /oom asked to run out of memory.
        memhog.before_serving()
    WorkloadServer(args[0], gunicorn_options(args[0])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

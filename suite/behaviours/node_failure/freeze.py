"""Stopping a kind node: `docker pause` of its container, retried when the cgroup freezer gives up.

On a cgroup v1 host runc freezes a container by writing FROZEN to its freezer cgroup and reading
the state back; while processes keep appearing in it (a kind node runs the kubelet, containerd,
its shims and their probes) the kernel can stay FREEZING, and after 1000 tries runc thaws the
container again and fails with "unable to freeze" (runc's libcontainer/cgroups/fs/freezer.go
calls this "a game of chances"; cgroup v2 does not have it). Seen once in CI on a 3-node kind
cluster. The container is running again after such a failure, so the pause is simply retried a
few times, each attempt recorded; any other error, or the last "unable to freeze", is raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import tenacity

from suite.providers.base import ProviderError

#: runc's words when its freezer retries ran out (it has thawed the container again).
FREEZE_GAVE_UP = "unable to freeze"
ATTEMPTS = 5
#: Between attempts: let a burst of new processes (a probe, an exec) finish.
BETWEEN_S = 1.0


def gave_up_freezing(error: BaseException) -> bool:
    """The pause failed only because the freezer did not settle (worth another attempt)."""
    return isinstance(error, ProviderError) and FREEZE_GAVE_UP in str(error)


def pause(
    run: Callable[[], None],
    on_retry: Callable[[int, BaseException], None],
    *,
    attempts: int = ATTEMPTS,
    between_s: float = BETWEEN_S,
) -> tuple[float, int]:
    """Run `run` (the `docker pause`) until it succeeds, retrying only the freezer's "unable to
    freeze" up to `attempts` times; `on_retry(attempt, error)` is told of each failed attempt.
    Returns when the successful attempt started and how many attempts it took."""
    started: list[float] = []

    def attempt() -> None:
        started.append(time.time())
        run()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if error is not None:
            on_retry(state.attempt_number, error)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(gave_up_freezing),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_fixed(between_s),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        retrying(attempt)
    except ProviderError as error:
        if not gave_up_freezing(error):
            raise
        raise ProviderError(
            f"{error} ({len(started)} attempts, {between_s:.0f}s apart: the host's cgroup "
            "freezer stayed FREEZING while processes kept starting in the node container, and "
            "runc thawed it again each time; look for a process stuck in the node, or run on "
            "a cgroup v2 host)"
        ) from error
    return started[-1], len(started)

"""Pod counts over time, replayed from a log of pod changes: the one calculation the recorder
(`Recorder.pod_moments`, live) and the report (`report.data.pod_counts`, from report.json) share.

A change is a pod's new state (None: it was deleted). Changes that share a group apply as one:
a relist (the recorder) or one instant (a saved recording), so no moment shows a state that
never existed. A moment follows every group that changed the pods counted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

State = TypeVar("State")


@dataclass(frozen=True)
class Moment:
    """Pod counts right after one observed pod change."""

    t: float
    wall: float
    pods: int  # not terminating
    terminating: int
    ready: int  # Ready and not terminating
    cause: str = ""

    @property
    def total(self) -> int:
        """All pods that exist, terminating included."""
        return self.pods + self.terminating


@dataclass(frozen=True)
class Change(Generic[State]):
    """One pod's new state (None: deleted) at t (the recorder's clock) and wall (epoch)."""

    t: float
    wall: float
    name: str
    state: State | None
    #: Changes with the same group (next to each other) apply as one.
    group: Hashable


@dataclass(frozen=True)
class Reading(Generic[State]):
    """How to read a state: is it counted at all, terminating, Ready, and how to say it."""

    counted: Callable[[State], bool]
    terminating: Callable[[State], bool]
    ready: Callable[[State], bool]
    words: Callable[[State], str]


def replay(changes: Sequence[Change[State]], reading: Reading[State]) -> list[Moment]:
    """The counts after every group of changes that changed the pods counted."""
    current: dict[str, State] = {}
    moments: list[Moment] = []
    dirty, cause = False, ""
    for index, change in enumerate(changes):
        if change.state is None:
            if change.name in current:
                del current[change.name]
                dirty, cause = True, f"{change.name} deleted"
        elif reading.counted(change.state):
            current[change.name] = change.state
            dirty, cause = True, f"{change.name} {reading.words(change.state)}"
        following = changes[index + 1] if index + 1 < len(changes) else None
        if not dirty or (following is not None and following.group == change.group):
            continue
        dirty = False
        live = [state for state in current.values() if not reading.terminating(state)]
        moments.append(
            Moment(
                t=change.t,
                wall=change.wall,
                pods=len(live),
                terminating=len(current) - len(live),
                ready=sum(1 for state in live if reading.ready(state)),
                cause=cause,
            )
        )
    return moments

"""The behaviours kube-alive proves, one folder each, listed once here.

A behaviour's folder holds its scenario (`test_<folder>.py`), its decision functions
(`proofs.py`, unit-tested in `test_proofs.py`), its report view (`view.py`) and its declaration
(`BEHAVIOUR` in `__init__.py`: name, words, the test the tools run, the faults that must break it,
the healthy variants it must pass on). Everything that lists behaviours reads `ALL`: the report,
the fault matrix, soak, side by side, the browser test, `.ci/run` (`python -m suite.behaviours`)
and the README's table check. docs/adding-a-behaviour.md walks through adding one.
"""

from __future__ import annotations

from suite.behaviours import (
    autoscaling,
    disruption_budget,
    failed_rollout,
    graceful_termination,
    load_balancing,
    oom_backoff,
    readiness_gating,
    rolling_update,
    self_healing,
)
from suite.behaviours.base import Behaviour, Catch

#: Every behaviour, in the order the report tells them.
ALL: tuple[Behaviour, ...] = (
    load_balancing.BEHAVIOUR,
    self_healing.BEHAVIOUR,
    readiness_gating.BEHAVIOUR,
    autoscaling.BEHAVIOUR,
    rolling_update.BEHAVIOUR,
    graceful_termination.BEHAVIOUR,
    oom_backoff.BEHAVIOUR,
    failed_rollout.BEHAVIOUR,
    disruption_budget.BEHAVIOUR,
)

__all__ = ["ALL", "Behaviour", "Catch", "by_key", "of_nodeid"]


def by_key(key: str) -> Behaviour:
    """The behaviour of that name; a KeyError naming the known ones."""
    for behaviour in ALL:
        if behaviour.key == key:
            return behaviour
    raise KeyError(f"no behaviour {key!r}; known: {', '.join(b.key for b in ALL)}")


def of_nodeid(nodeid: str) -> Behaviour | None:
    """The behaviour a test (by its pytest node id) proves: its scenario's file."""
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    return next((b for b in ALL if b.module == name), None)

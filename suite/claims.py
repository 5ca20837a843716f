"""Which failure is the behaviour's own: a scenario's claim, told apart from its preconditions.

A scenario fails for one of three reasons, and only the first proves anything about the behaviour:

- **behaviour**: the scenario's own assertion about what the cluster admitted and did (an answer
  that failed, a restart that did not come, an object the cluster rewrote). Scenarios wrap these
  checks in `with claims.behaviour():`; an assertion or a wait that fails inside it is raised as
  `ClaimFailed`, whose message is the claim's own sentence.
- **precondition**: anything else raised by the test body (the prober never came up, the metrics
  API is missing, the recorder could not list the namespace): the scenario could not even look.
- **setup**: a fixture failed (the namespace, the cluster, the images).

The plugin records the kind and the exception's message (never a traceback or source text) for
every failed test (`failure` in report.json); the fault matrix counts a fault as caught only
when the kind is `behaviour` and that message names the broken part.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from suite.traffic import ProbeError
from suite.waiting import WaitFailed

BEHAVIOUR = "behaviour"
PRECONDITION = "precondition"
SETUP = "setup"
KINDS = (BEHAVIOUR, PRECONDITION, SETUP)
#: Where pytest's assertion rewriting appends its explanation (`assert not [...]`) to a message.
_EXPLANATION = "\nassert "
MESSAGE_LIMIT = 2000


class ClaimFailed(AssertionError):
    """The behaviour's own assertion failed: the cluster did not do what the scenario claims."""


@contextlib.contextmanager
def behaviour() -> Iterator[None]:
    """Checks of the behaviour itself: an AssertionError, a failed wait or a failed probe run
    inside is the behaviour failing (`ClaimFailed`, same message). Other errors (the API server
    gone, a bug) pass unchanged: they are not the behaviour's doing."""
    try:
        yield
    except ClaimFailed:
        raise
    except (AssertionError, WaitFailed, ProbeError) as error:
        raise ClaimFailed(message_of(error)) from error


def message_of(error: BaseException) -> str:
    """An exception's own message: its text without pytest's rewritten-assert explanation."""
    text = str(error)
    return text.split(_EXPLANATION, 1)[0].strip()[:MESSAGE_LIMIT]


@dataclass(frozen=True)
class Failure:
    """Why a test failed: the kind (above) and the exception's own message."""

    kind: str
    message: str
    exception: str

    def to_dict(self) -> dict[str, str]:
        """For report.json (`failure`)."""
        return {"kind": self.kind, "message": self.message, "exception": self.exception}

    @classmethod
    def from_dict(cls, data: Any) -> Failure | None:
        """Back from report.json; None for anything that is not a failure record."""
        if not isinstance(data, dict) or data.get("kind") not in KINDS:
            return None
        return cls(str(data["kind"]), str(data.get("message") or ""), str(data.get("exception")))


def classify(error: BaseException, when: str) -> Failure:
    """The failure a test report stands for: `when` is pytest's phase (setup, call, teardown)."""
    if isinstance(error, ClaimFailed):
        kind = BEHAVIOUR
    elif when == "call":
        kind = PRECONDITION
    else:
        kind = SETUP
    return Failure(kind, message_of(error), type(error).__name__)

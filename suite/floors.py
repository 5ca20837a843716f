"""Physical floors: the least time a scenario can take on a cluster, whatever the suite does.

A floor is a sum of named waits that no test code can shorten: probe periods, the metrics
resolution, the HPA's sync, a stabilization window, a termination grace, pod start. Each scenario
states its floor at the top of its module (built from its own constants and the cluster's real
settings, `suite.timing`) and records it in its figures under `floor`; the report shows the
measured time as a multiple of it, so a slow scenario is visible as "3.2x its floor", not only as
"took 96 s".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The key a scenario's floor is recorded under in its figures.
FIGURE_KEY = "floor"
#: The target of issue 13: each scenario within this multiple of its floor, plus pod start.
TARGET_MULTIPLE = 1.5


@dataclass(frozen=True)
class Floor:
    """Named waits, in seconds, in the order they happen."""

    terms: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, *terms: tuple[str, float]) -> Floor:
        """A floor from (what, seconds) pairs; a term must not be negative."""
        for what, seconds in terms:
            if seconds < 0:
                raise ValueError(f"floor term {what!r} is negative ({seconds})")
        return cls(tuple((what, float(seconds)) for what, seconds in terms))

    @property
    def total_s(self) -> float:
        """The floor: the sum of its terms."""
        return round(sum(seconds for _, seconds in self.terms), 3)

    def describe(self) -> str:
        """'41 s = first CPU reading 10 s + ...'."""
        parts = " + ".join(f"{what} {_s(seconds)}" for what, seconds in self.terms)
        return f"{_s(self.total_s)} = {parts}" if parts else "0 s"

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as recorded in a test's figures."""
        return {
            "total_s": self.total_s,
            "terms": [{"what": what, "s": seconds} for what, seconds in self.terms],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Floor:
        """Inverse of to_dict."""
        return cls.of(*((str(t["what"]), float(t["s"])) for t in data.get("terms") or []))


def multiple(measured_s: float, floor: Floor) -> float | None:
    """The measured time as a multiple of the floor (None for an empty floor)."""
    if floor.total_s <= 0:
        return None
    return round(measured_s / floor.total_s, 2)


def floor_of(figures: Mapping[str, Any]) -> Floor | None:
    """The floor a test recorded in its figures, if any (malformed: None)."""
    data = figures.get(FIGURE_KEY)
    if not isinstance(data, Mapping):
        return None
    try:
        return Floor.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def _s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"

"""What the tools read from a pytest run they started: the line a failure is known by, and the
figures that have a spread."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CHAIN_MARKERS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)


def failure_line(message: str) -> str:
    """The line a text is known by when there is no structured failure (a subprocess's output, a
    traceback for the soak): the first `E   ...` lines of a traceback (the exception and its
    message; of the last exception of a chain), else the first non-empty line."""
    # With chained exceptions the traceback shows the cause first: the last one raised counts.
    for marker in CHAIN_MARKERS:
        message = message.rsplit(marker, 1)[-1]
    lines = [line.rstrip() for line in message.splitlines()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    if errors:
        return " ".join(errors[:3])[:600]
    return next((line.strip() for line in lines if line.strip()), "")[:600]


FIGURE_NAME = re.compile(r"^[a-z]+(_[a-z0-9]+)+$")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def scalar_figures(figures: Mapping[str, Any] | None) -> dict[str, float]:
    """The figures that have a spread: plain numbers, and the numbers of a nested map that are
    named like figures (`floor.total_s`). Per-pod maps, strings, lists and booleans are left
    out."""
    found: dict[str, float] = {}
    for key, value in (figures or {}).items():
        if _is_number(value):
            found[key] = float(value)
        elif isinstance(value, Mapping):
            for inner, number in value.items():
                if _is_number(number) and FIGURE_NAME.match(str(inner)):
                    found[f"{key}.{inner}"] = float(number)
    return found

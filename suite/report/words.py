"""How the report writes a number: the small helpers the page and every behaviour's view share."""

from __future__ import annotations

from typing import Any

from suite.report.svg import fmt_number


def secs(value: Any, digits: int = 1) -> str:
    """Seconds, without a needless `.0`."""
    number = float(value)
    text = f"{number:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def num(value: Any) -> str:
    """A count, with thousands separated."""
    return fmt_number(float(value))


def bound(value: Any) -> float | None:
    """A figure that is a number (not a bool), as a float; else None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

"""Out of memory and the restart back-off in the report: its headline, its chart and its
figures' words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from suite.report.data import Mark, Record


def headline(f: Mapping[str, Any], recording: Record | None = None) -> str | None:
    """The OOM kills, the restart delays against the back-off, the requests."""
    del recording
    if "restart_delays_s" not in f:
        return None
    return str(f["restart_delays_s"])


def chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> Markup | None:
    """The container's state over time and the requests through the Service by pod."""
    del test, marks, end, prefix
    return None


FIGURE_WORDS: dict[str, str] = {}

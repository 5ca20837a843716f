"""The pytest-html bridge: with pytest-html installed and `--html` given, each e2e test's row
carries what report.html shows of it (headline, figures, chart, timeline), drawn by the same code.

report.html stays the demo; this only puts the evidence where a pytest-html user looks for it.
Nothing here imports pytest-html: the plugin hands its `extras.html` in.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from suite import behaviours
from suite.report import environment, views

_TEMPLATE = "htmlbridge.html.j2"


def behaviour_of(nodeid: str) -> str | None:
    """The behaviour key of a scenario test (None for other tests)."""
    behaviour = behaviours.of_nodeid(nodeid)
    return behaviour.key if behaviour else None


def fragment(record: Mapping[str, Any], outcome: str) -> str | None:
    """HTML for the test's row: its figures, chart and timeline; None when it recorded none."""
    nodeid = str(record.get("nodeid", ""))
    test = dict(record, outcome=outcome, evidence=[])
    if not (test.get("figures") or test.get("recording") or test.get("probes")):
        return None
    # SVG ids must differ between the rows of one page: number them by the test's id.
    index = zlib.crc32(nodeid.encode())
    view = views.view_of_test(test, behaviour_of(nodeid), index)
    return environment().get_template(_TEMPLATE).render(view=view)

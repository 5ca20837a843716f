"""What a behaviour declares about itself, once: its name, its words, its scenario, how the report
shows it, and the faults that must break it.

Each behaviour is a folder of `suite/behaviours/` holding its scenario (`test_<folder>.py`), its
decision functions (`proofs.py`, unit-tested in `test_proofs.py`), its report view (`view.py`)
and, in `__init__.py`, one `Behaviour(...)`: the registry (`suite.behaviours.ALL`) lists them, and
the report, the fault matrix, soak, side by side, the browser test, `.ci/run` and the README
check read it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from suite.report.data import Mark, Record

#: Where the behaviour folders are, from the repository's root.
ROOT = "suite/behaviours"

#: A headline: the figures a test recorded (and its recording) in one line; None when the test
#: is not the kind this headline is about.
Headline = Callable[[Mapping[str, Any], Record | None], str | None]
#: The behaviour's chart of one test: (the test in report.json, its marks, the chart's end on the
#: recording's clock, an id prefix) -> inline SVG, or None when the test recorded too little.
Chart = Callable[[Mapping[str, Any], Sequence[Mark], float, str], Markup | None]
#: Per-pod charts under the behaviour's chart: (test, end, id prefix) -> [(chart, caption)].
MoreCharts = Callable[[Mapping[str, Any], float, str], list[tuple[Markup, str]]]


def no_chart(test: Mapping[str, Any], marks: Sequence[Mark], end: float, prefix: str) -> None:
    """For a behaviour without a chart of its own."""
    del test, marks, end, prefix


def no_more_charts(test: Mapping[str, Any], end: float, prefix: str) -> list[tuple[Markup, str]]:
    """For a behaviour without per-pod charts."""
    del test, end, prefix
    return []


@dataclass(frozen=True)
class Catch:
    """A fault (`python -m localcluster fault list`, or `kind-fault` on the 3-node kind cluster)
    that must break the behaviour, and the words (a regular expression, case-insensitive; the
    parts' words are in `suite.parts`) its own assertion's message must use for the broken part."""

    fault: str
    names: str
    #: "local" (`localcluster fault`) or "kind" (`localcluster kind-fault`: one worker broken).
    cluster: str = "local"


@dataclass(frozen=True)
class Behaviour:
    """One behaviour, declared once in its folder's `__init__.py`."""

    #: Its one name, as the report, the fault matrix and the README table spell it.
    key: str
    title: str
    #: What it is, in two or three sentences for the report's reader.
    what: str
    chart_caption: str
    #: The test the fault matrix, soak's pairs and side by side run (a function of its scenario).
    matrix_test: str
    #: Headlines in the order its tests' story is told (the report ranks the tests by them).
    headlines: tuple[Headline, ...]
    chart: Chart = no_chart
    more_charts: MoreCharts = no_more_charts
    #: Its figures' words on the page (a figure without one is shown by its key).
    figure_words: Mapping[str, str] = field(default_factory=dict)
    #: The faults that must break it, each caught by its own assertion.
    catches: tuple[Catch, ...] = ()
    #: Healthy variants of the cluster (`python -m localcluster variant list`) it must pass on.
    variants: tuple[str, ...] = ()
    #: Run in CI's existing-cluster step (the nodes pull the images from a registry).
    on_registry_path: bool = False
    #: The --cluster choices it runs on (its scenario's `only_on` marker says the same); empty:
    #: every one. On the others it is deselected, and the report says why instead of "missing".
    clusters: tuple[str, ...] = ()

    def runs_on(self, cluster: str) -> bool:
        """Whether its scenario is selected on --cluster=`cluster`."""
        return not self.clusters or cluster in self.clusters

    @property
    def package(self) -> str:
        """Its folder under suite/behaviours/: the key with underscores."""
        return self.key.replace("-", "_")

    @property
    def module(self) -> str:
        """Its scenario's file name."""
        return f"test_{self.package}.py"

    @property
    def path(self) -> str:
        """Its scenario's path from the repository's root."""
        return f"{ROOT}/{self.package}/{self.module}"

    @property
    def matrix_nodeid(self) -> str:
        """The node id of the test the fault matrix runs."""
        return f"{self.path}::{self.matrix_test}"

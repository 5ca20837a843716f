"""Rendering helpers for the report's tests (test_report.py and each behaviour's test_view.py):
a page from a document, one behaviour's section of it, and the recorded samples."""

import json
import pathlib

from suite import report

#: A rolling update and an infected pod from real runs, trimmed to figures, pod changes, marks
#: and the traffic's window.
SAMPLE = pathlib.Path(__file__).parent / "data" / "routing_lags.json"


def render(document):
    """The page, drawn through JSON as it is drawn from report.json."""
    return report.render_html(json.loads(json.dumps(document, default=str)))


def section(text, key):
    """One behaviour's section of a page."""
    start = text.index(f'data-behaviour="{key}"')
    end = text.find("<section", start)
    return text[start : end if end > 0 else len(text)]


def sample():
    """The recorded samples (SAMPLE) as a report.json document."""
    return json.loads(SAMPLE.read_text())


def test_of(document, needle):
    """The first test of a document whose node id contains `needle`."""
    return next(test for test in document["tests"] if needle in test["nodeid"])

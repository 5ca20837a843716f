"""The pytest-html bridge: with `--html`, each e2e test's row shows its figures, chart and
timeline (through an inner pytest run on a faked cluster; no cluster anywhere)."""

import html
import json
import re

import pytest

from suite.report import htmlbridge
from suite.tests.data import runs
from suite.tests.test_fixtures import CONFTEST
from suite.tests.test_plugin import PLUGIN

TESTS = """
def test_service_spreads_new_connections_over_every_replica(namespace, recorder, figures):
    figures.update(requests=400, answered=400, pods=4)
    recorder.mark("traffic")

def test_plain():
    pass
"""


@pytest.fixture
def fake_cluster(pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("KUBE_ALIVE_RUN_ID", "abc123")
    pytester.makeconftest(CONFTEST)
    pytester.mkpydir("scenarios")
    (pytester.path / "scenarios" / "test_load_balancing.py").write_text(TESTS)
    return pytester


def rows_of(page: str) -> list[dict]:
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, "pytest-html changed how it stores its results"
    return [
        row for rows in json.loads(html.unescape(blob.group(1)))["tests"].values() for row in rows
    ]


def test_with_html_each_e2e_row_carries_its_figures_and_timeline(fake_cluster):
    result = fake_cluster.runpytest(
        *PLUGIN,
        # By entry point name: loaded even with PYTEST_DISABLE_PLUGIN_AUTOLOAD, once otherwise.
        "-p",
        "metadata",
        "-p",
        "html",
        "--cluster=existing",
        "--html=out.html",
    )
    result.assert_outcomes(passed=2)
    rows = rows_of((fake_cluster.path / "out.html").read_text())
    extras = {
        row["testId"].split("::")[1]: [e for e in row["extras"] if e["format_type"] == "html"]
        for row in rows
    }
    (bridge,) = extras["test_service_spreads_new_connections_over_every_replica"]
    content = bridge["content"]
    assert "<svg" in content  # the timeline of the recorded pods
    assert "Pods of namespace ka-abc123-" in content
    assert ">400</td>" in content  # the figures
    assert extras["test_plain"] == []
    # The standalone report is still written, and is still the demo.
    assert (fake_cluster.path / "reports" / "report.html").is_file()


def test_without_html_no_extras_are_made(fake_cluster, monkeypatch):
    calls = []
    monkeypatch.setattr(htmlbridge, "fragment", lambda *a: calls.append(a))
    result = fake_cluster.runpytest(*PLUGIN, "--cluster=existing")
    result.assert_outcomes(passed=2)
    assert calls == []


def test_the_fragment_draws_a_recorded_scenario_with_the_reports_own_code():
    document = runs.full_run()
    test = next(t for t in document["tests"] if t["nodeid"] == runs.LB)
    fragment = htmlbridge.fragment(test, "passed")
    assert fragment is not None
    assert fragment.count("<svg") == 2  # the chart and the timeline
    assert "4/4 replicas answered 400 requests, spread p = 0.29" in fragment
    assert "p-value (uniform spread)</th><td>0.2909" in fragment
    assert htmlbridge.fragment({"nodeid": "x::y"}, "passed") is None

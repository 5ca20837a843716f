"""Namespace, recorder and evidence fixtures with a faked cluster, through inner pytest runs."""

import json

import pytest

from suite import evidence

CONFTEST = """
import json
import types

import pytest

from suite.tests.fakes import Collection, FakeKube, pod

KUBE = FakeKube()
POD = pod("web-1", restarts=1, last=("Error", 1))
EVENT = {"metadata": {"name": "e1", "uid": "u1"}, "type": "Warning", "reason": "BackOff",
         "message": "Back-off restarting failed container", "count": 2,
         "lastTimestamp": "2025-01-01T00:00:05Z",
         "involvedObject": {"kind": "Pod", "name": "web-1"}}
for path, items in [
    ("/api/v1/namespaces/[^/]+/pods", [POD]),
    ("/api/v1/namespaces/[^/]+/events", [EVENT]),
    ("/apis/apps/v1/namespaces/[^/]+/replicasets", []),
    ("/apis/apps/v1/namespaces/[^/]+/deployments", []),
    ("/apis/autoscaling/v2/namespaces/[^/]+/horizontalpodautoscalers", []),
    ("/api/v1/namespaces/[^/]+/services", []),
    ("/apis/discovery.k8s.io/v1/namespaces/[^/]+/endpointslices", []),
    ("/api/v1/namespaces", []),
    ("/api/v1/namespaces/[^/]+/serviceaccounts", [{"metadata": {"name": "default"}}]),
]:
    KUBE.on("GET", path, Collection(items).handler)
KUBE.on("POST", "/api/v1/namespaces", lambda m, p, q, b: b)
KUBE.on("DELETE", "/api/v1/namespaces/[^/]+", {})
KUBE.on("GET", "/api/v1/namespaces/[^/]+/pods/web-1/log",
        lambda m, p, q, b: "previous log line" if q.get("previous") else "current log line")


@pytest.fixture(scope="session")
def cluster():
    return types.SimpleNamespace(kube=KUBE, image_hint="", provider=None)


def pytest_sessionfinish(session):
    calls = [[m, p, q] for m, p, q, b in KUBE.calls if m != "GET" or "log" in p]
    (session.config.rootpath / "calls.json").write_text(json.dumps(calls))
"""

TESTS = """
def test_fails_with_evidence(namespace, recorder, figures):
    figures["answered"] = 399
    recorder.mark("infect")
    assert False, "the pod never restarted"

def test_passes(namespace, recorder):
    pass
"""


@pytest.fixture
def run(pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("KUBE_ALIVE_RUN_ID", "abc123")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_scenario=TESTS)
    result = pytester.runpytest(
        "-p", "suite.plugin", "-p", "no:cacheprovider", "--cluster=existing"
    )
    calls = json.loads((pytester.path / "calls.json").read_text())
    report = json.loads((pytester.path / "reports" / "report.json").read_text())
    return result, calls, report, pytester.path / "reports"


def test_each_test_gets_a_labelled_namespace_that_is_deleted_even_on_failure(run):
    result, calls, _, _ = run
    result.assert_outcomes(passed=1, failed=1)
    created = [q for m, p, q in calls if m == "POST"]
    assert len(created) == 2
    deleted = sorted(p.rsplit("/", 1)[1] for m, p, q in calls if m == "DELETE")
    assert deleted == ["ka-abc123-fails-with-evidence", "ka-abc123-passes"]


def test_a_failure_carries_events_logs_and_the_timeline(run):
    result, calls, _, _ = run
    out = result.stdout.str()
    assert "kube-alive: events in ka-abc123-fails-with-evidence" in out
    assert "Warning BackOff pod/web-1 (x2): Back-off restarting failed container" in out
    assert "kube-alive: logs pod/web-1 -c app --previous" in out
    assert "previous log line" in out
    assert "MARK   infect" in out
    logs = [q for m, p, q in calls if p.endswith("/log")]
    assert {
        "container": "app",
        "tailLines": evidence.TAIL_LINES,
        "timestamps": True,
        "previous": True,
    } in logs


def test_report_json_holds_outcome_figures_recording_and_evidence(run):
    _, _, report, _ = run
    tests = {t["nodeid"].split("::")[1]: t for t in report["tests"]}
    failed = tests["test_fails_with_evidence"]
    assert failed["outcome"] == "failed"
    assert "the pod never restarted" in failed["message"]
    assert failed["figures"] == {"answered": 399}
    assert failed["namespace"] == "ka-abc123-fails-with-evidence"
    assert failed["recording"]["marks"][0]["label"] == "infect"
    assert failed["recording"]["pods"][0]["name"] == "web-1"
    assert any(title.startswith("kube-alive: logs") for title, _ in failed["evidence"])
    assert tests["test_passes"]["outcome"] == "passed"
    assert tests["test_passes"]["evidence"] == []
    assert report["run_id"] == "abc123"


def test_a_failure_keeps_its_evidence_folder_linked_from_the_report_a_pass_none(run):
    _, _, report, reports = run
    tests = {t["nodeid"].split("::")[1]: t for t in report["tests"]}
    folder = tests["test_fails_with_evidence"]["evidence_dir"]
    assert folder.startswith("evidence/fails-with-evidence-")
    kept = sorted(str(p.relative_to(reports / folder)) for p in (reports / folder).rglob("*"))
    assert kept == [
        "events.txt",
        "failure.txt",
        "index.json",
        "logs",
        "logs/web-1_app.log",
        "logs/web-1_app.previous.log",
        "objects.yaml",
        "timeline.txt",
    ]
    assert "the pod never restarted" in (reports / folder / "failure.txt").read_text()
    assert evidence.missing(reports, folder) is None
    assert tests["test_passes"]["evidence_dir"] is None
    assert [p.name for p in (reports / "evidence").iterdir()] == [folder.split("/")[1]]
    assert f'href="{folder}/"' in (reports / "report.html").read_text()
    # The fake cluster has no logs of its own to export (only kind has).
    assert report["cluster_logs"] is None


# The real `cluster` fixture, with the provider and the connection faked: a run with failures
# asks the provider for the cluster's own logs once, before it tears the cluster down.
CLUSTER_CONFTEST = (
    CONFTEST.split('@pytest.fixture(scope="session")')[0]
    + """
import suite.fixtures

CALLS = []


class Provider:
    name = "existing"

    def export_logs(self, directory):
        CALLS.append("export")
        (directory / "node.log").write_text("kubelet said why")
        return "fake: exported"

    def teardown(self):
        CALLS.append("teardown")


# The inner run shares the outer one's process (pytester): what is replaced is put back.
REAL = (suite.fixtures.providers.create, suite.fixtures.bring_up)


def pytest_configure(config):
    suite.fixtures.providers.create = lambda *args: Provider()
    suite.fixtures.bring_up = lambda provider, state, log: types.SimpleNamespace(
        kube=KUBE, provider=provider, image_hint="", describe=lambda: "a fake cluster"
    )


def pytest_unconfigure(config):
    suite.fixtures.providers.create, suite.fixtures.bring_up = REAL


def pytest_sessionfinish(session):
    (session.config.rootpath / "calls.json").write_text(json.dumps(CALLS))
"""
)

TWO_FAILURES = """
def test_one_fails(namespace):
    assert False, "one"

def test_another_fails(namespace):
    assert False, "another"
"""


def test_a_failing_run_keeps_the_clusters_own_logs_once_before_teardown(pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("KUBE_ALIVE_RUN_ID", "abc124")
    pytester.makeconftest(CLUSTER_CONFTEST)
    pytester.makepyfile(test_scenario=TWO_FAILURES)
    result = pytester.runpytest(
        "-p", "suite.plugin", "-p", "no:cacheprovider", "--cluster=existing"
    )
    result.assert_outcomes(failed=2)
    assert json.loads((pytester.path / "calls.json").read_text()) == ["export", "teardown"]
    reports = pytester.path / "reports"
    assert (reports / "evidence" / "kind-logs" / "node.log").read_text() == "kubelet said why"
    report = json.loads((reports / "report.json").read_text())
    assert report["cluster_logs"] == "evidence/kind-logs"
    assert all(test["evidence_dir"] for test in report["tests"])
    assert "fake: exported into" in result.stdout.str()

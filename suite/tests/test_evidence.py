"""A failed test's evidence folder, from a faked cluster: what it holds, its bounds, and that
collecting it never raises."""

import json
import os

import yaml

from suite import evidence
from suite.kube import KubeError
from suite.providers import kind
from suite.tests.fakes import Collection, FakeKube, pod

NS = "ka-abc123-fails"
NODEID = "suite/behaviours/x/test_x.py::test_the_pod_restarts[a]"
EVENT = {
    "metadata": {"name": "e1", "managedFields": [{"manager": "kubelet"}]},
    "type": "Warning",
    "reason": "BackOff",
    "message": "Back-off restarting failed container",
    "lastTimestamp": "2025-01-01T00:00:05Z",
    "involvedObject": {"kind": "Pod", "name": "web-1"},
}


def cluster(log=lambda m, p, q, b: "previous" if q.get("previous") else "current") -> FakeKube:
    kube = FakeKube()
    web = pod("web-1", restarts=1, last=("Error", 1))
    web["metadata"]["managedFields"] = [{"manager": "kubelet", "fieldsV1": {}}]
    answers = {
        "/api/v1/namespaces/[^/]+/pods": [web, pod("web-2")],
        "/api/v1/namespaces/[^/]+/events": [EVENT],
        "/apis/apps/v1/namespaces/[^/]+/deployments": [{"metadata": {"name": "web"}}],
        "/apis/apps/v1/namespaces/[^/]+/replicasets": [],
        "/api/v1/namespaces/[^/]+/services": [{"metadata": {"name": "web"}}],
        "/apis/discovery.k8s.io/v1/namespaces/[^/]+/endpointslices": [],
        "/apis/autoscaling/v2/namespaces/[^/]+/horizontalpodautoscalers": [],
    }
    for path, items in answers.items():
        kube.on("GET", path, Collection(items).handler)
    kube.on("GET", "/api/v1/namespaces/[^/]+/pods/[^/]+/log", log)
    return kube


def test_the_folder_holds_events_live_objects_and_each_containers_logs(tmp_path):
    found = evidence.gather(cluster(), NS)
    relative = evidence.write_folder(tmp_path, NODEID, found, None, "E  AssertionError: no")
    assert relative == f"evidence/the-pod-restarts-a-{evidence.naming.short_hash(NODEID)}"
    folder = tmp_path / relative
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == [
        "events.txt",
        "failure.txt",
        "index.json",
        "logs/web-1_app.log",
        "logs/web-1_app.previous.log",
        "logs/web-2_app.log",
        "objects.yaml",
    ]
    assert (
        "Warning BackOff pod/web-1: Back-off restarting failed container"
        in (folder / "events.txt").read_text()
    )
    assert (folder / "logs/web-1_app.previous.log").read_text() == "previous"
    documents = list(yaml.safe_load_all((folder / "objects.yaml").read_text()))
    kinds = [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in documents]
    assert kinds == [
        ("apps/v1", "Deployment", "web"),
        ("v1", "Pod", "web-1"),
        ("v1", "Pod", "web-2"),
        ("v1", "Service", "web"),
    ]
    assert all("managedFields" not in d["metadata"] for d in documents)
    index = json.loads((folder / "index.json").read_text())
    assert (index["nodeid"], index["namespace"], index["errors"]) == (NODEID, NS, [])
    assert evidence.missing(tmp_path, relative) is None
    # Nothing half-built is left beside it.
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [folder.name]


def test_logs_are_read_from_their_end_and_each_file_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "MAX_FILE_CHARS", 1000)
    kube = cluster(log=lambda m, p, q, b: "x" * 5000 + "the crash")
    found = evidence.gather(kube, NS)
    logs = [q for m, p, q, b in kube.calls if p.endswith("/log")]
    assert all(q["tailLines"] == evidence.TAIL_LINES for q in logs)
    text = tmp_path / evidence.write_folder(tmp_path, NODEID, found) / "logs/web-2_app.log"
    content = text.read_text()
    assert content.endswith("the crash")
    assert "characters left out" in content
    assert len(content) < 1100


def test_what_cannot_be_read_is_noted_in_errors_txt_never_raised(tmp_path):
    def broken_log(method, path, query, body):
        if "web-2" in path:
            raise RuntimeError("connection reset")
        return "fine"

    kube = cluster(log=broken_log)
    kube.on("GET", "/api/v1/namespaces/[^/]+/events", KubeError(403, "Forbidden", "{}"))
    found = evidence.gather(kube, NS)
    relative = evidence.write_folder(tmp_path, NODEID, found)
    folder = tmp_path / relative
    errors = (folder / "errors.txt").read_text()
    assert "events in ka-abc123-fails: could not read: 403" in errors
    assert "logs pod/web-2 -c app: could not read: RuntimeError: connection reset" in errors
    assert "could not be read" in (folder / "events.txt").read_text()
    assert not (folder / "logs/web-2_app.log").exists()
    # Noted, so the folder is complete for what could be read.
    assert evidence.missing(tmp_path, relative) is None
    titles = dict(evidence.sections(found))
    assert titles["kube-alive: logs pod/web-2 -c app"].startswith("could not read logs")


def test_a_folder_that_cannot_be_written_is_logged_not_raised(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the report directory should be")
    said = []
    found = evidence.gather(cluster(), NS)
    assert evidence.keep(blocker, NODEID, found, None, "", said.append) is None
    assert said
    assert "could not keep the evidence" in said[0]


def test_missing_names_what_a_folder_lacks(tmp_path):
    relative = evidence.write_folder(tmp_path, NODEID, evidence.gather(cluster(), NS))
    assert evidence.missing(tmp_path, None) == "report.json names no evidence folder for it"
    assert "is not under evidence/" in evidence.missing(tmp_path, "../../etc")
    assert "no readable index.json" in evidence.missing(tmp_path, "evidence/gone")
    (tmp_path / relative / "logs/web-1_app.log").unlink()
    problem = evidence.missing(tmp_path, relative)
    assert problem.endswith("logs/web-1_app.log missing")
    assert "\n" not in problem


def test_only_folders_under_evidence_are_linked():
    assert evidence.is_evidence_path("evidence/rolling-update-1a4250")
    for bad in ("javascript:alert(1)", "/etc", "evidence/../x", "evidence/", None, 3):
        assert not evidence.is_evidence_path(bad)


def test_the_cluster_logs_are_exported_once_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "MAX_CLUSTER_LOG_BYTES", 100)
    shared = tmp_path / "shared"
    shared.mkdir()
    assert evidence.claim_once(shared, "cluster-logs")
    assert not evidence.claim_once(shared, "cluster-logs")
    said = []

    def export(directory):
        (directory / "node").mkdir()
        (directory / "node" / "journal.log").write_bytes(b"a" * 3000 + b"the end")
        return "exported"

    folder = evidence.export_cluster_logs(export, tmp_path, said.append)
    assert folder == tmp_path / "evidence" / "kind-logs"
    assert os.path.getsize(folder / "node" / "journal.log") < 200
    text = (folder / "node" / "journal.log").read_text()
    assert text.endswith("the end")
    assert "bytes left out" in text
    assert said[0].startswith("exported into")
    assert "1 long files cut" in said[0]


def test_a_failed_export_is_written_down_not_raised(tmp_path):
    def export(directory):
        raise kind.ProviderError("kind export logs took longer than 300s")

    said = []
    folder = evidence.export_cluster_logs(export, tmp_path, said.append)
    assert "took longer than 300s" in (folder / "errors.txt").read_text()
    assert "exporting the cluster's logs failed" in said[0]


def test_what_a_failed_export_copied_is_kept_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "MAX_CLUSTER_LOG_BYTES", 100)

    def export(directory):
        (directory / "node").mkdir()
        (directory / "node" / "journal.log").write_bytes(b"a" * 3000 + b"the end")
        raise kind.ProviderError("kind export logs failed: crictl images: exit status 126")

    folder = evidence.export_cluster_logs(export, tmp_path, [].append)
    assert "crictl images" in (folder / "errors.txt").read_text()
    assert os.path.getsize(folder / "node" / "journal.log") < 200
    assert (folder / "node" / "journal.log").read_text().endswith("the end")


def test_a_provider_without_cluster_logs_leaves_no_folder(tmp_path):
    assert evidence.export_cluster_logs(lambda d: None, tmp_path, print) is None
    assert not (tmp_path / "evidence" / "kind-logs").exists()


def test_kind_exports_its_logs_with_kind_export_logs(tmp_path):
    assert kind.export_logs_command(tmp_path) == [
        "kind",
        "export",
        "logs",
        str(tmp_path),
        "--name",
        "kube-alive",
    ]


def test_clear_previous_removes_the_last_runs_folders(tmp_path):
    evidence.write_folder(tmp_path, NODEID, evidence.gather(cluster(), NS))
    evidence.clear_previous(tmp_path)
    assert not (tmp_path / "evidence").exists()

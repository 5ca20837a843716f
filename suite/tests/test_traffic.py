import json
import re
import threading

import pytest

from suite.kube import KubeError
from suite.tests.fakes import FakeKube, FakeStream
from suite.traffic import (
    Answer,
    ProbeError,
    Prober,
    ProbeRequest,
    ProbeResult,
    parse_line,
    parse_stream,
    prober_problem,
)
from suite.waiting import Done, Pending

PATH = "/api/v1/namespaces/ns/services/prober:http/proxy/probe"


def record(seq, *, ok=True, pod="getip-a", version="v1", error=None, start=100.0):
    return json.dumps(
        {
            "seq": seq,
            "start": start + seq,
            "end": start + seq + 0.01,
            "status": 200 if ok else None,
            "ok": ok,
            "pod": pod if ok else None,
            "version": version if ok else None,
            "error": error,
        }
    )


SUMMARY = json.dumps(
    {"summary": {"sent": 3, "ok": 2, "failed": 1, "by_pod": {}, "by_version": {}, "duration_s": 1}}
)


def test_parse_line_records_summary_and_blanks():
    answer = parse_line(record(0), chunk=2, received=5.0)
    assert isinstance(answer, Answer)
    assert (answer.seq, answer.pod, answer.version, answer.chunk, answer.received) == (
        0,
        "getip-a",
        "v1",
        2,
        5.0,
    )
    assert answer.duration == pytest.approx(0.01)
    assert parse_line(SUMMARY)["sent"] == 3
    assert parse_line("   ") is None


def test_parse_line_rejects_garbage():
    with pytest.raises(ProbeError, match="not JSON"):
        parse_line("<html>502</html>")
    with pytest.raises(ProbeError, match="malformed probe record"):
        parse_line(json.dumps({"seq": 1}))


def test_parse_stream_collects_answers_and_summary():
    seen = []
    answers, summary = parse_stream(
        [record(0), record(1, pod="getip-b"), record(2, ok=False, error="timeout"), "", SUMMARY],
        on_answer=seen.append,
    )
    assert len(answers) == 3
    assert seen == answers
    assert summary["failed"] == 1


def test_prober_run_posts_the_request_and_summarises():
    kube = FakeKube().on(
        "POST",
        PATH,
        [
            record(0),
            record(1, pod="getip-b", version="v2"),
            record(2, ok=False, error="ConnectionRefusedError: refused"),
            SUMMARY,
        ],
    )
    results = []
    prober = Prober(kube, "ns", on_result=results.append)
    result = prober.run(ProbeRequest(url="http://getip/", count=3, concurrency=2), label="lb")
    assert kube.calls[0][3] == {
        "url": "http://getip/",
        "count": 3,
        "concurrency": 2,
        "duration_s": 60.0,
        "interval_ms": 0,
        "timeout_s": 5.0,
        "via": "dns",
        "run": kube.calls[0][3]["run"],
    }
    assert re.fullmatch(r"[0-9a-f]{16}-0", kube.calls[0][3]["run"])
    assert result.complete
    assert result.by_pod() == {"getip-a": 1, "getip-b": 1}
    assert result.by_version() == {"v1": 1, "v2": 1}
    assert result.describe() == "3 sent, 2 answered, 1 failed (ConnectionRefusedError: refused x1)"
    assert results == [result]
    data = json.loads(json.dumps(result.to_dict()))
    assert data["label"] == "lb"
    assert data["answers"][0][:2] == [0, 0]


BROKE = KubeError(0, "stream broke: ProtocolError: Response ended prematurely")


def test_a_broken_stream_is_made_whole_from_the_probers_read_back():
    runs = []

    def post(method, path, query, body):
        runs.append(body["run"])
        return FakeStream([record(0), BROKE])

    def read_back(method, path, query, body):
        assert path.endswith(f"/proxy/runs/{runs[-1]}")
        return {
            "records": [json.loads(record(n)) for n in (1, 0, 2)],
            "summary": {"sent": 3, "ok": 3, "failed": 0, "read_back": True},
        }

    kube = FakeKube().on("POST", PATH, post).on("GET", PATH[: -len("probe")] + "runs/.*", read_back)
    seen = []
    prober = Prober(kube, "ns")
    result = ProbeResult(ProbeRequest(url="http://getip/"))
    prober._chunk(result.request, 0, result, seen.append)
    assert [a.seq for a in result.answers] == [0, 1, 2]
    assert sorted(a.seq for a in seen) == [0, 1, 2]  # each answer delivered once
    assert result.errors == []
    assert result.summaries == [{"sent": 3, "ok": 3, "failed": 0, "read_back": True}]
    assert result.read_back == [
        f"chunk 0: {BROKE}, after 1 answers; 2 more read back from the prober (run {runs[0]})"
    ]
    assert "1 broken stream(s), their answers read back" in result.describe()


def test_a_broken_stream_the_prober_cannot_account_for_is_an_error():
    kube = (
        FakeKube()
        .on("POST", PATH, lambda *a: FakeStream([record(0), BROKE]))
        .on(
            "GET",
            PATH[: -len("probe")] + "runs/.*",
            KubeError(404, "Not Found", '{"reason": "no run kept"}'),
        )
    )
    result = Prober(kube, "ns").run(ProbeRequest(url="http://getip/"))
    assert not result.complete
    assert [a.seq for a in result.answers] == [0]  # what did arrive is kept
    assert "stream broke" in result.errors[0]
    assert "reading the rest back from the prober failed too" in result.errors[0]
    assert "404" in result.errors[0]


def test_prober_run_without_summary_is_incomplete():
    kube = FakeKube().on("POST", PATH, [record(0)])
    result = Prober(kube, "ns").run(ProbeRequest(url="http://getip/"))
    assert not result.complete
    assert "without a summary after 1 answers" in result.errors[0]


def test_prober_run_raises_when_nothing_came_back():
    kube = FakeKube().on(
        "POST",
        PATH,
        KubeError(
            503,
            "Service Unavailable",
            '{"message": "no endpoints available for service \\"prober\\""}',
        ),
    )
    with pytest.raises(ProbeError, match="no endpoints available"):
        Prober(kube, "ns").run(ProbeRequest(url="http://getip/"))


def test_background_probe_runs_chunks_until_stopped():
    chunks = []

    def answer(method, path, query, body):
        chunks.append(body)
        base = 10 * len(chunks)
        return FakeStream([record(base), record(base + 1), SUMMARY])

    kube = FakeKube().on("POST", PATH, answer)
    results = []
    background = Prober(kube, "ns", on_result=results.append).background(
        ProbeRequest(url="http://incver/version", concurrency=2, interval_ms=20),
        chunk_s=5,
        total_s=60,
    )
    background.wait_for(
        lambda answers: Done() if len(answers) >= 4 else Pending(str(len(answers))),
        timeout_s=5,
        what="traffic",
        expected="4 answers",
    )
    result = background.stop(timeout_s=5)
    assert not background.running
    assert result.chunks >= 2
    assert len(result.answers) >= 4
    assert chunks[0]["duration_s"] == 5
    assert chunks[0]["count"] == 20_000
    assert chunks[0]["concurrency"] == 2
    assert results == [result]
    assert background.stopped_wall is not None


def test_background_probe_wait_fails_when_traffic_ended_first():
    kube = FakeKube().on("POST", PATH, lambda *a: FakeStream([record(0), SUMMARY]))
    background = Prober(kube, "ns").background(
        ProbeRequest(url="http://x/"), chunk_s=0.2, total_s=0.6
    )
    from suite.waiting import WaitFailed

    with pytest.raises(WaitFailed, match="traffic ended first"):
        background.wait_for(
            lambda answers: Pending("never enough"),
            timeout_s=10,
            what="traffic",
            expected="1000 answers",
        )
    background.stop(timeout_s=5)


def test_background_probe_waits_for_answers_started_after_a_moment():
    # Each chunk's answers start at 100, 101, ..., 104: three after 101.2 + 0.5 s of skew.
    kube = FakeKube().on(
        "POST", PATH, lambda *a: FakeStream([record(i) for i in range(5)] + [SUMMARY])
    )
    background = Prober(kube, "ns").background(
        ProbeRequest(url="http://x/"), chunk_s=0.2, total_s=0.6
    )
    background.wait_answered(3, after=101.2, skew_s=0.5, timeout_s=5, what="after the change")
    from suite.waiting import WaitFailed

    with pytest.raises(WaitFailed, match="traffic ended first"):
        background.wait_answered(1000, after=101.2, skew_s=0.5, timeout_s=5, what="later")
    background.stop(timeout_s=5)


def test_background_probe_stop_is_prompt_while_the_prober_errors():
    kube = FakeKube().on("POST", PATH, KubeError(503, "Service Unavailable"))
    background = Prober(kube, "ns").background(ProbeRequest(url="http://x/"), chunk_s=5, total_s=60)
    stopped = threading.Event()
    threading.Timer(0.2, lambda: (background.stop(timeout_s=5), stopped.set())).start()
    assert stopped.wait(5)
    assert background.result.errors


def prober_pod(name, uid, restarts=0, deleting=False):
    meta = {"name": name, "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {"containerStatuses": [{"name": "prober", "restartCount": restarts}]},
    }


def summary_from(prober):
    return json.dumps({"summary": {"sent": 1, "ok": 1, "prober": {"pod": prober, "version": "v1"}}})


def test_a_prober_pod_deleted_during_background_traffic_is_named_last_in_its_errors():
    pods = {"items": [prober_pod("prober-a", "u1")], "metadata": {}}
    chunks = []

    def answer(method, path, query, body):
        chunks.append(body)
        if len(chunks) == 2:
            # the prober pod went away mid-chunk: its stream ends without a summary, and the pod
            # that answers from then on is a new one
            pods["items"] = [prober_pod("prober-b", "u2")]
            return FakeStream([record(10)])
        return FakeStream(
            [record(len(chunks) * 10), summary_from(pods["items"][0]["metadata"]["name"])]
        )

    kube = (
        FakeKube()
        .on("POST", PATH, answer)
        .on("GET", "/api/v1/namespaces/ns/pods", lambda *a: json.loads(json.dumps(pods)))
    )
    background = Prober(kube, "ns").background(ProbeRequest(url="http://x/"), chunk_s=5, total_s=60)
    background.wait_for(
        lambda answers: Done() if len(chunks) >= 3 else Pending(f"{len(chunks)} chunks"),
        timeout_s=5,
        what="traffic",
        expected="3 chunks",
    )
    result = background.stop(timeout_s=5)
    selector = kube.calls[0][2]["labelSelector"]
    assert selector == "app.kubernetes.io/name=prober"
    assert "the stream ended without a summary" in result.errors[0]
    assert result.errors[-1] == result.prober_problem
    assert result.errors[-1].startswith(
        "the prober pod prober-a was deleted during traffic; chunks were answered by prober pods "
        "['prober-a', 'prober-b'] (now: prober-b): the traffic's gaps and failures from then on "
        "are the prober's"
    ), result.errors[-1]
    assert (
        "kubectl -n ns get events --field-selector involvedObject.name=prober-a"
        in (result.errors[-1])
    )
    assert result.to_dict()["prober_problem"] == result.prober_problem


def test_the_prober_pods_fate_in_words():
    before = {"p": {"uid": "1", "restarts": 0, "terminating": False}}
    same = prober_problem(before, before, {"p"}, namespace="ns")
    assert same is None
    restarted = {"p": {"uid": "1", "restarts": 1, "terminating": False}}
    text = prober_problem(before, restarted, {"p"}, namespace="ns")
    assert text is not None
    assert text.startswith("the prober pod p was restarted during traffic (restartCount 0 -> 1)")
    leaving = {"p": {"uid": "1", "restarts": 0, "terminating": True}}
    assert "p was being deleted" in (prober_problem(before, leaving, {"p"}, namespace="ns") or "")
    replaced = {"p": {"uid": "2", "restarts": 0, "terminating": False}}
    assert "p was replaced" in (prober_problem(before, replaced, {"p"}, namespace="ns") or "")
    # Pods that could not be listed prove nothing either way; two answering pods still do.
    assert prober_problem(None, None, {"p"}, namespace="ns") is None
    assert "prober pods ['p', 'q']" in (
        prober_problem(None, None, {"p", "q"}, namespace="ns") or ""
    )
    assert prober_problem(before, None, {"p"}, namespace="ns") is None


def test_wait_answered_counts_only_answers_after_the_time_and_the_skew():
    from suite.traffic import Answer, BackgroundProbe, ProbeRequest
    from suite.waiting import WaitFailed

    probe = BackgroundProbe.__new__(BackgroundProbe)
    probe.request = ProbeRequest(url="http://getip/")
    probe.changed = threading.Condition()
    probe._done = threading.Event()
    probe.prober = type("P", (), {"namespace": "ns"})()
    probe.result = type("R", (), {})()
    probe.result.answers = [
        Answer(i, start, start + 0.01, 200, True, "p", "v1", None)
        for i, start in enumerate([1, 5, 6])
    ]
    probe.wait_answered(2, after=4.0, what="later", timeout_s=0.1)
    with pytest.raises(WaitFailed, match="3 answered requests later"):
        probe.wait_answered(3, after=4.0, what="later", timeout_s=0.1)
    with pytest.raises(WaitFailed):
        probe.wait_answered(2, after=4.0, what="later", timeout_s=0.1, skew_s=1.5)
    # Without `after`, every answer counts (the warm-up before a scenario's first change).
    probe.wait_answered(3, what="before the change", timeout_s=0.1)
    with pytest.raises(WaitFailed, match="4 answered requests before the change"):
        probe.wait_answered(4, what="before the change", timeout_s=0.1)

"""report.html rendered from recorded-looking runs (suite/tests/data/runs.py), no cluster: its
structure, its headlines, escaping, size, and that it needs nothing from the network."""

import ast
import json
import pathlib
import re
from html.parser import HTMLParser

import pytest

from suite import behaviours, report
from suite.report import charts, data, svg, verdict, views
from suite.report.__main__ import main as render_main
from suite.session import TestOutcome
from suite.tests import pages
from suite.tests.data import runs

BEHAVIOURS = [behaviour.key for behaviour in behaviours.ALL]
HOSTILE = "<script>alert(1)</script>"
THIN = "\u202f"


_render = pages.render


@pytest.fixture(scope="module")
def full():
    return runs.full_run()


@pytest.fixture(scope="module")
def html(full):
    return _render(full)


@pytest.fixture(scope="module")
def failing_html():
    return _render(runs.full_run(failing_rollout=True, skip_autoscaling=True))


def test_the_page_names_the_workload_images_by_their_content_digest(html):
    assert "Workload images" in html
    assert "<code>0123456789ab</code>" in html
    assert "localhost/kube-alive/workloads:v2-0123456789ab" in html


def test_a_lane_shows_the_version_not_the_digest():
    assert data.tag_of("localhost/kube-alive/workloads:v2-0123456789ab") == "v2"
    assert data.tag_of("registry:5000/kube-alive/workloads:v1") == "v1"
    assert data.tag_of("workloads") == ""


class _Structure(HTMLParser):
    """Checks nesting and collects elements with their attributes."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.elements = []
        self.problems = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), [*self.stack]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), [*self.stack]))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-3:]}")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def find(self, tag, **attrs):
        return [
            (a, parents)
            for t, a, parents in self.elements
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def _parse(text):
    parser = _Structure()
    parser.feed(text)
    parser.close()
    return parser


_section = pages.section


# -- structure -------------------------------------------------------------------------------------


def test_page_is_well_formed_with_a_section_chart_and_timeline_per_behaviour(html):
    page = _parse(html)
    assert page.problems == []
    assert page.stack == []
    sections = page.find("section", **{"class": "behaviour o-passed"})
    assert [a["data-behaviour"] for a, _ in sections] == BEHAVIOURS
    for key in BEHAVIOURS:
        part = _section(html, key)
        assert part.count('class="chart"') >= 1, key
        assert part.count('class="timeline"') >= 1, key
    assert (
        html.count('class="timeline"') == len(BEHAVIOURS) + 2
    )  # one per scenario test (self-healing has three)
    # the interrupt scenario has no recording: no timeline, but it is mentioned
    assert "interrupted run leaves no test namespace" in html


def _figures(document, nodeid):
    return next(t["figures"] for t in document["tests"] if t["nodeid"] == nodeid)


def test_top_says_which_cluster_when_how_long_and_one_line_per_behaviour(full, html):
    top = html[: html.index('<section class="behaviour')]
    rolling = _figures(full, runs.ROLL)
    requests = svg.fmt_number(rolling["requests"])
    assert THIN in requests
    assert "local (localcluster, started by this run)" in top
    assert "v1.34.2" in top
    assert "ka-node-1 Ready, amd64" in top
    assert "1 (amd64)" in top
    assert "2025-11-27 01:00:00 UTC" in top
    assert re.search(r"took \d+ min \d+ s", top)
    rows = re.findall(r'<tr class="o-(\w+)">\s*<th scope="row"><a href="#([\w-]+)">', top)
    assert rows == [("passed", key) for key in BEHAVIOURS]
    assert "4/4 replicas answered 400 requests, spread p = 0.29" in top
    assert "restarted 2.7 s after infection (floor 1 s)" in top
    assert "killed process (exit 1) restarted after 0.9 s" in top
    assert "deleted pod replaced, Ready after 2.2 s" in top
    assert "1 \u2192 3 replicas 17 s after load began, back to 1 52 s after it stopped" in top
    assert f"v1 \u2192 v2 in {rolling['rollout_s']} s, 0 of {requests} requests failed" in top
    assert "155 other tests" in top


def test_timeline_has_a_lane_per_pod_with_states_restarts_probe_failures_and_marks(full, html):
    infected = next(t for t in full["tests"] if t["nodeid"] == runs.INFECT)
    pods = {entry["name"] for entry in infected["recording"]["pods"]}
    part = _section(html, "self-healing")
    timeline = part[part.index('class="timeline"') : part.index("</svg>", part.index("timeline"))]
    for pod in pods:
        assert f">{pod}<" in timeline
    for state in ("Pending", "Running, not Ready", "Ready"):
        assert f">{state}</text>" in timeline
    assert 'class="restart"' in timeline
    assert 'class="probe-failure"' in timeline
    assert "Liveness probe failed: HTTP probe failed with statuscode: 503" in timeline
    assert timeline.count('class="mark"') == len(infected["recording"]["marks"])
    assert "traffic: healthcheck" in timeline


def test_each_behaviour_has_its_own_chart(full, html):
    lb = _section(html, "load-balancing")
    assert "even share: 100" in lb
    assert lb.count('class="bar"') == 4
    healing = _section(html, "self-healing")
    assert "(infected)" in healing
    assert "failed requests" in healing
    assert "HTTP 503" in healing
    scaling = _section(html, "autoscaling")
    assert "target 50 %" in scaling
    assert "load through the Service" in scaling
    assert "max 4" in scaling
    rolling = _section(html, "rolling-update")
    assert "answered by version v1" in rolling
    assert "answered by version v2" in rolling
    assert "more than 5 pods: beyond 4 replicas + maxSurge 1" in rolling
    assert "fewer than 4 Ready" in rolling
    requests = svg.fmt_number(_figures(full, runs.ROLL)["requests"])
    assert f"none: all {requests} were answered" in rolling


def test_readable_without_colour_and_printable(html):
    # patterns tell fills apart, legends and words name every series and verdict
    assert html.count("<pattern ") >= 10
    for key in BEHAVIOURS:
        part = _section(html, key)
        assert 'class="legend"' in part, key
        assert "\u2713 passed" in part
    assert "@media print" in html
    assert "break-before: page" in html


def test_a_failed_behaviour_shows_its_assertion_logs_and_events_inline(failing_html):
    page = _parse(failing_html)
    assert page.problems == []
    rolling = _section(failing_html, "rolling-update")
    assert 'data-verdict="failed"' in failing_html
    assert "\u2717 FAILED" in rolling
    assert "Why it failed" in rolling
    assert "AssertionError: 3 of" in rolling
    assert "kube-alive: events in ka-r1-test-rolling-update" in rolling
    assert "kube-alive: logs pod/incver-" in rolling
    assert "Starting gunicorn" in rolling
    assert "connection refused" in rolling
    # and the summary line says why
    top = failing_html[: failing_html.index('<section class="behaviour')]
    assert '<tr class="o-failed">' in top
    assert "Failed: 3 of" in top


def test_a_skipped_behaviour_says_why_and_how_to_fix_it(failing_html):
    top = failing_html[: failing_html.index('<section class="behaviour')]
    assert "\u2013 skipped" in top
    assert "no metrics API (v1beta1.metrics.k8s.io): install metrics-server" in top


def test_a_run_without_cluster_or_scenarios_still_renders():
    document = report.build(
        run_id="r0",
        started=1_764_205_200.0,
        ended=1_764_205_210.0,
        exitstatus=0,
        cluster=None,
        outcomes={},
        records={},
    )
    text = _render(document)
    assert _parse(text).problems == []
    assert "no cluster was used (the behaviours need --cluster)" in text
    assert "<title>kube-alive on no cluster: no behaviour ran: run r0" in text
    assert text.count("not part of this run</span></td>") == len(BEHAVIOURS)


def test_a_scenario_that_failed_before_recording_figures_shows_its_assertion():
    outcome = runs.TestOutcome(
        runs.ROLL,
        "failed",
        12.0,
        "    def test_x():\n>       wait()\nE       suite.waiting.WaitFailed: deployment/incver "
        "in ns: 2/4 ready after 70s; last event: ImagePullBackOff\n\n"
        "suite/waiting.py:1: WaitFailed",
    )
    document = report.build(
        run_id="r2",
        started=1.0,
        ended=20.0,
        exitstatus=1,
        cluster=runs.CLUSTER,
        outcomes={runs.ROLL: outcome},
        records={},
    )
    text = _render(document)
    assert "suite.waiting.WaitFailed: deployment/incver in ns: 2/4 ready after 70s" in text
    assert _parse(text).problems == []


# -- safety ----------------------------------------------------------------------------------------


def test_pod_names_marks_and_log_text_are_escaped():
    document = runs.full_run(
        failing_rollout=True, app=f"getip{HOSTILE}", log_text=f"{HOSTILE} & </pre><b>"
    )
    text = _render(document)
    assert "<script" not in text
    assert "</pre><b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert _parse(text).problems == []
    # in the SVG too: a pod lane label and a tooltip
    lb = _section(text, "load-balancing")
    assert re.search(r"<text [^>]*>getip&lt;script&gt;alert\(1\)&lt;/script&gt;-", lb)


def test_the_page_needs_nothing_from_the_network(html, failing_html):
    for text in (html, failing_html):
        assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", text, re.I)
        assert not re.search(r"url\(\s*['\"]?(?!#)", text)
        assert "@import" not in text
        for tag in ("<link", "<script", "<img", "<iframe", "<object", "<embed"):
            assert tag not in text
        assert "xlink:href" not in text
        links = re.findall(r'href="([^"]*)"', text)
        assert links
        assert all(link.startswith("#") for link in links)


def test_size_stays_small_for_a_full_run_and_bounded_for_a_run_that_failed_everywhere():
    assert len(_render(runs.full_run()).encode()) < 400_000
    document = runs.full_run(failing_rollout=True)
    huge_log = "x" * 19_000 + "\n"
    for test in document["tests"]:
        if test["recording"] is not None:
            test["outcome"] = "failed"
            test["message"] = "E   AssertionError: " + "y" * 30_000
            test["evidence"] = [[f"kube-alive: logs pod/p{i} -c c", huge_log] for i in range(24)]
        elif test["outcome"] == "passed":
            test["outcome"] = "failed"
            test["message"] = "E   ImportError: " + "z" * 15_000
    # a crash-looping Deployment: many pods, and a lot of traffic
    rolling = next(t for t in document["tests"] if t["nodeid"] == runs.ROLL)
    answers = rolling["probes"][0]["answers"]
    rolling["probes"][0]["answers"] = answers * 40
    pods = rolling["recording"]["pods"]
    for index in range(120):
        for entry in pods[:6]:
            copy = json.loads(json.dumps(entry))
            copy["name"] = f"crash-{index}"
            if copy["state"]:
                copy["state"]["name"] = copy["name"]
            pods.append(copy)
    size = len(_render(document).encode())
    assert size < 3_000_000, size


def test_render_problems_give_a_plain_page_not_a_lost_report():
    document = runs.full_run()
    broken = next(t for t in document["tests"] if t["recording"])
    broken["recording"] = {"pods": [{"name": "no-time", "state": {}}], "marks": "nonsense"}
    text = report.render_html_or_fallback(document)
    assert "The full report could not be drawn" in text
    assert "Traceback" in text
    assert runs.LB in text


def test_python_m_suite_report_redraws_the_page_from_report_json(tmp_path, capsys):
    source = tmp_path / "report.json"
    source.write_text(json.dumps(runs.full_run()))
    assert render_main([str(source)]) == 0
    written = tmp_path / "report.html"
    assert written.read_text().startswith("<!doctype html>")
    assert "report.html" in capsys.readouterr().out
    assert render_main([str(source), "-o", str(tmp_path / "other.html")]) == 0
    assert (tmp_path / "other.html").read_text() == written.read_text()


def test_rendering_is_deterministic(full):
    assert _render(full) == _render(full)


# -- the parts -------------------------------------------------------------------------------------


def test_lanes_follow_a_pod_through_its_states_and_restarts(full):
    infected = next(t for t in full["tests"] if t["nodeid"] == runs.INFECT)
    recording = infected["recording"]
    sick = data.mark_detail(recording, "infect", "pod")
    lanes = {lane.name: lane for lane in data.lanes_of(recording, 99.0)}
    lane = lanes[sick]
    assert [span.status for span in lane.spans] == [
        "Pending",
        "Running",
        "Ready",
        "Running",
        "Ready",
    ]
    assert lane.spans[-1].end == 99.0
    assert len(lane.restarts) == 1
    assert "Completed (exit 0)" in lane.restarts[0][1]
    assert len(lane.probe_failures) == 2
    assert lane.app == "healthcheck"
    assert list(lanes.values())[-1].app == "prober"  # the traffic source goes last


def test_answers_move_onto_the_recording_clock(full):
    lb = next(t for t in full["tests"] if t["nodeid"] == runs.LB)
    answers = data.answers_of(lb["probes"][0], lb["recording"])
    traffic_start = data.mark_t(data.marks_of(lb["recording"]), "traffic start")
    assert len(answers) == 400
    assert traffic_start < answers[0].t < traffic_start + 1.0
    assert all(a.ok and a.version == "v1" for a in answers)


def test_a_deleted_pod_lane_ends_when_it_is_gone(full):
    deleted = next(t for t in full["tests"] if t["nodeid"] == runs.DELETE)
    lanes = {lane.name: lane for lane in data.lanes_of(deleted["recording"], 50.0)}
    victim = lanes[deleted["figures"]["deleted"]]
    assert victim.deleted is not None
    assert victim.spans[-1].status == "Terminating"
    assert victim.spans[-1].end == victim.deleted


@pytest.mark.parametrize(
    ("span", "requests", "width"),
    [(10.0, 300, 0.5), (10.0, 3000, 0.2), (600.0, 100, 60.0), (4.0, 0, 0.1)],
)
def test_bins_are_round_and_hold_enough_requests(span, requests, width):
    assert charts.bin_width(span, requests) == width


def test_numbers_and_ticks_read_well():
    assert svg.fmt_number(1234) == f"1{THIN}234"
    assert svg.fmt_number(999) == "999"
    assert svg.ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert svg.tick_label(2.5) == "2.5"
    assert svg.tick_label(10.0) == "10"


def test_first_line_prefers_pytests_error_line():
    text = "  def test():\n>   assert x\nE   AssertionError: 2 of 400 failed\nE   assert 2 == 0\n"
    assert views._first_line(text) == "2 of 400 failed"
    assert views._first_line("just one line") == "just one line"
    assert views._first_line("E   " + "word " * 100).endswith("\u2026")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file (a run writes reports/report.json)"),
        (b"\xff\xfe not utf-8", "cannot read it"),
        (b'{"schema": 1, "tests": [', "not JSON"),
        (b"{}", "not a kube-alive report.json (no 'schema' field)"),
        (b"[]", "not a kube-alive report.json (a JSON list, not an object)"),
        (b'{"schema": 99}', "report.json schema 99, this version draws schema 1 only"),
        (b'{"schema": 1, "run_id": "r"}', "('started' missing or of the wrong type)"),
        (
            b'{"schema": 1, "run_id": "r", "started": 1, "exitstatus": 0, "tests": [{}]}',
            "a test without a 'nodeid'",
        ),
        (b'{"schema": true}', "report.json schema true, this version draws schema 1 only"),
        (
            b'{"schema": 1, "run_id": "r", "started": 1e400, "exitstatus": 0, "tests": []}',
            "'started' is Infinity, expected a time in seconds since 1970",
        ),
        (
            b'{"schema": 1, "run_id": "r", "started": 1, "exitstatus": 0, "tests": '
            b'[{"nodeid": "suite/scenarios/test_load_balancing.py::t", "figures": "fast"}]}',
            "tests[0] (suite/scenarios/test_load_balancing.py::t): 'figures' is \"fast\", "
            "expected an object",
        ),
    ],
    ids=[
        "missing",
        "not-utf8",
        "not-json",
        "no-schema",
        "a-list",
        "schema-99",
        "no-started",
        "no-nodeid",
        "schema-true",
        "started-1e400",
        "figures-a-string",
    ],
)
def test_python_m_suite_report_says_what_is_wrong_with_its_input_in_one_line(
    tmp_path, capsys, content, message
):
    source = tmp_path / "report.json"
    if content is not None:
        source.write_bytes(content)
    assert render_main([str(source)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"python -m suite.report: {source}: ")
    assert message in captured.err
    assert not (tmp_path / "report.html").exists()


def test_python_m_suite_report_never_writes_the_page_over_its_own_input(tmp_path, capsys):
    source = tmp_path / "report.json"
    text = json.dumps(runs.full_run())
    source.write_text(text)
    for output in (source, tmp_path / "." / "report.json"):
        assert render_main([str(source), "-o", str(output)]) == 2
        captured = capsys.readouterr()
        assert captured.err == (
            f"python -m suite.report: -o {output} is the report.json it reads: writing the page "
            "there would overwrite the data; name another file\n"
        )
    assert source.read_text() == text


def test_python_m_suite_report_on_a_value_deeper_in_of_the_wrong_shape(tmp_path, capsys):
    document = runs.full_run()
    test = next(t for t in document["tests"] if "restarted_after_s" in (t.get("figures") or {}))
    test["figures"]["restarted_after_s"] = "soon"
    source = tmp_path / "report.json"
    source.write_text(json.dumps(document))
    assert render_main([str(source)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"python -m suite.report: {source}: cannot draw it, ")


def test_python_m_suite_report_on_a_directory_or_an_unwritable_output(tmp_path, capsys):
    assert render_main([str(tmp_path)]) == 2
    assert "is a directory; give the report.json inside it" in capsys.readouterr().err
    source = tmp_path / "report.json"
    source.write_text(json.dumps(runs.full_run()))
    assert render_main([str(source), "-o", str(tmp_path / "no" / "such" / "dir.html")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_title_and_verdict_line_say_what_ran_where_and_what_did_not(full):
    failing = runs.full_run(failing_rollout=True, skip_autoscaling=True)
    passed = verdict.summarize(full)
    assert passed.title.startswith("kube-alive on local (v1.34")
    count = len(BEHAVIOURS)
    assert passed.title.endswith(f": {count} of {count} behaviours proven")
    assert passed.not_run == []
    said = passed.ran.lower()
    places = [said.find(f"{b.title.lower()} proven") for b in behaviours.ALL]
    assert -1 not in places, passed.ran
    assert places == sorted(places)
    assert passed.ran.endswith("proven.")
    assert not passed.failed
    failed = verdict.summarize(failing)
    assert failed.title.startswith("kube-alive FAILED on local")
    assert failed.failed
    assert any(
        line.startswith("CPU autoscaling: skipped: no metrics API") for line in failed.not_run
    )
    only_lb = dict(full, tests=[t for t in full["tests"] if "load_balancing" in t["nodeid"]])
    partial = verdict.summarize(only_lb)
    assert partial.title.endswith(f": 1 of {count} behaviours proven")
    assert "Self-healing: not selected in this run" in partial.not_run
    interrupted = verdict.summarize(dict(only_lb, exitstatus=2))
    assert interrupted.title.endswith(f": 1 of {count} behaviours proven, the run was interrupted")
    assert interrupted.title.startswith("kube-alive FAILED on local")
    text = _render(only_lb)
    assert "Not run: Self-healing: not selected in this run" in " ".join(text.split())


def test_a_cluster_that_could_not_be_used_is_said_so_not_no_cluster():
    document = report.build(
        run_id="r9",
        started=1.0,
        ended=2.0,
        exitstatus=1,
        cluster=None,
        outcomes={runs.LB: runs.TestOutcome(runs.LB, "error", 1.0, "cannot reach")},
        records={},
        cluster_error={"provider": "existing", "error": "cannot reach the API server x"},
    )
    summary = verdict.summarize(document)
    assert (
        summary.title
        == "kube-alive FAILED: --cluster=existing could not be used; no behaviour was tried"
    )
    text = _render(document)
    assert "--cluster=existing could not be used: cannot reach the API server x" in text
    assert "no cluster was used" not in text


def test_a_scenario_floor_is_shown_against_its_body_not_its_setup():
    figures = {"floor": {"total_s": 10.0, "terms": [{"what": "liveness", "s": 10.0}]}}
    # On kind the first test's setup creates the cluster: only the body counts.
    test = {"nodeid": "t.py::test_x", "outcome": "passed", "duration_s": 95.0, "call_s": 15.0}
    view = views.view_of_test({**test, "figures": figures}, None, 0)
    assert view.floor_line == "its body took 15 s, 1.5x its physical floor of 10 s = liveness 10 s"
    assert ("floor", "{'total_s': 10.0, 'terms': [{'what': 'liveness', 's': 10.0}]}") not in (
        view.figures
    )
    older = views.view_of_test({**test, "call_s": None, "figures": figures}, None, 0)
    assert older.floor_line.startswith("its body took 95 s, 9.5x")
    assert views.view_of_test(test, None, 0).floor_line == ""


def test_report_json_has_each_tests_body_time():
    outcome = TestOutcome("t.py::test_x", duration=12.0, call_duration=9.5)
    document = report.build(
        run_id="r",
        started=0.0,
        ended=1.0,
        exitstatus=0,
        cluster=None,
        outcomes={"t.py::test_x": outcome},
        records={},
    )
    assert document["tests"][0]["call_s"] == 9.5


# -- figure words ----------------------------------------------------------------------------------


def test_every_figure_of_every_behaviour_has_words_in_its_view():
    # keys a scenario records with figures.update(...) or figures[...] = ...
    repo = pathlib.Path(views.__file__).parents[2]
    missing = []
    for behaviour in behaviours.ALL:
        words = {**views.FIGURE_WORDS, **behaviour.figure_words}
        tree = ast.parse((repo / behaviour.path).read_text())
        for node in ast.walk(tree):
            keys: list[str] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
                if node.func.attr == "update" and getattr(target, "id", None) == "figures":
                    keys = [kw.arg for kw in node.keywords if kw.arg]
            elif (
                isinstance(node, ast.Subscript)
                and getattr(node.value, "id", None) == "figures"
                and isinstance(node.slice, ast.Constant)
            ):
                keys = [node.slice.value]
            missing += [
                f"{behaviour.module}: {key}" for key in keys if key not in words and key != "floor"
            ]
    assert not missing


def _failed_rolling_update(**fields):
    document = runs.full_run(failing_rollout=True)
    failed = next(t for t in document["tests"] if t["outcome"] == "failed")
    failed.update(fields)
    return document, failed


def test_a_failed_test_links_its_evidence_folder_and_report_json_keeps_the_path(tmp_path):
    folder = "evidence/rolling-update-replaces-every-pod-1a4250"
    document, failed = _failed_rolling_update(evidence_dir=folder)
    html = _render(document)
    article = html[html.index(f'data-test="{failed["nodeid"].rsplit("::", 1)[1]}"') :]
    assert f'<a href="{folder}/">{folder}/</a>' in article[: article.index("</article>")]
    assert html.count('class="evidence-dir"') == 1
    assert 'class="cluster-logs"' not in html
    document["cluster_logs"] = "evidence/kind-logs"
    assert '<a href="evidence/kind-logs/">' in _render(document)
    source = tmp_path / "report.json"
    source.write_text(json.dumps(document))
    assert render_main([str(source)]) == 0


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "../../etc", "evidence/../x", "/tmp/e"])
def test_an_evidence_path_outside_evidence_is_never_linked_and_refused_in_one_line(
    tmp_path, capsys, bad
):
    document, _ = _failed_rolling_update(evidence_dir=bad)
    assert 'class="evidence-dir"' not in _render(document)
    source = tmp_path / "report.json"
    source.write_text(json.dumps(document))
    assert render_main([str(source)]) == 2
    assert "'evidence_dir' is" in capsys.readouterr().err

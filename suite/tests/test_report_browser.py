"""report.html in a real browser: headless Chromium, driven by Playwright.

By default the page is drawn from a recorded-looking run (with a failed rollout, so evidence is
on it too). To check the report of a real run, point at it:

    KUBE_ALIVE_REPORT_HTML=reports/report.html pytest suite/tests/test_report_browser.py \\
        --report-dir=reports/browser -p no:cacheprovider

(`--report-dir` elsewhere, so this run's own report does not replace the one being checked.)
The screenshot goes to $KUBE_ALIVE_SCREENSHOT, else beside a given report (report.png), else
into the test's temporary directory.

The fault matrix's own page is checked too: $KUBE_ALIVE_FAULT_MATRIX_HTML (must exist; CI sets
it to reports/fault-matrix.html), else a fault-matrix.html beside a given report when there is
one, else a page drawn from a made-up matrix. Its screenshot goes beside it (fault-matrix.png).

The Chromium is the one `suite.browser.chromium_executable` finds ($KUBE_ALIVE_CHROMIUM, else
Playwright's own, else Debian's). Without Playwright or a Chromium the test skips, except in CI
or when a report was given: then it fails.
"""

import json
import os
from pathlib import Path

import pytest

from suite import behaviours, report
from suite.browser import CHROMIUM_ARGS, ChromiumNotFound, chromium_executable
from suite.report import catches
from suite.tests.data import runs

BEHAVIOURS = [behaviour.key for behaviour in behaviours.ALL]
#: "Fast to open": DOMContentLoaded of a full report, generous for a busy 2-core machine.
OPEN_WITHIN_MS = 5000
VIEWPORT = {"width": 1100, "height": 1400}


def _missing(what):
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("KUBE_ALIVE_REPORT_HTML"):
        pytest.fail(f"{what} (needed for the browser test of report.html)", pytrace=False)
    pytest.skip(f"{what}: the browser test of report.html needs it")


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium (`suite.browser.chromium_executable`), launched through Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed: pip install 'kube-alive[browser]'")
    with sync_playwright() as playwright:
        try:
            executable = chromium_executable(playwright)
        except ChromiumNotFound as error:
            _missing(str(error))
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    """(report.html, screenshot path, whether it came from a real run)."""
    given = os.environ.get("KUBE_ALIVE_REPORT_HTML")
    shot = os.environ.get("KUBE_ALIVE_SCREENSHOT")
    if given:
        path = Path(given).resolve()
        assert path.is_file(), f"KUBE_ALIVE_REPORT_HTML={given}: no such file"
        return path, Path(shot) if shot else path.with_name("report.png"), True
    directory = tmp_path_factory.mktemp("report")
    path = directory / "report.html"
    document = runs.full_run(failing_rollout=True)
    path.write_text(report.render_html(json.loads(json.dumps(document))))
    return path, Path(shot) if shot else directory / "report.png", False


@pytest.fixture(scope="module")
def opened(chromium, report_page):
    """The report opened in a page; every request that is not the file itself is refused and
    remembered, console errors too."""
    path, _, _ = report_page
    yield from _open(chromium, path)


def _open(chromium, path):
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    outside, errors = [], []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("file:", "data:", "about:")):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri(), wait_until="load")
    try:
        yield page, outside, errors
    finally:
        context.close()


def test_report_opens_fast_and_fetches_nothing(opened):
    page, outside, errors = opened
    assert outside == []
    assert errors == []
    loaded = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    assert loaded < OPEN_WITHIN_MS


def test_summary_has_a_verdict_line_per_behaviour(opened):
    page, _, _ = opened
    rows = page.locator("section.summary tbody tr")
    assert rows.count() == len(BEHAVIOURS)
    for index in range(len(BEHAVIOURS)):
        row = rows.nth(index)
        assert row.is_visible()
        verdict = row.locator(".verdict").inner_text()
        words = ("passed", "FAILED", "ERROR", "skipped", "not on this cluster")
        assert any(word in verdict for word in words)
        assert row.locator("td.headline").inner_text().strip()


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_each_behaviour_has_a_visible_section_chart_and_timeline(opened, report_page, behaviour):
    page, _, _ = opened
    _, _, real = report_page
    section = page.locator(f'section[data-behaviour="{behaviour}"]')
    assert section.count() == 1
    section.scroll_into_view_if_needed()
    assert section.is_visible()
    verdict = section.get_attribute("data-verdict")
    if verdict == "elsewhere":
        # It cannot run on this cluster (the page says where it runs); CI runs it on kind.
        assert "runs only on --cluster=" in section.inner_text()
        return
    if verdict in ("skipped", "missing"):
        reason = section.locator(".headline").first.inner_text() if verdict == "skipped" else ""
        message = f"{behaviour} was {verdict} in this run {reason}"
        if real:
            pytest.fail(message)
        pytest.skip(message)
    for kind, least_height in (("chart", 150), ("timeline", 80)):
        image = section.locator(f"svg.{kind}").first
        assert image.is_visible(), f"{behaviour}: no visible {kind}"
        box = image.bounding_box()
        assert box is not None
        assert box["width"] > 600, f"{behaviour} {kind} is {box['width']:.0f}px wide"
        assert box["height"] > least_height, f"{behaviour} {kind} is {box['height']:.0f}px high"
        # drawn, not empty: shapes inside have a size on screen
        shapes = image.locator("rect, path")
        assert shapes.count() >= 3
        assert image.locator("text").first.is_visible()


def test_failed_tests_show_their_evidence(opened):
    page, _, _ = opened
    failed = page.locator('article.test[data-outcome="failed"]')
    for index in range(failed.count()):
        article = failed.nth(index)
        article.scroll_into_view_if_needed()
        message = article.locator(".evidence pre.message")
        assert message.is_visible()
        assert message.inner_text().strip()


def test_printed_report_keeps_every_chart(opened):
    page, _, _ = opened
    page.emulate_media(media="print")
    try:
        for behaviour in BEHAVIOURS:
            section = page.locator(f'section[data-behaviour="{behaviour}"]')
            assert section.is_visible()
            if section.get_attribute("data-verdict") in ("passed", "failed"):
                assert section.locator("svg.chart").first.is_visible()
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF")
    finally:
        page.emulate_media(media="screen")


def test_screenshot_of_the_whole_report(opened, report_page):
    page, _, _ = opened
    _, shot, _ = report_page
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000


# ---- the fault matrix's own page (fault-matrix.html) ---------------------------------------

MATRIX_VARIABLE = "KUBE_ALIVE_FAULT_MATRIX_HTML"


def _made_up_matrix():
    """A matrix run as `python -m suite.tools.faultmatrix` writes it: one fault caught, one stopped
    by a precondition, one not run, a variant that passed and one that failed."""
    cluster = {
        "provider": "local",
        "describe": "local cluster (upstream components as host processes)",
        "facts": {"server_version": "v1.34.4", "nodes": [{"name": "ka-node-1", "ready": True}]},
    }

    def fault(name, status, kind, line):
        result = {"nodeid": runs.LB, "status": status, "kind": kind, "line": line}
        if kind:
            result["report"] = f"faults/{name}/report.html"
        return {"fault": name, "broken": "a part", "how": "stopped", "results": [result]}

    return {
        "run_id": "fm-20251127T010000Z-ab12",
        "started": runs.STARTED,
        "ended": runs.STARTED + 480,
        "duration_s": 480,
        "healthy_checked": True,
        "cluster": cluster,
        "pytest_runs": [
            {
                "purpose": "fault service-routing-stopped",
                "run_id": "a1b2c3",
                "exit": 1,
                "report": "faults/service-routing-stopped/report.html",
            },
            {
                "purpose": "restored cluster",
                "run_id": "d4e5f6",
                "exit": 0,
                "report": "faults/healthy/report.html",
            },
        ],
        "faults": [
            fault(
                "service-routing-stopped",
                catches.CAUGHT,
                "behaviour",
                "0 of 400 answers: kube-proxy (the node's service proxy) routed none " * 6,
            ),
            fault(
                "metrics-api-gone",
                catches.STOPPED,
                "precondition",
                "no metrics API (metrics.k8s.io): install metrics-server",
            ),
            fault("slow-disk", catches.NOT_RUN, None, "localcluster: cannot apply slow-disk"),
        ],
        "variants": [
            {
                "variant": "proxy-ipvs",
                "differs": "kube-proxy in IPVS mode",
                "status": "passed",
                "results": [{"nodeid": runs.LB, "outcome": "passed", "line": ""}],
            },
            {
                "variant": "slow-hpa-sync",
                "differs": "HPA sync every 30 s",
                "status": "failed",
                "results": [{"nodeid": runs.HPA, "outcome": "failed", "line": "scaled out late"}],
            },
        ],
        "healthy": {runs.LB: {"outcome": "passed", "line": ""}},
        "problems": ["metrics-api-gone: stopped by a precondition"],
    }


@pytest.fixture(scope="module")
def matrix_page(tmp_path_factory):
    """(fault-matrix.html, its fault-matrix.json or None, screenshot path, from a real run)."""
    given = os.environ.get(MATRIX_VARIABLE)
    report_given = os.environ.get("KUBE_ALIVE_REPORT_HTML")
    if given:
        path = Path(given).resolve()
        assert path.is_file(), f"{MATRIX_VARIABLE}={given}: no such file"
    elif report_given and Path(report_given).with_name(catches.PAGE).is_file():
        path = Path(report_given).with_name(catches.PAGE).resolve()
    elif report_given:
        pytest.skip(f"no {catches.PAGE} beside {report_given} (set {MATRIX_VARIABLE} to check one)")
    else:
        directory = tmp_path_factory.mktemp("matrix")
        path = directory / catches.PAGE
        path.write_text(catches.render(_made_up_matrix()))
        return path, None, directory / "fault-matrix.png", False
    data = catches.load(path.with_name(catches.FILE))
    return path, data, path.with_name("fault-matrix.png"), True


@pytest.fixture(scope="module")
def matrix_opened(chromium, matrix_page):
    """fault-matrix.html opened like the report: nothing fetched, console errors remembered."""
    path, _, _, _ = matrix_page
    yield from _open(chromium, path)


def test_fault_matrix_page_opens_fast_and_fetches_nothing(matrix_opened):
    page, outside, errors = matrix_opened
    assert outside == []
    assert errors == []
    loaded = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    assert loaded < OPEN_WITHIN_MS


def test_fault_matrix_page_says_which_run_and_cluster_it_belongs_to(matrix_opened, matrix_page):
    page, _, _ = matrix_opened
    _, data, _, real = matrix_page
    run_id = page.locator("body").get_attribute("data-run-id")
    assert run_id
    assert run_id != "?"
    assert page.locator(".facts .run-id").inner_text() == run_id
    assert page.locator(".facts dd.cluster").inner_text().strip()
    if real:
        assert data is not None, "no fault-matrix.json beside the page"
        assert data["run_id"] == run_id, "the page and fault-matrix.json are of different runs"


def test_fault_matrix_page_shows_both_tables_with_the_lines_judged(matrix_opened, matrix_page):
    page, _, _ = matrix_opened
    _, data, _, real = matrix_page
    for section in ("faults", "variants"):
        table = page.locator(f"section#{section} table")
        table.scroll_into_view_if_needed()
        assert table.is_visible(), f"no visible {section} table"
    rows = page.locator("section#faults tbody tr[data-fault]")
    expected = sum(len(f.get("results") or []) for f in data["faults"]) if real else 3
    assert rows.count() == expected
    for index in range(rows.count()):
        row = rows.nth(index)
        status = row.get_attribute("data-status")
        assert status in catches.STATUSES
        assert row.locator(".status").inner_text() == status
        assert row.locator("td.line").inner_text().strip(), f"row {index}: no line judged"
    variants = page.locator("section#variants tbody tr[data-variant]")
    if real:
        assert variants.count() == sum(len(v.get("results") or []) for v in data["variants"])
    else:
        assert variants.count() == 2
    for index in range(variants.count()):
        row = variants.nth(index)
        outcome = row.get_attribute("data-outcome")
        assert row.locator(".status").inner_text() == outcome
        if outcome != "passed":
            assert row.locator("td.line").inner_text().strip()


def test_screenshot_of_the_fault_matrix_page(matrix_opened, matrix_page):
    page, _, _ = matrix_opened
    _, _, shot, _ = matrix_page
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

"""The kube-alive pytest plugin: options, and the hooks that tie tests to a cluster.

Kept thin: options are checked in `suite.settings`, fixtures live in `suite.fixtures`, clusters
come from `suite.providers`. Nothing here connects to a cluster: `pytest --help`,
`--collect-only` and the unit tests work without one.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from _pytest import junitxml

from suite import claims, evidence, files, namespaces, naming, report
from suite.context import CONTEXT_KEY
from suite.kube import KubeconfigError, KubeError
from suite.preflight import ClusterError, ClusterFacts, connect
from suite.providers import provider_classes
from suite.report import htmlbridge
from suite.session import (
    RUN_ID_INPUT,
    SHARED_DIR_INPUT,
    STATE_KEY,
    SessionState,
    TestOutcome,
    make_log,
    start_log,
)
from suite.settings import (
    INI_FAIL_ON_SKIP,
    INI_KEEP_NAMESPACES,
    INI_REPORT_DIR,
    cluster_choices_help,
    no_cluster_reason,
    settings_from,
)

pytest_plugins = ["suite.fixtures"]

E2E = "e2e"
ONLY_ON = "only_on"
ONLY_ON_DOC = (
    "only_on(*clusters, reason): the test makes sense only on these --cluster choices; on the "
    "others it is deselected, and the terminal summary says so with the reason"
)
ALONE = "alone"
ALONE_DOC = (
    "alone(reason): the test disrupts the whole cluster (it restarts the API server), so it cannot "
    "share it with tests running beside it: under pytest -n it is deselected, and the terminal "
    "summary says so and how to run it"
)
_DESELECTED_KEY = pytest.StashKey[list[str]]()
E2E_DOC = (
    "e2e: needs a Kubernetes cluster (added automatically to tests that use the `cluster` fixture)"
)
_SWEPT_KEY = pytest.StashKey[list[str]]()
_OUTCOME_KEY = pytest.StashKey[str]()
_REPORTS_KEY = pytest.StashKey[list[str]]()
_PREVIOUS_SIGTERM = pytest.StashKey[Any]()
#: pytest-timeout backstop behind the scenarios' own deadlines: a scenario states it in its module
#: as BACKSTOP_S (the sum of its deadlines and a margin); other e2e tests get the default. It
#: covers the test function only (`func_only`): the first test's setup may build and start the
#: local cluster (about 25 minutes on a cold cache), under the provider's own deadlines.
BACKSTOP_ATTRIBUTE = "BACKSTOP_S"
#: A failed test's `claims.Failure`, as JSON in its report's user_properties.
FAILURE_PROPERTY = "kube_alive_failure"
DEFAULT_BACKSTOP_S = 600.0
#: The final sweep gives up quickly on an unreachable cluster (e.g. after a second Ctrl-C).
SWEEP_CONNECT_S = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    """The `kube-alive` option group."""
    group = parser.getgroup("kube-alive", "kube-alive: the cluster the e2e scenarios run on")
    group.addoption(
        "--cluster",
        dest="kube_alive_cluster",
        choices=list(provider_classes()),
        default=None,
        help=cluster_choices_help(),
    )
    group.addoption(
        "--kubeconfig",
        dest="kube_alive_kubeconfig",
        metavar="PATH",
        default=None,
        help="kubeconfig file for --cluster=existing (default: $KUBECONFIG, then ~/.kube/config)",
    )
    group.addoption(
        "--context",
        dest="kube_alive_context",
        metavar="NAME",
        default=None,
        help="kubeconfig context for --cluster=existing (default: the current context)",
    )
    group.addoption(
        "--image-registry",
        dest="kube_alive_image_registry",
        metavar="HOST[:PORT][/PATH]",
        default=None,
        help=(
            "registry the nodes of --cluster=existing pull the workload images from: "
            "localhost/kube-alive/workloads:TAG becomes <registry>/kube-alive/workloads:TAG"
        ),
    )
    group.addoption(
        "--keep-cluster",
        dest="kube_alive_keep_cluster",
        action="store_true",
        default=False,
        help=(
            "--cluster=kind: reuse the kind cluster 'kube-alive' (create it if there is none) "
            "and never delete it; without it a cluster this run created is deleted at the end"
        ),
    )
    group.addoption(
        "--kind-node-image",
        dest="kube_alive_kind_node_image",
        metavar="IMAGE",
        default=None,
        help=(
            "--cluster=kind: the node image to create the cluster from (default: "
            "$KUBE_ALIVE_KIND_NODE_IMAGE, else kind's release image for the pinned Kubernetes; "
            "`python -m localcluster kind-node-image` builds one offline)"
        ),
    )
    group.addoption(
        "--keep-namespaces",
        dest="kube_alive_keep_namespaces",
        action="store_true",
        default=False,
        help="do not delete test namespaces (to look around after a run)",
    )
    group.addoption(
        "--report-dir",
        dest="kube_alive_report_dir",
        metavar="DIR",
        default=None,
        help=(
            "where report.json, report.html, junit.xml and kube-alive.log go (default: "
            f"reports/, or {INI_REPORT_DIR} in the ini file); written only by a run whose tests "
            "used the cluster"
        ),
    )
    group.addoption(
        "--fail-on-skip",
        dest="kube_alive_fail_on_skip",
        action="store_true",
        default=False,
        help="a skipped e2e test is a failure (always so when CI=true)",
    )
    # Per-project settings, e.g. in pyproject.toml's [tool.pytest.ini_options].
    parser.addini(
        INI_REPORT_DIR,
        "kube-alive: default of --report-dir (relative to the ini file)",
        type="string",
        default="",
    )
    parser.addini(
        INI_FAIL_ON_SKIP,
        "kube-alive: like --fail-on-skip: a skipped e2e test is a failure",
        type="bool",
        default=False,
    )
    parser.addini(
        INI_KEEP_NAMESPACES,
        "kube-alive: like --keep-namespaces: do not delete test namespaces",
        type="bool",
        default=False,
    )


class _XdistHooks:
    """Hands the run id and the shared directory to every xdist worker."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_ID_INPUT] = self.state.run_id
        node.workerinput[SHARED_DIR_INPUT] = str(self.state.shared_dir)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Check the options, fix the run id, default the JUnit path, and make SIGTERM behave like
    Ctrl-C (so namespaces are swept when CI cancels a job)."""
    config.addinivalue_line("markers", E2E_DOC)
    config.addinivalue_line("markers", ONLY_ON_DOC)
    config.addinivalue_line("markers", ALONE_DOC)
    settings = settings_from(config)
    state = SessionState.from_config(config, settings)
    config.stash[STATE_KEY] = state
    if (
        not state.is_worker
        and settings.cluster is not None
        and not config.option.collectonly
        and not getattr(config.option, "xmlpath", None)
    ):
        # Only a run that may reach a cluster writes into the report directory by default: a
        # plain `pytest` or `--collect-only` leaves the last cluster run's reports alone.
        config.option.xmlpath = str(settings.report_dir / "junit.xml")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "kube-alive-xdist")
    if not state.is_worker:
        config.pluginmanager.register(_OutcomeCollector(state), "kube-alive-outcomes")
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            config.stash[_PREVIOUS_SIGTERM] = previous
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


class _AtomicJUnitXML:
    """pytest's junitxml plugin truncates junit.xml and writes it in place; this points it at a
    temporary file beside it while it writes, which then replaces junit.xml in one step (a CI
    step or a second run reading it never sees half a file)."""

    def __init__(self, xml: Any) -> None:
        self.xml = xml

    # Innermost of the wrappers: the file is in place before the terminal reporter's wrapper
    # prints the summary that names it.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self) -> Generator[None, None, None]:
        target = Path(self.xml.logfile)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with files.replacing(target) as temporary:
                self.xml.logfile = str(temporary)
                yield
        finally:
            # The terminal summary names the file as the user asked for it.
            self.xml.logfile = str(target)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Controller (or the only process) of a run that may reach a cluster, before xdist starts
    its workers (xdist's own session start runs last): start a fresh kube-alive.log, and have
    junit.xml written atomically."""
    config = session.config
    state = config.stash[STATE_KEY]
    if state.is_worker or state.settings.cluster is None or config.option.collectonly:
        return
    start_log(state)
    evidence.clear_previous(state.settings.report_dir)
    xml = config.stash.get(junitxml.xml_key, None)
    if xml is not None:
        config.pluginmanager.register(_AtomicJUnitXML(xml), "kube-alive-junitxml")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put SIGTERM back; remove the run's private directory."""
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        state.remove_shared_dir()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which cluster, which run; cluster facts follow when the first e2e test connects."""
    state = config.stash[STATE_KEY]
    settings = state.settings
    if settings.cluster is None:
        tail = (
            f"they FAIL ({settings.fail_on_skip_because})"
            if settings.fail_on_skip
            else "they are skipped"
        )
        return [f"kube-alive: no --cluster given: e2e scenarios need one, so {tail}"]
    lines = [
        f"kube-alive: --cluster={settings.cluster}: "
        + provider_classes()[settings.cluster].help.split(";")[0],
        f"kube-alive: run id {state.run_id} (namespaces ka-{state.run_id}-*), "
        f"reports in {settings.report_dir}",
    ]
    if settings.context or settings.kubeconfig:
        lines.append(
            f"kube-alive: kubeconfig {settings.kubeconfig or '(default)'}, "
            f"context {settings.context or '(current)'}"
        )
    if settings.image_registry:
        lines.append(f"kube-alive: images from {settings.image_registry}/kube-alive/workloads")
    return lines


def parallel_workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers share the cluster in this run (1: none, or -n 0)."""
    env = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if env:
        return int(env)
    option = getattr(config.option, "numprocesses", None)
    if isinstance(option, int):
        return option
    return (os.cpu_count() or 1) if option in ("auto", "logical") else 1


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs the cluster (directly or through other fixtures) `e2e`, and
    skip them when no cluster was chosen (a failure in CI, see pytest_runtest_makereport)."""
    settings = config.stash[STATE_KEY].settings
    if settings.cluster is not None:
        keep: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        reasons: dict[str, int] = {}
        shared = parallel_workers(config) > 1
        for item in items:
            marker = item.get_closest_marker(ONLY_ON)
            if marker is not None and settings.cluster not in marker.args:
                dropped.append(item)
                why = marker.kwargs.get("reason", "")
                reasons[why] = reasons.get(why, 0) + 1
            elif shared and item.get_closest_marker(ALONE) is not None:
                # Workers collect; this keeps their collections identical (xdist requires it).
                dropped.append(item)
            else:
                keep.append(item)
        if dropped:
            items[:] = keep
            config.hook.pytest_deselected(items=dropped)
            config.stash[_DESELECTED_KEY] = [
                f"deselected {count} test(s) not meant for --cluster={settings.cluster}: {why}"
                for why, count in reasons.items()
            ]
    backstop = config.pluginmanager.hasplugin("timeout")
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
            if backstop and item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(backstop_s(item), func_only=True))
            if settings.cluster is None:
                item.add_marker(pytest.mark.skip(reason=no_cluster_reason()))


def backstop_s(item: pytest.Item) -> float:
    """pytest-timeout's limit for an e2e test: its module's BACKSTOP_S (each scenario states its
    own, from its deadlines), else DEFAULT_BACKSTOP_S."""
    module = getattr(item, "module", None)
    return float(getattr(module, BACKSTOP_ATTRIBUTE, DEFAULT_BACKSTOP_S))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Skips of e2e tests fail in CI; failures get their evidence (logs, events, timeline) while
    the namespace still exists; the test's recording is saved after teardown."""
    report = yield
    state = item.config.stash.get(STATE_KEY, None)
    if state is None:
        return report
    if report.failed and call.excinfo is not None:
        # Made here, where the exception is at hand (under xdist the controller only gets text):
        # the fault matrix judges a failure by its kind and the exception's own message.
        failure = claims.classify(call.excinfo.value, report.when)
        report.user_properties.append((FAILURE_PROPERTY, json.dumps(failure.to_dict())))
    if (
        report.skipped
        and state.settings.fail_on_skip
        and item.get_closest_marker(E2E) is not None
        and not hasattr(report, "wasxfail")
    ):
        reason = _skip_reason(report)
        report.outcome = "failed"
        because = state.settings.fail_on_skip_because
        report.longrepr = f"kube-alive: a skipped e2e test is a failure here ({because}): {reason}"
    context = item.stash.get(CONTEXT_KEY, None)
    if context is None:
        return report
    if report.failed and report.when in ("setup", "call") and not context.evidence:
        found = evidence.gather(context.kube, context.namespace)
        recording = context.recording()
        context.evidence = evidence.sections(found, recording)
        report.sections.extend(context.evidence)
        context.evidence_dir = evidence.keep(
            state.settings.report_dir,
            item.nodeid,
            found,
            recording,
            report.longreprtext,
            make_log(item.config, state),
        )
        state.evidence_kept += 1
    if report.when in ("setup", "call") and not report.passed:
        item.stash[_OUTCOME_KEY] = "skipped" if report.skipped else "failed"
    if report.when == "teardown":
        record = context.record(item.nodeid)
        state.write_record(item.nodeid, record)
        if context.figures:
            figures = json.dumps(context.figures, default=str, separators=(",", ":"))
            report.user_properties.append(("figures", figures))
        _attach_to_pytest_html(item.config, report, record, item.stash.get(_OUTCOME_KEY, "passed"))
    return report


def _attach_to_pytest_html(
    config: pytest.Config, report: pytest.TestReport, record: dict[str, Any], outcome: str
) -> None:
    """With pytest-html and `--html`: the test's figures, chart and timeline in its row."""
    if not getattr(config.option, "htmlpath", None) or not config.pluginmanager.hasplugin("html"):
        return
    html = htmlbridge.fragment(record, outcome)
    if html is not None:
        # pytest-html's `extras.html(content)`: this dict is what it makes (no import needed).
        extra: dict[str, str | None] = {
            "name": "kube-alive",
            "format_type": "html",
            "content": html,
            "mime_type": None,
            "extension": None,
        }
        setattr(report, "extras", [*getattr(report, "extras", []), extra])  # noqa: B010


def _failure_of(report: pytest.TestReport) -> dict[str, str] | None:
    for key, value in report.user_properties:
        if key == FAILURE_PROPERTY:
            failure = claims.Failure.from_dict(json.loads(str(value)))
            return failure.to_dict() if failure else None
    return None


class _OutcomeCollector:
    """Registered on the controller (or the only process): collects each test's outcome for
    report.json (under xdist the workers' reports arrive here too)."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # "unknown" until the test body has run: a test interrupted after a passed setup (Ctrl-C
        # mid-scenario) has no call report, and must not count as passed.
        outcome = self.state.outcomes.setdefault(
            report.nodeid, TestOutcome(report.nodeid, outcome="unknown")
        )
        outcome.duration += report.duration
        if report.when == "call":
            outcome.call_duration = report.duration
        if report.when == "call" and report.passed and outcome.outcome == "unknown":
            outcome.outcome = "passed"
        if report.failed:
            first_failure = outcome.outcome not in ("failed", "error")
            if first_failure:
                outcome.outcome = "failed" if report.when == "call" else "error"
                outcome.longrepr = report.longreprtext
                outcome.failure = _failure_of(report)
            outcome.sections.extend(
                (title, text)
                for title, text in report.sections
                if title.startswith(evidence.SECTION_PREFIX)
            )
        elif report.skipped and outcome.outcome in ("passed", "unknown"):
            outcome.outcome = "skipped"
            outcome.skip_reason = _skip_reason(report)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Controller (or only process): sweep every namespace of this run that is left (Ctrl-C,
    crashed workers), then write report.json and report.html, once."""
    config = session.config
    state = config.stash[STATE_KEY]
    if state.is_worker:
        return
    log = make_log(config, state)
    cluster_info = state.read_cluster()
    if cluster_info is not None and not state.settings.keep_namespaces:
        config.stash[_SWEPT_KEY] = _final_sweep(state, cluster_info, log)
    if config.option.collectonly:
        return
    cluster_error = state.read_cluster_error()
    if cluster_info is None and cluster_error is None and not state.has_records():
        # No test used a cluster: the report directory keeps the last cluster run's report
        # (the demo) instead of a page where every behaviour says "not run".
        return
    written = report.write(state, cluster_info, exitstatus, cluster_error)
    config.stash[_REPORTS_KEY] = [str(path) for path in written]


def _final_sweep(
    state: SessionState, cluster_info: dict[str, Any], log: Callable[[str], None]
) -> list[str]:
    """Delete what is left of this run's namespaces; bounded, and never raising."""
    kubeconfig = Path(cluster_info["kubeconfig"]) if cluster_info.get("kubeconfig") else None
    if kubeconfig is not None and not kubeconfig.exists():
        return []  # the provider removed its cluster (and kubeconfig) already
    try:
        kube, _ = connect(kubeconfig, cluster_info.get("context"), timeout_s=SWEEP_CONNECT_S)
        return namespaces.sweep(kube, naming.run_selector(state.run_id), log)
    except (ClusterError, KubeError, KubeconfigError) as error:
        log(f"final sweep of run {state.run_id} failed: {error}")
        return []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The cluster that was used, what was swept or kept, and where the reports are."""
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.is_worker:
        return
    lines: list[str] = []
    cluster_info = state.read_cluster()
    if cluster_info is not None:
        facts = ClusterFacts.from_dict(cluster_info.get("facts", {}))
        lines.append(f"{cluster_info.get('describe')}: {facts.summary()}")
    deselected: list[str] = config.stash.get(_DESELECTED_KEY, [])
    lines += deselected
    if parallel_workers(config) > 1 and state.settings.cluster is not None:
        lines.append(
            f"tests marked {ALONE!r} (they restart the API server) do not run under -n: run them "
            f"on their own, `pytest --cluster={state.settings.cluster} -m {ALONE}`"
        )
    swept = config.stash.get(_SWEPT_KEY, [])
    if swept:
        lines.append(
            f"deleted {len(swept)} leftover namespace(s) of run {state.run_id}: {', '.join(swept)}"
        )
    if state.settings.keep_namespaces and cluster_info is not None:
        lines.append(
            f"kept namespaces: kubectl get namespaces -l {naming.RUN_ID_LABEL}={state.run_id}"
        )
    cluster_error = state.read_cluster_error()
    if cluster_info is None and cluster_error is not None:
        lines.append(
            f"--cluster={cluster_error.get('provider')} could not be used: "
            f"{cluster_error.get('error')}"
        )
    for path in config.stash.get(_REPORTS_KEY, []):
        lines.append(f"report: {path}")
    if not config.stash.get(_REPORTS_KEY, []) and not config.option.collectonly:
        lines.append(
            f"no test used a cluster: no report.html or report.json written to "
            f"{state.settings.report_dir} (the report there is still the last cluster run's)"
        )
    if lines:
        terminalreporter.write_sep("-", "kube-alive")
        for line in lines:
            terminalreporter.write_line(line)

"""The plugin's options and hooks, through inner pytest runs (no cluster anywhere)."""

import fnmatch
import importlib.metadata
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

PLUGIN = (
    "-p",
    "suite.plugin",
    "-p",
    "no:cacheprovider",
    # The plugin (an entry point) is imported before pytester's inner run can rewrite it.
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)

E2E_TESTS = """
import pytest

@pytest.fixture
def deployed(cluster):
    return cluster

def test_direct(cluster):
    pass

def test_transitive(deployed):
    pass

def test_plain():
    pass
"""


@pytest.fixture(autouse=True)
def not_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KUBE_ALIVE_RUN_ID", raising=False)


def test_help_lists_the_group_and_every_cluster_choice(pytester):
    result = pytester.runpytest(*PLUGIN, "--help")
    out = " ".join(result.stdout.str().split())
    assert "kube-alive:" in out
    for text in (
        "--cluster={existing,kind,local}",
        "existing: any running cluster",
        "kind: a kind cluster",
        "local: the single-node cluster",
        "--image-registry",
        "--keep-cluster",
        "--keep-namespaces",
        "--report-dir",
        "--fail-on-skip",
        "--kubeconfig",
        "--context",
    ):
        assert text in out


def test_bogus_cluster_is_a_usage_error_listing_the_choices(pytester):
    result = pytester.runpytest(*PLUGIN, "--cluster=bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--cluster: invalid choice: 'bogus' (choose from *existing*kind*local*)"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cluster=local", "--image-registry=reg:5000"],
            "--image-registry does not go with --cluster=local",
        ),
        (["--context=pi"], "--context needs --cluster"),
        (["--image-registry=reg"], "--image-registry needs --cluster"),
        (["--cluster=kind", "--context=x"], "--context does not go with --cluster=kind"),
        (
            ["--cluster=existing", "--kubeconfig=/no/such/file"],
            "--kubeconfig=/no/such/file: no such file",
        ),
        (["--cluster=existing", "--image-registry=https://reg"], "without scheme"),
        (["--keep-cluster"], "--keep-cluster needs --cluster=kind"),
        (["--cluster=local", "--keep-cluster"], "--keep-cluster needs --cluster=kind"),
        (["--cluster=existing", "--keep-cluster"], "--keep-cluster needs --cluster=kind"),
    ],
)
def test_bad_combinations_are_usage_errors(pytester, args, message):
    result = pytester.runpytest(*PLUGIN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def usage_error_line(result):
    """The one line a usage error prints (pytest's `ERROR: ...`), checking there is no other."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.str().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    return lines[0]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--report-dir=/proc/kube-alive-reports"],
            # root passes every permission check: only trying to create it tells (here: ENOENT)
            "--report-dir=/proc/kube-alive-reports: cannot * /proc*; name * directory*",
        ),
        (
            ["--report-dir="],
            "--report-dir= is empty: give a directory, or leave the option out for reports/",
        ),
        (
            ["--cluster=existing", "--kubeconfig="],
            "--kubeconfig= is empty: give a kubeconfig file, or leave the option out for "
            "$KUBECONFIG, then ~/.kube/config",
        ),
        (
            ["--cluster=existing", "--kubeconfig={dir}"],
            "--kubeconfig={dir}: is a directory; give the kubeconfig file (e.g. {dir}/config)",
        ),
        (
            ["--cluster=existing", "--kubeconfig={file}", "--image-registry=my reg:abc"],
            "--image-registry='my reg:abc': not a registry HOST[[]:PORT][[]/PATH] (DNS name or "
            "IP, numeric port, lower-case path), e.g. 192.168.1.10:5000 or registry.example/team",
        ),
        (
            ["--cluster=existing", "--kubeconfig={file}", "--kind-node-image=kindest/node:x"],
            "--kind-node-image goes with --cluster=kind only (the other providers create no "
            "kind nodes)",
        ),
        (
            ["--cluster=local", "--kind-node-image=kindest/node:x"],
            "--kind-node-image goes with --cluster=kind only (the other providers create no "
            "kind nodes)",
        ),
    ],
    ids=[
        "report-dir-unwritable",
        "report-dir-empty",
        "kubeconfig-empty",
        "kubeconfig-directory",
        "image-registry-not-a-registry",
        "kind-node-image-with-existing",
        "kind-node-image-with-local",
    ],
)
def test_bad_input_is_one_usage_error_line_at_configure_time(pytester, monkeypatch, args, line):
    pytester.makepyfile(USES_A_CLUSTER)
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    # An empty --kubeconfig= must not fall back to this one.
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    (pytester.path / "kube").mkdir()
    paths = {"dir": "kube", "file": str(kubeconfig)}
    result = pytester.runpytest(*PLUGIN, *[arg.format(**paths) for arg in args])
    assert fnmatch.fnmatchcase(
        usage_error_line(result), f"ERROR: kube-alive: {line.format(**paths)}"
    )
    assert not (pytester.path / "reports").exists()


def test_the_report_dir_probe_removes_what_it_made(tmp_path):
    from suite.settings import report_dir_problem

    assert report_dir_problem(tmp_path / "a" / "b" / "reports") is None
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    assert report_dir_problem(tmp_path / "kept") is None
    assert list((tmp_path / "kept").iterdir()) == []


@pytest.mark.parametrize("run_id", ["MyRun", "my_run"])
def test_a_run_id_from_the_environment_that_cannot_name_namespaces_is_one_line(
    pytester, monkeypatch, run_id
):
    pytester.makepyfile("def test_ok():\n    pass\n")
    monkeypatch.setenv("KUBE_ALIVE_RUN_ID", run_id)
    result = pytester.runpytest(*PLUGIN)
    assert usage_error_line(result) == (
        f"ERROR: kube-alive: KUBE_ALIVE_RUN_ID='{run_id}': expected 1-12 characters of [a-z0-9] "
        "(it goes into namespace names, which are lower-case DNS labels)"
    )


def test_an_image_registry_with_a_port_and_path_is_accepted(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    for registry in ("192.168.1.10:5000", "registry.example/team/sub", "[::1]:5000", "Reg-1.lan"):
        result = pytester.runpytest(
            *PLUGIN,
            "--cluster=existing",
            f"--kubeconfig={kubeconfig}",
            f"--image-registry={registry}",
            "--co",
        )
        assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_tests_using_the_cluster_are_marked_e2e_and_deselectable(pytester):
    pytester.makepyfile(E2E_TESTS)
    result = pytester.runpytest(*PLUGIN, "-m", "not e2e")
    result.assert_outcomes(passed=1, deselected=2)


def test_without_a_cluster_e2e_tests_are_skipped_naming_the_flag(pytester):
    pytester.makepyfile(E2E_TESTS)
    result = pytester.runpytest(*PLUGIN, "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*needs a cluster: pass --cluster={existing,kind,local}*"])
    result.stdout.fnmatch_lines(["kube-alive: no --cluster given*they are skipped*"])


@pytest.mark.parametrize("how", ["env", "flag"])
def test_in_ci_a_skipped_e2e_test_is_a_failure(pytester, monkeypatch, how):
    pytester.makepyfile(
        E2E_TESTS
        + """
def test_skips_itself(cluster):
    pytest.skip("no metrics API (v1beta1.metrics.k8s.io): install metrics-server")

def test_plain_skip_is_fine():
    pytest.skip("not an e2e test")
"""
    )
    args = list(PLUGIN)
    if how == "env":
        monkeypatch.setenv("CI", "true")
    else:
        args.append("--fail-on-skip")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, errors=3, skipped=1)
    because = "CI=true" if how == "env" else "--fail-on-skip"
    result.stdout.fnmatch_lines(
        [f"*a skipped e2e test is a failure here ({because}): needs a cluster*"]
    )


USES_A_CLUSTER = """
from suite.session import STATE_KEY

def test_ok(request):
    # What the `cluster` fixture leaves for the controller once it reached a cluster.
    request.config.stash[STATE_KEY].write_cluster({"provider": "existing", "describe": "fake"})
"""


def test_a_run_without_a_cluster_writes_nothing_into_the_report_dir(pytester):
    pytester.makepyfile(E2E_TESTS)
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "report.html").write_text("the last cluster run's demo")
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, skipped=2)
    assert [p.name for p in (pytester.path / "reports").iterdir()] == ["report.html"]
    assert (pytester.path / "reports" / "report.html").read_text() == "the last cluster run's demo"
    result.stdout.fnmatch_lines(
        ["no test used a cluster: no report.html or report.json written to *"]
    )


def test_collect_only_writes_nothing(pytester):
    pytester.makepyfile(E2E_TESTS)
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    result = pytester.runpytest(
        *PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}", "--co", "-q"
    )
    assert result.ret == pytest.ExitCode.OK
    assert not (pytester.path / "reports").exists()
    assert "no test used a cluster" not in result.stdout.str()


def test_junit_defaults_into_the_report_dir_and_reports_are_written(pytester):
    pytester.makepyfile(USES_A_CLUSTER)
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    cluster = ("--cluster=existing", f"--kubeconfig={kubeconfig}")
    result = pytester.runpytest(*PLUGIN, *cluster)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "junit.xml").is_file()
    document = json.loads((pytester.path / "reports" / "report.json").read_text())
    assert document["tests"][0]["outcome"] == "passed"
    assert (pytester.path / "reports" / "report.html").read_text().startswith("<!doctype html>")
    custom = pytester.runpytest(*PLUGIN, *cluster, "--report-dir=out", "--junitxml=elsewhere.xml")
    custom.assert_outcomes(passed=1)
    assert (pytester.path / "elsewhere.xml").is_file()
    assert not (pytester.path / "out" / "junit.xml").exists()
    assert (pytester.path / "out" / "report.json").is_file()


def test_report_settings_come_from_the_ini_file_and_the_command_line_wins(pytester):
    pytester.makepyfile(USES_A_CLUSTER + E2E_TESTS)
    pytester.makefile(
        ".toml",
        pyproject=(
            "[tool.pytest.ini_options]\n"
            'kube_alive_report_dir = "from-ini"\n'
            "kube_alive_fail_on_skip = true\n"
            "kube_alive_keep_namespaces = true\n"
        ),
    )
    result = pytester.runpytest(*PLUGIN)
    # fail_on_skip from the ini: the two e2e tests (skipped without --cluster) fail.
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*a skipped e2e test is a failure here (kube_alive_fail_on_skip*"])
    assert (pytester.path / "from-ini" / "report.json").is_file()
    again = pytester.runpytest(*PLUGIN, "--report-dir=from-cli", "-m", "not e2e")
    again.assert_outcomes(passed=2, deselected=2)
    assert (pytester.path / "from-cli" / "report.json").is_file()


def test_a_report_dir_that_is_a_file_is_a_usage_error_at_once(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    (pytester.path / "a-file").write_text("")
    result = pytester.runpytest(*PLUGIN, "--report-dir=a-file")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--report-dir=a-file: exists and is not a directory" in result.stderr.str()
    beneath = pytester.runpytest(*PLUGIN, "--report-dir=a-file/reports")
    assert beneath.ret == pytest.ExitCode.USAGE_ERROR
    assert "a-file is not a directory" in beneath.stderr.str()


def test_keep_cluster_goes_with_kind(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "--cluster=kind", "--keep-cluster", "--collect-only")
    assert result.ret == pytest.ExitCode.OK


def test_header_names_the_cluster_choice(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "--cluster=local", "--collect-only")
    result.stdout.fnmatch_lines(
        ["kube-alive: --cluster=local: the single-node cluster*", "kube-alive: run id *"]
    )


def unreachable_kubeconfig(path):
    path.write_text(
        """
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: nobody
  user: {token: "not-a-secret"}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
"""
    )
    return path


def test_collect_only_never_touches_the_cluster(pytester):
    pytester.makepyfile(E2E_TESTS)
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    result = pytester.runpytest(
        *PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}", "--collect-only", "-q"
    )
    assert result.ret == pytest.ExitCode.OK
    assert "cannot reach" not in result.stdout.str()


def test_an_unreachable_cluster_is_a_clear_error_within_15s(pytester):
    pytester.makepyfile(E2E_TESTS)
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    started = time.monotonic()
    result = pytester.runpytest(*PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}")
    assert time.monotonic() - started < 15
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*kube-alive --cluster=existing: cannot reach the API server https://127.0.0.1:1 "
            "(context nowhere, kubeconfig *kubeconfig)*"
        ]
    )
    result.stdout.fnmatch_lines(["--cluster=existing could not be used: cannot reach*"])
    document = json.loads((pytester.path / "reports" / "report.json").read_text())
    assert document["cluster"] is None
    assert document["cluster_error"]["provider"] == "existing"
    assert "cannot reach the API server" in document["cluster_error"]["error"]
    html = (pytester.path / "reports" / "report.html").read_text()
    assert "<title>kube-alive FAILED: --cluster=existing could not be used;" in html
    assert "used no cluster" not in html


def test_an_unknown_context_is_a_clear_error(pytester):
    pytester.makepyfile("def test_direct(cluster):\n    pass\n")
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    result = pytester.runpytest(
        *PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}", "--context=pi"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot use context 'pi' of *kubeconfig*"])


def test_xdist_workers_share_the_controllers_run_id(pytester):
    pytester.makepyfile(
        """
import pytest
from suite.session import STATE_KEY

@pytest.mark.parametrize("n", range(4))
def test_run_id(request, n, tmp_path_factory):
    state = request.config.stash[STATE_KEY]
    out = tmp_path_factory.getbasetemp().parent.parent / f"run-{n}.txt"
    out.write_text(f"{state.run_id} {state.worker} {state.shared_dir}")
    state.write_cluster({"provider": "existing", "describe": "fake"})
"""
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=4)
    report = json.loads((pytester.path / "reports" / "report.json").read_text())
    lines = [path.read_text().split() for path in pytester.path.glob("run-*.txt")]
    assert len(lines) == 4
    assert {line[0] for line in lines} == {report["run_id"]}
    assert {line[1] for line in lines} <= {"gw0", "gw1"}
    assert len({line[2] for line in lines}) == 1
    assert len(report["tests"]) == 4


@pytest.mark.parametrize("form", ["space", "equals"])
def test_path_options_take_existing_paths_in_both_forms_from_any_directory(tmp_path, form):
    """The plugin is an installed entry point, so pytest knows its options before it looks for
    test paths: `--kubeconfig FILE` is the option's value, not a test path (nor the rootdir)."""
    here = tmp_path / "elsewhere"
    here.mkdir()
    (here / "test_one.py").write_text("def test_one():\n    pass\n")
    kubeconfig = unreachable_kubeconfig(tmp_path / "k.yaml")
    report_dir = tmp_path / "existing-reports"
    report_dir.mkdir()
    pairs = [("--kubeconfig", kubeconfig), ("--report-dir", report_dir)]
    options = [
        part
        for flag, value in pairs
        for part in ([flag, str(value)] if form == "space" else [f"{flag}={value}"])
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--cluster=existing", *options, "--co", "-q"],
        cwd=here,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_one.py::test_one" in result.stdout
    assert "unrecognized arguments" not in result.stderr
    assert list(report_dir.iterdir()) == []  # --co writes nothing


def test_the_plugin_is_registered_once_through_its_entry_point():
    (entry,) = [
        ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.value == "suite.plugin"
    ]
    # Named after its module, so the root conftest.py's `pytest_plugins` finds it registered.
    assert entry.name == "suite.plugin"
    conftest = (Path(__file__).resolve().parents[2] / "conftest.py").read_text()
    assert 'pytest_plugins = ["suite.plugin"]' in conftest


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('"just a string"\n', "is not a kubeconfig: it holds a YAML str, not a mapping"),
        ("- a\n- list\n", "is not a kubeconfig: it holds a YAML list"),
        ("clusters: [\n", "is not valid YAML"),
    ],
)
def test_a_kubeconfig_that_is_not_a_mapping_is_one_clear_line(pytester, content, message):
    pytester.makepyfile("def test_direct(cluster):\n    pass\n")
    kubeconfig = pytester.path / "k.yaml"
    kubeconfig.write_text(content)
    result = pytester.runpytest(*PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*kube-alive --cluster=existing: *k.yaml {message}*"])
    assert "item assignment" not in result.stdout.str()


def test_the_default_kubeconfig_files_are_checked_too(tmp_path):
    from suite.preflight import kubeconfig_files, kubeconfig_problem

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("apiVersion: v1\nkind: Config\n")
    bad.write_text("oops\n")
    environ = {"KUBECONFIG": f"{good}:{tmp_path / 'absent'}:{bad}"}
    assert kubeconfig_files(None, environ) == [good, tmp_path / "absent", bad]
    assert kubeconfig_problem(None, environ) == (
        f"the kubeconfig {bad} is not a kubeconfig: it holds a YAML str, not a mapping with "
        "clusters, users and contexts (kubectl config view --raw writes one)"
    )
    assert kubeconfig_problem(None, {"KUBECONFIG": str(good)}) is None
    assert kubeconfig_problem(tmp_path / "absent", {}) is None  # the client library says so


BACKSTOP_CONFTEST = """
import types

import pytest


@pytest.fixture(scope="session")
def cluster():
    return types.SimpleNamespace()
"""


def test_every_e2e_test_gets_a_timeout_backstop_stated_by_its_module(pytester):
    pytester.makeconftest(BACKSTOP_CONFTEST)
    pytester.makepyfile(
        test_stated="""
import time

BACKSTOP_S = 0.5

def test_hangs(cluster):
    time.sleep(5)

def test_unit():
    pass
""",
        test_default="""
from suite.plugin import DEFAULT_BACKSTOP_S

def test_default(cluster, request):
    marker = request.node.get_closest_marker("timeout")
    assert marker.args == (DEFAULT_BACKSTOP_S,)
    assert marker.kwargs == {"func_only": True}
""",
    )
    started = time.monotonic()
    result = pytester.runpytest(*PLUGIN, "--cluster=existing", "-p", "timeout")
    assert time.monotonic() - started < 4
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>0.5s) from pytest-timeout*"])


def test_every_scenario_module_states_its_backstop():
    scenarios = Path(__file__).resolve().parents[1] / "scenarios"
    missing = [
        path.name
        for path in sorted(scenarios.glob("test_*.py"))
        if "BACKSTOP_S = " not in path.read_text()
    ]
    assert missing == [], f"scenario modules without BACKSTOP_S (see suite/plugin.py): {missing}"


ONLY_ON_TESTS = """
import pytest

@pytest.mark.only_on("local", reason="smoke tests of the local cluster itself")
def test_local_only():
    pass

def test_anywhere():
    pass
"""


@pytest.mark.parametrize("chosen", ["kind", "existing"])
def test_a_test_meant_for_another_cluster_is_deselected_with_its_reason(pytester, chosen):
    # (not named `cluster`: that would make this test itself an e2e test)
    pytester.makepyfile(ONLY_ON_TESTS)
    result = pytester.runpytest(*PLUGIN, f"--cluster={chosen}", "--co", "-q")
    result.stdout.fnmatch_lines(["*test_anywhere*"])
    result.stdout.no_fnmatch_line("*test_local_only*")
    result.stdout.fnmatch_lines(
        [
            f"deselected 1 test(s) not meant for --cluster={chosen}: "
            "smoke tests of the local cluster itself"
        ]
    )


def test_a_test_meant_for_the_chosen_cluster_is_kept(pytester):
    pytester.makepyfile(ONLY_ON_TESTS)
    result = pytester.runpytest(*PLUGIN, "--cluster=local", "--co", "-q")
    result.stdout.fnmatch_lines(["*test_local_only*", "*test_anywhere*"])
    result.stdout.no_fnmatch_line("*deselected*")


def _report(when, outcome, longrepr=None):
    return pytest.TestReport("t.py::test_x", ("t.py", 1, "test_x"), {}, outcome, longrepr, when)


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
        # Ctrl-C mid-test: setup passed, no call report, the fixtures torn down.
        ([("setup", "passed"), ("teardown", "passed")], "unknown"),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], "failed"),
        ([("setup", "failed"), ("teardown", "passed")], "error"),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error"),
    ],
)
def test_a_test_counts_as_passed_only_when_its_body_passed(phases, expected):
    from types import SimpleNamespace

    from suite.plugin import _OutcomeCollector

    state = SimpleNamespace(outcomes={})
    collector = _OutcomeCollector(state)
    for when, outcome in phases:
        collector.pytest_runtest_logreport(
            _report(when, outcome, "boom" if outcome == "failed" else None)
        )
    assert state.outcomes["t.py::test_x"].outcome == expected


ALONE_TESTS = """
import pytest

@pytest.mark.alone(reason="it restarts kube-apiserver")
def test_restarts_the_api_server():
    pass

def test_shares_the_cluster():
    pass
"""


def test_a_test_that_needs_the_cluster_alone_is_deselected_under_xdist(pytester, monkeypatch):
    pytester.makepyfile(ALONE_TESTS)
    # What an xdist worker sees (workers collect): two workers share the cluster.
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    result = pytester.runpytest(*PLUGIN, "--cluster=local", "--co", "-q")
    result.stdout.fnmatch_lines(["*test_shares_the_cluster*"])
    result.stdout.no_fnmatch_line("*test_restarts_the_api_server*")
    result.stdout.fnmatch_lines(["*marked 'alone'*pytest --cluster=local -m alone*"])


def test_a_test_that_needs_the_cluster_alone_runs_when_nothing_is_beside_it(pytester, monkeypatch):
    pytester.makepyfile(ALONE_TESTS)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    result = pytester.runpytest(*PLUGIN, "--cluster=local", "--co", "-q")
    result.stdout.fnmatch_lines(["*test_restarts_the_api_server*", "*test_shares_the_cluster*"])
    result.stdout.no_fnmatch_line("*marked 'alone'*")


FAILING_THREE_WAYS = """
import pytest
from suite import claims
from suite.session import STATE_KEY

@pytest.fixture
def broken():
    raise RuntimeError("no namespace: kube-proxy")

def test_behaviour(request):
    request.config.stash[STATE_KEY].write_cluster({"provider": "existing", "describe": "fake"})
    # kube-proxy in a comment and in the source must never count
    with claims.behaviour():
        assert 1 == 2, "the restart never came: the kubelet did not act"

def test_precondition():
    assert False, "the prober never came up (kube-proxy?)"

def test_setup(broken):
    pass
"""


def test_a_failed_test_records_the_kind_of_failure_and_the_exceptions_own_message(pytester):
    pytester.makepyfile(FAILING_THREE_WAYS)
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    result = pytester.runpytest(*PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}")
    result.assert_outcomes(failed=2, errors=1)
    document = json.loads((pytester.path / "reports" / "report.json").read_text())
    failures = {test["nodeid"].rsplit("::", 1)[-1]: test["failure"] for test in document["tests"]}
    assert failures["test_behaviour"] == {
        "kind": "behaviour",
        "message": "the restart never came: the kubelet did not act",
        "exception": "ClaimFailed",
    }
    assert failures["test_precondition"]["kind"] == "precondition"
    assert failures["test_precondition"]["message"] == "the prober never came up (kube-proxy?)"
    assert failures["test_setup"] == {
        "kind": "setup",
        "message": "no namespace: kube-proxy",
        "exception": "RuntimeError",
    }


LOGS_A_LINE = """
from suite.session import STATE_KEY, make_log

def test_{name}(request):
    state = request.config.stash[STATE_KEY]
    make_log(request.config, state)("a line from {name}")
    state.write_cluster({{"provider": "existing", "describe": "fake"}})
"""


def test_each_run_starts_a_fresh_log_and_keeps_the_previous_one_once(pytester):
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    cluster = ("--cluster=existing", f"--kubeconfig={kubeconfig}")
    log = pytester.path / "reports" / "kube-alive.log"
    log.parent.mkdir()
    log.write_text("the run before last\n")
    for name in ("first", "second"):
        pytester.makepyfile(test_it=LOGS_A_LINE.format(name=name))
        pytester.runpytest(*PLUGIN, *cluster).assert_outcomes(passed=1)
    assert "a line from second" in log.read_text()
    assert "first" not in log.read_text()
    previous = log.with_name("kube-alive.log.1").read_text()
    assert "a line from first" in previous
    assert "the run before last" not in previous
    # Without a cluster (the unit tests) the logs are left alone.
    pytester.runpytest(*PLUGIN, "-m", "not e2e")
    assert "a line from second" in log.read_text()


def test_xdist_workers_append_to_the_log_the_controller_started(pytester, monkeypatch):
    # The inner run imports this checkout's plugin, not the one an editable install points at.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    log = pytester.path / "reports" / "kube-alive.log"
    log.parent.mkdir()
    log.write_text("the previous run\n")
    pytester.makepyfile(
        test_a=LOGS_A_LINE.format(name="a"),
        test_b=LOGS_A_LINE.format(name="b"),
    )
    result = pytester.runpytest_subprocess(
        *PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}", "-n", "2"
    )
    result.assert_outcomes(passed=2)
    text = log.read_text()
    assert "a line from a" in text
    assert "a line from b" in text
    assert "the previous run" not in text
    assert log.with_name("kube-alive.log.1").read_text() == "the previous run\n"


def test_junit_xml_is_replaced_not_rewritten_in_place(pytester):
    pytester.makepyfile(USES_A_CLUSTER)
    kubeconfig = unreachable_kubeconfig(pytester.path / "kubeconfig")
    junit = pytester.path / "reports" / "junit.xml"
    junit.parent.mkdir()
    junit.write_text("<old/>")
    with junit.open() as reader:
        result = pytester.runpytest(*PLUGIN, "--cluster=existing", f"--kubeconfig={kubeconfig}")
        result.assert_outcomes(passed=1)
        assert reader.read() == "<old/>"
    assert "<testsuite" in junit.read_text()
    result.stdout.fnmatch_lines([f"*generated xml file: {junit}*"])
    assert sorted(p.name for p in junit.parent.iterdir() if p.name.endswith(".tmp")) == []

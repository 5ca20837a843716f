"""The plugin's options and hooks, through inner pytest runs (no cluster anywhere)."""

import json
import time

import pytest

PLUGIN = ("-p", "suite.plugin", "-p", "no:cacheprovider")

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


def test_junit_defaults_into_the_report_dir_and_reports_are_written(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "junit.xml").is_file()
    document = json.loads((pytester.path / "reports" / "report.json").read_text())
    assert document["tests"][0]["outcome"] == "passed"
    assert (pytester.path / "reports" / "report.html").read_text().startswith("<!doctype html>")
    custom = pytester.runpytest(*PLUGIN, "--report-dir=out", "--junitxml=elsewhere.xml")
    custom.assert_outcomes(passed=1)
    assert (pytester.path / "elsewhere.xml").is_file()
    assert not (pytester.path / "out" / "junit.xml").exists()
    assert (pytester.path / "out" / "report.json").is_file()


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

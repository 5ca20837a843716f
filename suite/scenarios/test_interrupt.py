"""Ctrl-C in the middle of a scenario leaves no test namespace behind.

A child pytest runs the load-balancing scenario against the same cluster with a known run id;
once its namespace has pods, it gets SIGINT (what Ctrl-C sends). pytest turns that into
KeyboardInterrupt, tears fixtures down and runs the session-finish sweep; the namespaces of the
child run must all be deleting when it exits, and gone soon after.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from suite import namespaces, naming
from suite.behaviours.load_balancing import BEHAVIOUR as LOAD_BALANCING
from suite.cluster import Cluster
from suite.kube import NAMESPACES, PODS, is_terminating, list_objects, name_of
from suite.session import STATE_KEY
from suite.waiting import Done, Failed, Pending, Source, State, Verdict, wait_until
from suite.waits import wait_namespaces_gone

REPO = Path(__file__).resolve().parents[2]
CHILD_SCENARIO = LOAD_BALANCING.path
#: The child starts pytest, checks the (running) cluster, creates its namespace and deploys:
#: tens of seconds; image loading for its own run is cached.
STARTED_DEADLINE_S = 180.0
#: After SIGINT the child deletes its namespaces (an API call each) and writes its report.
EXIT_DEADLINE_S = 60.0
#: Namespace deletion: pods get their grace period (10 s for getip and prober), then the
#: namespace controller removes the rest.
GONE_DEADLINE_S = 120.0
#: pytest-timeout backstop (suite/plugin.py): the child run starts, exits and its namespaces go,
#: each within its deadline above, plus a margin.
BACKSTOP_S = STARTED_DEADLINE_S + EXIT_DEADLINE_S + GONE_DEADLINE_S + 60.0


def _child_args(cluster: Cluster, config: pytest.Config, report_dir: Path) -> list[str]:
    settings = config.stash[STATE_KEY].settings
    args = [
        sys.executable,
        "-m",
        "pytest",
        CHILD_SCENARIO,
        f"--cluster={cluster.provider.name}",
        f"--report-dir={report_dir}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    if settings.kubeconfig:
        args.append(f"--kubeconfig={settings.kubeconfig}")
    if settings.context:
        args.append(f"--context={settings.context}")
    if settings.image_registry:
        args.append(f"--image-registry={settings.image_registry}")
    return args


def _default_sigint() -> None:
    # A pytest started in the background by a non-interactive shell inherits SIGINT ignored, and
    # its child would too (Python installs no KeyboardInterrupt handler then): give the child
    # Ctrl-C's default disposition, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_run_leaves_no_test_namespace(
    cluster: Cluster, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    """SIGINT mid-scenario: the child exits as interrupted, having asked for the deletion of
    every namespace of its run, and they are gone within the stated time."""
    run_id = "sigint" + secrets.token_hex(3)
    selector = naming.run_selector(run_id)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))
    }
    env[naming.RUN_ID_ENV] = run_id
    output = tmp_path / "child.log"
    with output.open("w") as sink:
        # Popen, not run(): the child must be signalled while it runs. Bounded by the waits below.
        child = subprocess.Popen(
            _child_args(cluster, pytestconfig, tmp_path / "reports"),
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_sigint,
        )
    try:

        def mid_scenario(state: State) -> Verdict:
            if child.poll() is not None:
                return Failed(f"the child pytest exited with {child.returncode} before that")
            ours = set(state["namespaces"])
            pods = [p for p in state["pods"].values() if p["metadata"]["namespace"] in ours]
            if pods:
                return Done(sorted(ours))
            return Pending(f"{len(ours)} namespace(s) of run {run_id}, no pod yet")

        try:
            wait_until(
                cluster.kube,
                [
                    Source("namespaces", NAMESPACES, None, label_selector=selector),
                    Source(
                        "pods", PODS, None, label_selector="app.kubernetes.io/part-of=kube-alive"
                    ),
                ],
                mid_scenario,
                timeout_s=STARTED_DEADLINE_S,
                what=f"child pytest run {run_id}",
                where="the cluster",
                expected="a test namespace with pods (the scenario under way)",
            )
        except AssertionError as error:
            error.add_note(f"child output:\n{output.read_text()[-3000:]}")
            raise
        child.send_signal(signal.SIGINT)
        try:
            returncode = child.wait(timeout=EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the child pytest did not exit within {EXIT_DEADLINE_S:.0f}s of SIGINT")
        log = output.read_text()[-3000:]
        interrupted = int(pytest.ExitCode.INTERRUPTED)
        assert returncode == interrupted, (
            f"the child pytest exited with {returncode}, expected {interrupted} "
            f"(interrupted):\n{log}"
        )
        left, _ = list_objects(cluster.kube, NAMESPACES, label_selector=selector)
        alive = [name_of(ns) for ns in left if not is_terminating(ns)]
        assert not alive, f"namespaces of the interrupted run not being deleted: {alive}\n{log}"
        wait_namespaces_gone(cluster.kube, selector, timeout_s=GONE_DEADLINE_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        namespaces.sweep(cluster.kube, selector)

"""`python -m localcluster` commands that change the cluster run one at a time, and `up` leaves an
applied fault or variant alone. No root and no cluster: the commands' work is replaced by a
recorder, the lock is real (an flock), and its other holder is another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localcluster import __main__ as cli
from localcluster import api, cluster, config, faults

REPO = Path(config.__file__).resolve().parents[1]

HOLDER = """
import sys, time
from localcluster import api
with api._one_at_a_time("fault apply", print):
    print("held", flush=True)
    time.sleep(float(sys.argv[1]))
"""


@pytest.fixture
def paths(tmp_path, monkeypatch) -> config.Paths:
    monkeypatch.setenv("KUBE_ALIVE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KUBE_ALIVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KUBE_ALIVE_FAULT_LOCK", str(tmp_path / "fault.lock"))
    return config.Paths.default()


@pytest.fixture
def done(monkeypatch) -> list[str]:
    """What the commands did (their real work needs root and a cluster)."""
    calls: list[str] = []
    monkeypatch.setattr(cluster, "up", lambda paths, log: calls.append("up"))
    monkeypatch.setattr(cluster, "down", lambda paths, log: calls.append("down"))
    monkeypatch.setattr(api, "is_healthy", lambda: False)
    return calls


def hold_the_lock(seconds: float) -> subprocess.Popen[str]:
    """Another process in the middle of a command: it holds the lock for `seconds`."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(seconds)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_command_waits_saying_who_holds_the_lock_then_fails_in_one_line(
    paths, done, monkeypatch, capsys
):
    monkeypatch.setattr(api, "COMMAND_LOCK_WAIT_S", 1.0)
    holder = hold_the_lock(30)
    try:
        started = time.monotonic()
        assert cli.main(["down"]) == 1
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(10)
    assert done == []
    assert 1.0 <= waited < 10
    progress, error = capsys.readouterr().err.splitlines()
    assert f"waiting for the lock held by pid {holder.pid} (" in progress
    assert "-c import sys, time from localcluster import api" in progress
    assert progress.endswith(f"({paths.cache / api.COMMAND_LOCK}), at most 1s")
    assert error.startswith("localcluster down: localcluster down (one command at a time")
    assert f"the lock is still held by pid {holder.pid} (" in error
    assert error.endswith(f"after 1s ({paths.cache / api.COMMAND_LOCK}); try again once it is done")


def test_a_second_command_runs_once_the_first_is_done(paths, done, capsys):
    holder = hold_the_lock(1.0)
    try:
        started = time.monotonic()
        assert cli.main(["down"]) == 0
        # It got the lock only after the holder let go.
        assert time.monotonic() - started > 0.5
    finally:
        holder.kill()
        holder.wait(10)
    assert done == ["down"]
    assert "waiting for the lock held by pid" in capsys.readouterr().err


def test_every_command_that_changes_the_cluster_takes_the_lock(paths, monkeypatch, capsys):
    monkeypatch.setattr(api, "COMMAND_LOCK_WAIT_S", 0.2)
    monkeypatch.setattr(faults, "apply", lambda *a, **k: None)
    monkeypatch.setattr(faults, "apply_variant", lambda *a, **k: None)
    monkeypatch.setattr(faults, "clear", lambda *a, **k: True)
    monkeypatch.setattr(cluster, "up", lambda paths, log: None)
    monkeypatch.setattr(cluster, "down", lambda paths, log: None)
    holder = hold_the_lock(30)
    try:
        for argv in (
            ["up"],
            ["down"],
            ["fault", "apply", "hpa-controller-off"],
            ["fault", "clear"],
            ["variant", "apply", "hpa-sync-slow"],
            ["variant", "clear"],
        ):
            assert cli.main(argv) == 1, argv
            error = capsys.readouterr().err.splitlines()[-1]
            assert f"the lock is still held by pid {holder.pid} (" in error, argv
    finally:
        holder.kill()
        holder.wait(10)


def test_a_user_who_may_not_take_the_lock_is_told_to_use_sudo(paths, done, monkeypatch, capsys):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(api, "file_lock", denied)
    assert cli.main(["up"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"localcluster up: cannot take the lock {paths.cache / api.COMMAND_LOCK} as this user: "
        "the local cluster is root's, run it with sudo"
    )


@pytest.mark.parametrize(
    ("kind", "name"), [("fault", "hpa-controller-off"), ("variant", "hpa-sync-slow")]
)
def test_up_leaves_an_applied_change_and_says_how_to_clear_it(
    paths, done, monkeypatch, capsys, kind, name
):
    monkeypatch.setattr(api, "is_healthy", lambda: True)
    marker = paths.run / "fault.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"name": name, "kind": kind, "applied": 0}))
    assert cli.main(["up"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"localcluster up: {kind} {name} is applied (")
    assert f"`up` leaves it as it is: clear it with `python -m localcluster {kind} clear`" in line
    assert "`python -m localcluster up --restore`" in line
    assert marker.exists()
    assert done == []


def test_up_restore_starts_the_normal_cluster_over_an_applied_fault(paths, done, monkeypatch):
    monkeypatch.setattr(api, "is_healthy", lambda: True)
    marker = paths.run / "fault.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"name": "hpa-controller-off", "kind": "fault"}))
    # cluster.up clears the record (faults.clear, restart=False) before it starts anything.
    assert cli.main(["up", "--restore"]) == 0
    assert done == ["up"]


def test_up_on_a_healthy_cluster_without_a_change_says_so_and_starts_nothing(
    paths, done, monkeypatch, capsys
):
    monkeypatch.setattr(api, "is_healthy", lambda: True)
    assert cli.main(["up"]) == 0
    assert done == []
    assert "a healthy local cluster is running" in capsys.readouterr().err


def test_up_help_says_what_happens_to_an_applied_change(capsys):
    with pytest.raises(SystemExit):
        cli.main(["up", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--restore" in out
    assert "clear an applied fault or variant" in out

"""`python -m localcluster` on bad ground: answers in one line, never a traceback or a guess.

No root needed and no cluster touched: each test has a state directory of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster import __main__ as cli
from localcluster import config, processes

REPO = Path(config.__file__).resolve().parents[1]


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "KUBE_ALIVE_STATE_DIR": str(tmp_path / "state"),
        "KUBE_ALIVE_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "localcluster", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=REPO,
    )


@pytest.fixture
def sleeper(tmp_path):
    """A live process recorded as the cluster's kube-apiserver, in a state dir without pki/."""
    proc = subprocess.Popen(["/bin/sleep", "60"])
    run = tmp_path / "state" / "run"
    run.mkdir(parents=True)
    (run / "kube-apiserver.pid").write_text(f"{proc.pid}\n{os.path.realpath('/bin/sleep')}\n")
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def test_status_on_a_state_dir_without_certificates_says_so_in_its_line(tmp_path, sleeper):
    result = run_cli(tmp_path, "status")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("kube-apiserver")]
    assert str(sleeper.pid) in line
    assert f"cannot use the certificates in {tmp_path / 'state' / 'pki'}" in line
    assert "python3 -m localcluster down && python3 -m localcluster up" in line


def test_status_that_cannot_see_the_processes_says_it_cannot_tell(
    tmp_path, sleeper, monkeypatch, capsys
):
    """A non-root user may not read /proc/<pid>/exe of root's processes: that is not "stopped"."""
    monkeypatch.setenv("KUBE_ALIVE_STATE_DIR", str(tmp_path / "state"))

    def denied(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(processes.os, "readlink", denied)
    assert cli.main(["status"]) == 1
    out, err = capsys.readouterr()
    assert "stopped" not in out
    assert err.count("\n") == 1
    assert err.startswith(
        f"localcluster status: cannot tell whether kube-apiserver runs (pid {sleeper.pid} is "
        "another user's process); run it as root"
    )


def test_status_with_an_unreadable_pid_file_says_it_cannot_tell(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBE_ALIVE_STATE_DIR", str(tmp_path / "state"))
    original = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self.suffix == ".pid":
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    assert cli.main(["status"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("localcluster status: cannot tell whether etcd runs: ")
    assert "run it as root" in err


def test_kubeconfig_without_a_cluster_is_an_error_naming_the_fix(tmp_path):
    result = run_cli(tmp_path, "kubeconfig")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"localcluster kubeconfig: no kubeconfig at {tmp_path / 'state'}/"
    )
    assert "sudo python3 -m localcluster up" in result.stderr


def test_kubeconfig_of_a_running_cluster_is_printed(tmp_path):
    kubeconfig = config.Paths(state=tmp_path / "state", cache=tmp_path / "c").admin_kubeconfig
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text("apiVersion: v1\n")
    result = run_cli(tmp_path, "kubeconfig")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{kubeconfig}\n"

"""Unit tests of the arm64 proof's pure parts, and the proof itself in the local cluster's run.

The proof builds the arm64 image (a couple of minutes cold, cached afterwards) and needs root,
buildah, debootstrap and qemu-user-static. It runs in `pytest --cluster=local` (as .ci/run does)
or with KUBE_ALIVE_IMAGE_CHECKS=1, and is skipped with that reason anywhere else:

    KUBE_ALIVE_IMAGE_CHECKS=1 pytest localcluster/tests/test_multiarch.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster import build, config, multiarch
from localcluster.util import ClusterError, file_lock

ENABLED_ENTRY = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


@pytest.fixture
def paths(tmp_path: Path) -> config.Paths:
    """A state and cache folder of the test's own."""
    return config.Paths(state=tmp_path / "state", cache=tmp_path / "cache")


def test_a_registration_as_the_kernel_shows_it_is_parsed():
    entry = multiarch.parse_binfmt_entry(ENABLED_ENTRY)
    assert entry == multiarch.BinfmtEntry(
        enabled=True, interpreter="/usr/libexec/qemu-binfmt/aarch64-binfmt-P", flags="PF"
    )
    assert multiarch.binfmt_problem(entry) is None


def test_a_disabled_registration_is_reported_as_such():
    entry = multiarch.parse_binfmt_entry(ENABLED_ENTRY.replace("enabled", "disabled", 1))
    assert not entry.enabled
    assert "disabled" in (multiarch.binfmt_problem(entry) or "")


def test_a_registration_without_fix_binary_cannot_serve_a_chroot():
    entry = multiarch.parse_binfmt_entry(ENABLED_ENTRY.replace("flags: PF", "flags: P"))
    problem = multiarch.binfmt_problem(entry) or ""
    assert "F (fix binary)" in problem
    assert "update-binfmts --enable qemu-aarch64" in problem


def test_a_missing_registration_is_a_problem():
    assert "not registered" in (multiarch.binfmt_problem(None) or "")


@pytest.fixture
def fake_binfmt(tmp_path, monkeypatch):
    """A binfmt_misc folder of the test's own, and a `run` that records and fakes mount and
    update-binfmts the way the kernel would answer."""
    folder = tmp_path / "binfmt_misc"
    folder.mkdir()
    calls: list[list[str]] = []

    def fake_run(argv, **_kwargs):
        argv = [str(a) for a in argv]
        calls.append(argv)
        if argv[0] == "mount":
            (folder / "status").write_text("enabled\n")
        elif argv[:2] == ["update-binfmts", "--enable"]:
            (folder / multiarch.BINFMT_NAME).write_text(ENABLED_ENTRY)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(multiarch, "run", fake_run)
    monkeypatch.setattr(multiarch.shutil, "which", lambda name: f"/usr/bin/{name}")
    return folder, calls


def test_binfmt_is_mounted_and_qemu_registered_when_neither_is_there(fake_binfmt):
    folder, calls = fake_binfmt
    entry = multiarch.ensure_binfmt(lambda _m: None, folder)
    assert entry.enabled
    assert entry.flags == "PF"
    assert calls == [
        ["mount", "-t", "binfmt_misc", "binfmt_misc", str(folder)],
        ["update-binfmts", "--enable", "qemu-aarch64"],
    ]


def test_binfmt_is_left_alone_when_qemu_is_already_registered(fake_binfmt):
    folder, calls = fake_binfmt
    (folder / "status").write_text("enabled\n")
    (folder / multiarch.BINFMT_NAME).write_text(ENABLED_ENTRY)
    multiarch.ensure_binfmt(lambda _m: None, folder)
    assert calls == []


def test_binfmt_without_fix_binary_fails_with_the_fix(fake_binfmt):
    folder, _calls = fake_binfmt
    (folder / "status").write_text("enabled\n")
    (folder / multiarch.BINFMT_NAME).write_text(ENABLED_ENTRY.replace("flags: PF", "flags: P"))
    with pytest.raises(ClusterError, match="fix binary"):
        multiarch.ensure_binfmt(lambda _m: None, folder)


def test_binfmt_without_qemu_installed_names_the_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(multiarch.shutil, "which", lambda _name: None)
    with pytest.raises(ClusterError, match="apt-get install qemu-user-static binfmt-support"):
        multiarch.ensure_binfmt(lambda _m: None, tmp_path)


def test_arm64_build_is_the_amd64_build_on_the_arm64_base_for_the_arm64_platform():
    ref = multiarch.arm64_ref("v2")
    base = build.base_image_ref("arm64")
    args = multiarch.arm64_bud_args(ref, "v2", base)
    amd64 = build._bud_args(ref, "v2", build.base_image_ref("amd64"))
    assert args[:3] == ["bud", "--platform=linux/arm64", "--layers=false"]
    assert f"BASE_IMAGE={base}" in args
    # Everything else (CA bundle secret, chroot isolation, version, tag, context) is unchanged.
    assert [a for a in args[3:] if "BASE_IMAGE" not in a] == [
        a for a in amd64[1:] if "BASE_IMAGE" not in a and a != "--layers"
    ]
    assert args[-5:] == ["-f", "workloads/Dockerfile", "-t", ref, str(config.REPO_DIR)]


def test_arm64_image_and_base_have_their_own_names():
    assert multiarch.arm64_ref("v1") == f"{config.WORKLOAD_IMAGE_REPO}:v1-arm64"
    arm64, amd64 = build.base_image_ref("arm64"), build.base_image_ref("amd64")
    assert arm64.startswith(f"{config.BASE_IMAGE}-arm64-")
    assert amd64.startswith(f"{config.BASE_IMAGE}-amd64-")


def test_arm64_archive_is_out_of_reach_of_the_amd64_cache_cleanup(paths):
    archive = multiarch.arm64_archive(paths, "v1")
    assert archive.parent == paths.images / "arm64"
    assert archive.name.startswith("workloads-v1-")
    # build.build_workload_images deletes stale archives with this (non-recursive) glob.
    archive.parent.mkdir(parents=True)
    archive.touch()
    assert list(paths.images.glob("workloads-v1-*.tar")) == []


def test_the_arm64_archive_key_follows_both_recipes(paths, monkeypatch):
    before = multiarch.arm64_archive(paths, "v1")
    monkeypatch.setattr(multiarch, "workload_archive", lambda _p, _v: Path("workloads-v1-x.tar"))
    assert multiarch.arm64_archive(paths, "v1") != before
    assert multiarch.arm64_archive(paths, "v2") != multiarch.arm64_archive(paths, "v1")


def test_a_cached_build_found_after_waiting_for_the_lock_is_used(paths, monkeypatch):
    archive = multiarch.arm64_archive(paths, "v1")
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"x" * 10)
    monkeypatch.setattr(multiarch, "ensure_binfmt", lambda _log: pytest.fail("built again"))
    built = multiarch.build_arm64_image(paths, "v1", lambda _m: None)
    assert built.cached
    assert built.archive_bytes == 10
    assert built.summary() == "cached"


def test_a_second_builder_waits_for_the_first(paths):
    # The lock is an flock: a second process blocks until the first releases it.
    script = (
        "import sys\n"
        "from localcluster import config, multiarch\n"
        "paths = config.Paths(state=config.Path(sys.argv[1]), cache=config.Path(sys.argv[2]))\n"
        "built = multiarch.build_arm64_image(paths, 'v1', print)\n"
        "print(f'waited {built.waited_seconds:.1f}')\n"
    )
    archive = multiarch.arm64_archive(paths, "v1")
    archive.parent.mkdir(parents=True)
    with file_lock(paths.cache / multiarch.LOCK_NAME, "the first build", lambda _m: None):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(paths.state), str(paths.cache)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=config.REPO_DIR,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)  # the second builder is still waiting
        archive.write_bytes(b"x" * 10)  # what the first build made
    out, _ = proc.communicate(timeout=30)
    assert f"arm64 image build: waiting for the lock held by pid {os.getpid()}" in out
    assert "cached" in out
    assert float(out.split("waited ")[1]) > 0


GOOD = {
    "machine": "aarch64",
    "elf_machine": 183,
    "uid": 10001,
    "test_client": {"status": 200, "body": {"pod": "p", "version": "v1", "ip": ""}},
    "tcp": {"status": 200, "body": {"pod": "p", "version": "v1", "ip": ""}},
}


def test_a_good_answer_passes():
    assert multiarch.evaluate_check(GOOD, "v1", "p") == []


def test_an_answer_from_the_host_architecture_fails():
    problems = multiarch.evaluate_check(dict(GOOD, machine="x86_64"), "v1", "p")
    assert problems == ["platform.machine() is 'x86_64', expected 'aarch64'"]


def test_an_interpreter_that_is_not_arm64_code_fails():
    problems = multiarch.evaluate_check(dict(GOOD, elf_machine=62), "v1", "p")
    assert problems == ["the interpreter's ELF machine is 62, expected 183 (aarch64)"]


def test_a_check_that_ran_as_root_fails():
    problems = multiarch.evaluate_check(dict(GOOD, uid=0), "v1", "p")
    assert problems == ["ran as uid 0, expected the image's user 10001"]


def test_a_server_that_never_answered_fails_with_its_last_error():
    result = {k: v for k, v in GOOD.items() if k != "tcp"}
    result["last_error"] = "ConnectionRefusedError(111)"
    problems = multiarch.evaluate_check(result, "v1", "p")
    assert problems == ["GET / (tcp): no answer; last error: ConnectionRefusedError(111)"]


def test_an_answer_from_the_wrong_version_fails():
    problems = multiarch.evaluate_check(GOOD, "v2", "p")
    assert len(problems) == 2
    assert all("expected pod='p' version='v2'" in p for p in problems)


def test_the_check_runs_in_the_container_with_chroot_isolation():
    argv = multiarch.check_argv("ctr-1", "v1", "pod-1")
    assert argv[:4] == ["buildah", "run", "--isolation=chroot", "--network=host"]
    assert argv[argv.index("--") - 1] == "ctr-1"
    assert "POD_NAME=pod-1" in argv
    assert argv[argv.index("--") + 1 :] == [
        "python",
        "-c",
        multiarch.CHECK_SNIPPET,
        str(multiarch.SERVER_DEADLINE_S),
    ]


def test_the_check_snippet_works_natively_on_the_host():
    # The same program the arm64 image runs, with this machine's Python: it must answer through
    # the test client and the real entrypoint on loopback; only the architecture differs.
    env = dict(os.environ, PYTHONPATH=str(config.REPO_DIR), POD_NAME="native", APP_VERSION="v1")
    proc = subprocess.run(
        [sys.executable, "-c", multiarch.CHECK_SNIPPET, "30"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    problems = multiarch.evaluate_check(result, "v1", "native", uid=os.getuid())
    assert [p for p in problems if p.startswith("GET /")] == [], result
    assert result["machine"] == multiarch.platform.machine()
    assert result["uid"] == os.getuid()
    assert result["server_exit"] == 0


def test_cli_errors_print_one_line_and_exit_1(monkeypatch, capsys):
    def fail(_log):
        raise ClusterError("no qemu")

    monkeypatch.setattr(multiarch, "ensure_binfmt", fail)
    assert multiarch.main(["binfmt"]) == 1
    assert capsys.readouterr().err == "multiarch binfmt: no qemu\n"


def test_cli_rejects_an_unknown_version():
    with pytest.raises(SystemExit):
        multiarch.main(["check-arm64", "--version", "v3"])


#: A cold build (download, emulated bytecode and pip install) took 5 min on a busy 2-core machine;
#: a per-test backstop must not cut it. Its own steps have deadlines (multiarch.*_TIMEOUT_S).
COLD_BUILD_BACKSTOP_S = 1800


@pytest.mark.timeout(COLD_BUILD_BACKSTOP_S)
def test_the_arm64_image_answers_under_emulation(image_checks):
    """The arm64 image's own Python, emulated, answers through Flask and gunicorn."""
    report = multiarch.check_arm64(config.Paths.default(), print)
    print("\n".join(report.lines()))
    assert report.ok, "\n".join(report.lines())
    assert report.image_arch == "arm64"
    assert report.result["machine"] == "aarch64"


def test_cli_build_only_prints_how_the_image_came_to_be(monkeypatch, capsys, tmp_path):
    built = multiarch.BuildResult("repo:v1-arm64", tmp_path / "a.tar", False, 45.0, 55.0, 1, 30.0)
    monkeypatch.setattr(multiarch, "build_arm64_image", lambda _paths, _version, _log: built)
    assert multiarch.main(["build-arm64"]) == 0
    assert capsys.readouterr().out == (
        f"repo:v1-arm64: built in 100s (base 45s, image 55s) after waiting 30s for another "
        f"build; {tmp_path / 'a.tar'}\n"
    )

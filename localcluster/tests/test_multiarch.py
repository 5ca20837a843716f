"""Unit tests of the arm64 proof's pure parts; the emulated build and run itself is opt-in.

The opt-in test builds the arm64 image (minutes, cached afterwards) and needs root, buildah,
debootstrap and qemu-user-static:

    KUBE_ALIVE_MULTIARCH=1 pytest localcluster/tests/test_multiarch.py

With CI=true it always runs, so CI can never skip it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster import build, config, multiarch
from localcluster.util import ClusterError
from suite.settings import running_in_ci

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


def test_mounts_under_a_rootfs_are_found_deepest_first_and_siblings_ignored():
    root = Path("/var/cache/kube-alive/rootfs/bookworm-arm64.partial")
    text = "\n".join(
        [
            "proc /proc proc rw 0 0",
            f"proc {root}/proc proc rw 0 0",
            f"sysfs {root}/sys sysfs rw 0 0",
            f"devpts {root}/dev/pts devpts rw 0 0",
            f"tmpfs {root}/with\\040space tmpfs rw 0 0",
            "tmpfs /var/cache/kube-alive/rootfs/bookworm-arm64.partial2/proc tmpfs rw 0 0",
        ]
    )
    found = multiarch.mounts_under(text, root)
    assert set(found) == {root / "proc", root / "sys", root / "dev/pts", root / "with space"}
    assert found[0] == root / "dev/pts"


def test_debootstrap_runs_in_two_stages_the_second_in_the_target():
    rootfs = Path("/cache/rootfs/bookworm-arm64.partial")
    first = multiarch.first_stage_argv(rootfs)
    assert first[0] == "debootstrap"
    assert "--arch=arm64" in first
    assert "--foreign" in first
    assert "--include=python3,python3-venv,ca-certificates" in first
    assert first[-2:] == [config.DEBIAN_SUITE, str(rootfs)]
    assert multiarch.second_stage_argv(rootfs) == [
        "chroot",
        str(rootfs),
        "/debootstrap/debootstrap",
        "--second-stage",
    ]


def test_arm64_build_is_the_amd64_build_on_the_arm64_base_for_the_arm64_platform():
    ref = multiarch.arm64_ref("v2")
    args = multiarch.arm64_bud_args(ref, "v2")
    amd64 = build._bud_args(ref, "v2")
    assert args[:3] == ["bud", "--platform=linux/arm64", "--layers=false"]
    assert f"BASE_IMAGE={multiarch.ARM64_BASE_IMAGE}" in args
    assert f"BASE_IMAGE={config.BASE_IMAGE}" not in args
    # Everything else (CA bundle secret, chroot isolation, version, tag, context) is unchanged.
    assert [a for a in args[3:] if "BASE_IMAGE" not in a] == [
        a for a in amd64[1:] if "BASE_IMAGE" not in a and a != "--layers"
    ]
    assert args[-5:] == ["-f", "workloads/Dockerfile", "-t", ref, str(config.REPO_DIR)]


def test_arm64_image_has_its_own_tag():
    assert multiarch.arm64_ref("v1") == f"{config.WORKLOAD_IMAGE_REPO}:v1-arm64"
    base = multiarch.ARM64_BASE_IMAGE
    assert base == f"{config.BASE_IMAGE}-arm64"


def test_arm64_archive_is_out_of_reach_of_the_amd64_cache_cleanup(paths):
    archive = multiarch.arm64_archive(paths, "v1")
    assert archive.parent == paths.images / "arm64"
    assert archive.name == build.workload_archive(paths, "v1").name
    # build.build_workload_images deletes stale archives with this (non-recursive) glob.
    archive.parent.mkdir(parents=True)
    archive.touch()
    assert list(paths.images.glob("workloads-v1-*.tar")) == []


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


@pytest.mark.skipif(
    os.environ.get("KUBE_ALIVE_MULTIARCH") != "1" and not running_in_ci(),
    reason="builds and runs the arm64 image under qemu (minutes, root); opt in with "
    "KUBE_ALIVE_MULTIARCH=1 (always runs when CI=true)",
)
def test_the_arm64_image_answers_under_emulation():
    report = multiarch.check_arm64(config.Paths.default(), print)
    assert report.ok, "\n".join(report.lines())
    assert report.image_arch == "arm64"
    assert report.result["machine"] == "aarch64"

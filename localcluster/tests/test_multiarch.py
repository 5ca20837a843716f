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

from localcluster import build, config, imageindex, multiarch
from localcluster.imageindex import RegistryClient
from localcluster.tests.test_imageindex import FakeRegistry
from localcluster.util import ClusterError, file_lock
from suite import images as workload_images

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
            (folder / argv[2]).write_text(ENABLED_ENTRY)
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


def test_the_arm_v7_image_registers_qemu_arm(fake_binfmt):
    folder, calls = fake_binfmt
    (folder / "status").write_text("enabled\n")
    (folder / multiarch.BINFMT_NAME).write_text(ENABLED_ENTRY)
    multiarch.ensure_binfmt(lambda _m: None, folder, platform=multiarch.ARMV7)
    assert calls == [["update-binfmts", "--enable", "qemu-arm"]]
    assert (folder / "qemu-arm").exists()


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
    "healthz": {"status": 200, "body": {"pod": "p", "version": "v1", "machine": "aarch64"}},
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
    assert len(problems) == 3
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
    native = next(p for p in multiarch.INDEX_PLATFORMS if p.machine == multiarch.platform.machine())
    problems = multiarch.evaluate_check(result, "v1", "native", uid=os.getuid(), platform=native)
    assert [p for p in problems if p.startswith("GET /")] == [], result
    assert result["healthz"]["body"]["machine"] == native.machine
    assert result["machine"] == multiarch.platform.machine()
    assert result["uid"] == os.getuid()
    assert result["server_exit"] == 0


def test_cli_errors_print_one_line_and_exit_1(monkeypatch, capsys):
    def fail(_log, **_kwargs):
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
    asked = []

    def fake_build(_paths, version, _log, platform):
        asked.append((version, platform))
        return built

    monkeypatch.setattr(multiarch, "build_foreign_image", fake_build)
    assert multiarch.main(["build-arm64"]) == 0
    assert asked == [("v1", multiarch.ARM64)]
    assert capsys.readouterr().out == (
        f"repo:v1-arm64: built in 100s (base 45s, image 55s) after waiting 30s for another "
        f"build; {tmp_path / 'a.tar'}\n"
    )


def test_the_platforms_are_named_as_oci_debian_the_kernel_and_qemu_name_them():
    v7 = multiarch.ARMV7
    assert (v7.arch, v7.variant, v7.deb_arch, v7.machine, v7.qemu) == (
        "arm",
        "v7",
        "armhf",
        "armv7l",
        "qemu-arm-static",
    )
    assert v7.arch_args() == ["--arch", "arm", "--variant", "v7"]
    assert multiarch.ARM64.arch_args() == ["--arch", "arm64"]
    assert [p.oci for p in multiarch.INDEX_PLATFORMS] == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
    ]
    # Every platform's base can be made: Debian's layout and the OCI name of its architecture.
    for plat in multiarch.INDEX_PLATFORMS:
        assert build.OCI_ARCHES[plat.deb_arch] == (plat.arch, plat.variant)
        assert plat.deb_arch in build.MERGED_USR


def test_the_arm_v7_build_is_the_arm64_build_for_its_own_platform(paths):
    base = build.base_image_ref("armhf")
    assert base.startswith(f"{config.BASE_IMAGE}-armhf-")
    ref = multiarch.foreign_ref(multiarch.ARMV7, "v1")
    assert ref == f"{config.WORKLOAD_IMAGE_REPO}:v1-armv7"
    v7 = multiarch.foreign_bud_args(ref, "v1", base, multiarch.ARMV7)
    arm64 = multiarch.arm64_bud_args(ref, "v1", base)
    assert v7[:3] == ["bud", "--platform=linux/arm/v7", "--layers=false"]
    assert v7[2:] == arm64[2:]
    archive = multiarch.foreign_archive(paths, "v1", multiarch.ARMV7)
    assert archive.parent == paths.images / "armv7"
    assert archive.name != multiarch.arm64_archive(paths, "v1").name


def test_an_arm_v7_answer_is_judged_against_arm_v7():
    good = dict(
        GOOD,
        machine="armv7l",
        elf_machine=40,
        healthz={"status": 200, "body": {"pod": "p", "version": "v1", "machine": "armv7l"}},
    )
    assert multiarch.evaluate_check(good, "v1", "p", platform=multiarch.ARMV7) == []
    # An arm64 image served under the arm/v7 name (qemu-aarch64 would run it as well).
    assert multiarch.evaluate_check(GOOD, "v1", "p", platform=multiarch.ARMV7) == [
        "platform.machine() is 'aarch64', expected 'armv7l'",
        "the interpreter's ELF machine is 183, expected 40 (armv7l)",
        "GET /healthz (tcp): says machine 'aarch64', expected 'armv7l'",
    ]


def test_a_health_endpoint_that_does_not_answer_fails():
    result = {k: v for k, v in GOOD.items() if k != "healthz"}
    result["last_error"] = "GET /healthz: TimeoutError()"
    assert multiarch.evaluate_check(result, "v1", "p") == [
        "GET /healthz (tcp): no answer; last error: GET /healthz: TimeoutError()"
    ]


def test_the_index_tag_is_the_content_tag_apart_from_the_suite_s_images():
    tag = multiarch.index_tag("v1")
    assert tag == f"{workload_images.content_tag('v1')}-multiarch"
    assert tag not in {workload_images.content_tag(t) for t in workload_images.TAGS}


@pytest.fixture
def fake_index_run(tmp_path, monkeypatch):
    """check_index with every outside effect faked: the images (archives that name their
    platform), the push (which publishes them into a fake registry as one index), the pull
    (`buildah from`) and the run (`run_check` answers as the image's own machine would)."""
    registry = FakeRegistry()
    machines = {p.oci: p for p in multiarch.INDEX_PLATFORMS}
    state: dict[str, object] = {"serve": {}, "pulled": [], "pushed": []}

    def images(_paths, _version, _log):
        return [(p, tmp_path / f"{p.suffix}.tar") for p in multiarch.INDEX_PLATFORMS]

    def push(archives, reference, _log):
        state["pushed"].append(reference)  # type: ignore[union-attr]
        entries = []
        for archive in archives:
            plat = next(p for p in multiarch.INDEX_PLATFORMS if archive.stem == p.suffix)
            entry = registry.image(plat.oci)
            state["serve"][entry["digest"]] = plat  # type: ignore[index]
            entries.append(entry)
        registry.index(reference.rsplit(":", 1)[1], entries, imageindex.OCI_INDEX)

    def buildah(*args, timeout=600):
        assert args[0] == "from"
        state["pulled"].append(list(args))  # type: ignore[union-attr]
        return str(args[-1].rsplit("@", 1)[1])

    def check(ctr, version, pod):
        plat = state["serve"][ctr]  # type: ignore[index]
        machine = plat.machine
        result = dict(
            GOOD,
            machine=machine,
            elf_machine=plat.elf_machine,
            test_client={"status": 200, "body": {"pod": pod, "version": version}},
            tcp={"status": 200, "body": {"pod": pod, "version": version}},
            healthz={"status": 200, "body": {"pod": pod, "version": version, "machine": machine}},
        )
        return result, 1.0

    monkeypatch.setattr(multiarch, "platform_images", images)
    monkeypatch.setattr(multiarch, "push_index", push)
    monkeypatch.setattr(multiarch, "RegistryClient", lambda r: RegistryClient(r, registry.fetch))
    monkeypatch.setattr(multiarch, "_buildah", buildah)
    monkeypatch.setattr(multiarch, "run_check", check)
    monkeypatch.setattr(multiarch, "run", lambda *_a, **_k: None)
    monkeypatch.setattr(multiarch, "ensure_binfmt", lambda _log, **_kw: None)
    state["machines"] = machines
    return registry, state


def test_the_index_check_pulls_each_platform_by_its_digest_and_sees_its_machine(
    fake_index_run, paths
):
    _registry, state = fake_index_run
    report = multiarch.check_index(paths, "reg:5000", lambda _m: None)
    assert report.ok, report.lines()
    tag = multiarch.index_tag("v1")
    assert state["pushed"] == [f"reg:5000/kube-alive/workloads:{tag}"]
    assert report.index.platforms == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert [a.result["healthz"]["body"]["machine"] for a in report.answers] == [
        "x86_64",
        "aarch64",
        "armv7l",
    ]
    pulled = state["pulled"]
    source = f"docker://reg:5000/kube-alive/workloads@{report.answers[2].digest}"
    assert pulled[2][-5:] == ["--arch", "arm", "--variant", "v7", source]
    assert all("--tls-verify=false" in p and "--pull=always" in p for p in pulled)
    lines = report.lines()
    assert lines[0].startswith(f"index: reg:5000/kube-alive/workloads:{tag} sha256:")
    assert lines[1] == "platforms: linux/amd64, linux/arm64, linux/arm/v7"
    assert "linux/arm/v7: sha256:" in lines[-2]
    assert "machine='armv7l'" in lines[-2]
    assert lines[-1].startswith("OK: the index lists linux/amd64, linux/arm64, linux/arm/v7")


def test_the_index_check_fails_when_an_entry_runs_another_machine(
    fake_index_run, paths, monkeypatch
):
    _registry, state = fake_index_run
    real_push = multiarch.push_index

    def push_arm64_as_v7(archives, reference, log):
        real_push(archives, reference, log)
        for digest, plat in list(state["serve"].items()):
            if plat is multiarch.ARMV7:
                state["serve"][digest] = multiarch.ARM64

    monkeypatch.setattr(multiarch, "push_index", push_arm64_as_v7)
    report = multiarch.check_index(paths, "reg:5000", lambda _m: None)
    assert not report.ok
    v7 = report.answers[2]
    assert v7.platform is multiarch.ARMV7
    assert "GET /healthz (tcp): says machine 'aarch64', expected 'armv7l'" in v7.problems
    assert "PROBLEM: linux/arm/v7: platform.machine() is 'aarch64', expected 'armv7l'" in (
        report.lines()
    )
    assert report.lines()[-1] == "FAILED"


def test_the_index_check_fails_on_an_index_without_arm_v7(fake_index_run, paths, monkeypatch):
    real_push = multiarch.push_index

    def push_two(archives, reference, log):
        real_push([a for a in archives if a.stem != "armv7"], reference, log)

    monkeypatch.setattr(multiarch, "push_index", push_two)
    report = multiarch.check_index(paths, "reg:5000", lambda _m: None)
    assert not report.ok
    assert [a.platform.oci for a in report.answers] == ["linux/amd64", "linux/arm64"]
    assert "no image for linux/arm/v7 (it lists linux/amd64, linux/arm64)" in report.problems[0]


def test_the_index_check_cli_refuses_a_registry_with_a_scheme(capsys):
    with pytest.raises(SystemExit):
        multiarch.main(["check-index", "http://reg:5000"])
    assert "REGISTRY is host:port without a scheme or path" in capsys.readouterr().err


def test_the_index_check_cli_says_a_registry_failure_in_one_line(monkeypatch, capsys):
    def fail(*_args, **_kwargs):
        raise ClusterError("GET http://reg:5000/v2/x: no answer (refused)")

    monkeypatch.setattr(multiarch, "check_index", fail)
    assert multiarch.main(["check-index", "reg:5000"]) == 1
    assert capsys.readouterr().err == (
        "multiarch check-index: GET http://reg:5000/v2/x: no answer (refused)\n"
    )


def test_the_index_check_without_push_only_reads_what_is_there(fake_index_run, paths, monkeypatch):
    multiarch.check_index(paths, "reg:5000", lambda _m: None)
    monkeypatch.setattr(multiarch, "platform_images", lambda *_a: pytest.fail("built"))
    monkeypatch.setattr(multiarch, "push_index", lambda *_a: pytest.fail("pushed"))
    report = multiarch.check_index(paths, "reg:5000", lambda _m: None, push=False)
    assert report.ok, report.lines()
    assert (report.build_seconds, report.push_seconds) == (0.0, 0.0)

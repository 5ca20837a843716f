"""The arm64 workload image, built and run here under emulation: the multi-arch proof.

Users build the images for both architectures with `scripts/build-images.sh` (docker buildx). That
cannot run on this project's machines (no Docker engine, no registry to pull a base image from), so
this module proves the same Dockerfile on arm64 with what Debian provides: qemu-user-static
registered with binfmt_misc, the arm64 twin of the amd64 python base (`build.build_base_image`:
arm64 packages unpacked natively, only the standard library's bytecode is compiled under qemu),
and buildah building `workloads/Dockerfile` with `--platform linux/arm64` on that base (its pip
install runs emulated).

The check then runs the image's own Python, emulated, as the image's user: it imports the getip
app, answers `GET /` through Flask's test client, and starts the real entrypoint
(`python -m workloads getip`, gunicorn) on loopback and fetches `/` over TCP. It passes only if the
interpreter says it runs on aarch64 and both answers carry the pod and the image's version.

    python -m localcluster.multiarch build-arm64        # only build (cached); for a head start
    python -m localcluster.multiarch check-arm64        # build (cached) and check, exit 0 or 1
    python -m localcluster.multiarch binfmt             # only register qemu-aarch64 and show it

The image archive is cached under the cluster cache (KUBE_ALIVE_CACHE_DIR, default
/var/cache/kube-alive) by the content of the workloads and of both recipes (`build.py`, this
file), so a warm check only runs the image. One build at a time: a check that finds a build in
progress (e.g. `build-arm64` started early in the background) waits for it and uses its result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster import config
from localcluster.build import _bud_args, _export, build_base_image, workload_archive
from localcluster.util import ClusterError, Log, file_lock, run, stderr_log, tree_hash

ARCH = "arm64"  # the OCI / Debian name
MACHINE = "aarch64"  # what the kernel (and Python's platform.machine()) calls it
ELF_MACHINE = 183  # EM_AARCH64: e_machine in the ELF header of an arm64 program
IMAGE_UID = 10001  # the image's USER (workloads/Dockerfile)
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_NAME = "qemu-aarch64"  # the entry Debian's qemu-user-static ships for update-binfmts
SYSTEM_PACKAGES = ("qemu-user-static", "binfmt-support", "debootstrap", "buildah")
CHECK_APP = "getip"

# Everything below runs emulated, several times slower than native; the deadlines are generous
# bounds on a 2-core machine, not expectations. Measured on one here, cold, with a Go build
# beside it (load 10): base 128 s (download 60 s, stdlib bytecode under qemu 51 s), image build
# 146 s (the Dockerfile's venv and pip install, emulated), check 8 s.
BUILD_TIMEOUT_S = 3600
CHECK_TIMEOUT_S = 600
# Inside the check: how long gunicorn may take to answer its first request under qemu.
SERVER_DEADLINE_S = 180
LOCK_NAME = "arm64-build.lock"


@dataclass(frozen=True)
class BinfmtEntry:
    """One binfmt_misc registration as the kernel shows it."""

    enabled: bool
    interpreter: str
    flags: str


def parse_binfmt_entry(text: str) -> BinfmtEntry:
    """Parse `/proc/sys/fs/binfmt_misc/<name>` ("enabled", "interpreter ...", "flags: PF", ...)."""
    enabled = False
    interpreter = ""
    flags = ""
    for line in text.splitlines():
        line = line.strip()
        if line in ("enabled", "disabled"):
            enabled = line == "enabled"
        elif line.startswith("interpreter "):
            interpreter = line.removeprefix("interpreter ").strip()
        elif line.startswith("flags:"):
            flags = line.removeprefix("flags:").strip()
    return BinfmtEntry(enabled=enabled, interpreter=interpreter, flags=flags)


def binfmt_problem(entry: BinfmtEntry | None) -> str | None:
    """Why this registration cannot run arm64 programs in a chroot, or None when it can."""
    if entry is None:
        return f"{BINFMT_NAME} is not registered with binfmt_misc"
    if not entry.enabled:
        return f"{BINFMT_NAME} is registered but disabled"
    # Without F (fix binary) the kernel opens the interpreter by path at exec time, inside the
    # chroot, where /usr/libexec/qemu-binfmt/... does not exist: every exec fails with ENOENT.
    if "F" not in entry.flags:
        return (
            f"{BINFMT_NAME} is registered without the F (fix binary) flag (flags: "
            f"{entry.flags or 'none'}), so it cannot run programs inside a chroot; "
            f"re-register it with `update-binfmts --disable {BINFMT_NAME}` and "
            f"`update-binfmts --enable {BINFMT_NAME}` (Debian's entry says fix_binary yes)"
        )
    return None


def read_binfmt_entry(binfmt_dir: Path = BINFMT_DIR) -> BinfmtEntry | None:
    """The kernel's current qemu-aarch64 registration, or None."""
    path = binfmt_dir / BINFMT_NAME
    return parse_binfmt_entry(path.read_text()) if path.exists() else None


def ensure_binfmt(log: Log, binfmt_dir: Path = BINFMT_DIR) -> BinfmtEntry:
    """Mount binfmt_misc if needed and register qemu-aarch64 with it; returns the registration."""
    if shutil.which("qemu-aarch64-static") is None or shutil.which("update-binfmts") is None:
        raise ClusterError(
            "qemu-aarch64-static or update-binfmts is missing: "
            f"apt-get install {' '.join(SYSTEM_PACKAGES)}"
        )
    if not (binfmt_dir / "status").exists():
        log(f"binfmt: mounting binfmt_misc on {binfmt_dir}")
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", binfmt_dir], timeout=30)
    entry = read_binfmt_entry(binfmt_dir)
    if entry is None or not entry.enabled:
        log(f"binfmt: {binfmt_problem(entry)}; update-binfmts --enable {BINFMT_NAME}")
        run(["update-binfmts", "--enable", BINFMT_NAME], timeout=60)
        entry = read_binfmt_entry(binfmt_dir)
    problem = binfmt_problem(entry)
    if problem is not None or entry is None:
        raise ClusterError(f"binfmt: {problem}")
    return entry


def _buildah(*args: str | Path, timeout: float = 600) -> str:
    return run(["buildah", *args], timeout=timeout).stdout.strip()


def arm64_ref(version: str) -> str:
    """The arm64 image's local name: its own tag, so it never shadows the amd64 `:v1` and `:v2`."""
    return f"{config.WORKLOAD_IMAGE_REPO}:{version}-{ARCH}"


def arm64_archive(paths: config.Paths, version: str) -> Path:
    """The cached OCI archive, keyed by the amd64 key (workloads' sources, `build.py`) and this
    file (how the arm64 image is built).

    It lives in a folder of its own: `build.py` deletes stale `workloads-<version>-*.tar` next to
    its archives, which would otherwise include these.
    """
    key = tree_hash([Path(__file__)], workload_archive(paths, version).name)
    return paths.images / ARCH / f"workloads-{version}-{key}.tar"


def arm64_bud_args(ref: str, version: str, base: str) -> list[str]:
    """`build._bud_args` (CA bundle as a secret, pip variables, chroot isolation) for arm64."""
    args = _bud_args(ref, version, base)
    if args[0] != "bud":
        raise ClusterError("build._bud_args changed shape; expected it to start with 'bud'")
    # buildah 1.28's layer cache keys ENV steps by their unexpanded text, so with --layers the
    # `ENV APP_VERSION=$VERSION` step of v1 is reused for v2 (and back). A full build takes
    # about a minute under qemu and happens only when the workloads change: build without it.
    args = [a for a in args[1:] if a != "--layers"]
    return ["bud", f"--platform=linux/{ARCH}", "--layers=false", *args]


@dataclass(frozen=True)
class BuildResult:
    """What building (or finding) the arm64 image took."""

    ref: str
    archive: Path
    cached: bool
    base_seconds: float
    image_seconds: float
    archive_bytes: int
    waited_seconds: float = 0.0

    def summary(self) -> str:
        """How the image came to be: cached, or built (and how long each part took)."""
        how = (
            "cached"
            if self.cached
            else f"built in {self.base_seconds + self.image_seconds:.0f}s "
            f"(base {self.base_seconds:.0f}s, image {self.image_seconds:.0f}s)"
        )
        if self.waited_seconds >= 1:
            how += f" after waiting {self.waited_seconds:.0f}s for another build"
        return how


def build_arm64_image(paths: config.Paths, version: str, log: Log) -> BuildResult:
    """Build `workloads/Dockerfile` for linux/arm64 on the arm64 base, cached as an OCI archive."""
    ref = arm64_ref(version)
    archive = arm64_archive(paths, version)
    with file_lock(paths.cache / LOCK_NAME, "arm64 image build", log) as waited:
        if archive.exists():
            log(f"{ref}: cached in {archive}")
            return BuildResult(ref, archive, True, 0.0, 0.0, archive.stat().st_size, waited)
        ensure_binfmt(log)
        started = time.monotonic()
        base = build_base_image(paths, log, ARCH)
        base_seconds = time.monotonic() - started
        log(f"{ref}: buildah bud --platform linux/{ARCH} workloads/Dockerfile (emulated)")
        started = time.monotonic()
        archive.parent.mkdir(parents=True, exist_ok=True)
        for old in archive.parent.glob(f"workloads-{version}-*.tar"):
            old.unlink()
        _buildah(*arm64_bud_args(ref, version, base), timeout=BUILD_TIMEOUT_S)
        image_seconds = time.monotonic() - started
        env = _buildah(
            "inspect",
            "--type",
            "image",
            "--format",
            "{{range .OCIv1.Config.Env}}{{println .}}{{end}}",
            ref,
        ).splitlines()
        if f"APP_VERSION={version}" not in env:
            raise ClusterError(
                f"{ref}: built, but its environment is {env}, not APP_VERSION={version}"
            )
        _export(ref, archive)
        size = archive.stat().st_size
        return BuildResult(ref, archive, False, base_seconds, image_seconds, size, waited)


# Runs inside the arm64 container, as the image's user, with the image's Python. It prints one JSON
# line; `evaluate_check` judges it on the host. The server gets the real entrypoint, bound to a
# free loopback port (KUBE_ALIVE_BIND is the entrypoint's switch for running outside a pod).
CHECK_SNIPPET = """
import json, os, platform, socket, subprocess, sys, tempfile, time, urllib.request
t0 = time.monotonic()
from workloads import getip
out = {"machine": platform.machine(), "python": platform.python_version(), "uid": os.getuid()}
with open(os.path.realpath(sys.executable), "rb") as exe:
    out["elf_machine"] = int.from_bytes(exe.read(20)[18:20], "little")
response = getip.create_app().test_client().get("/")
out["test_client"] = {"status": response.status_code, "body": response.get_json()}
out["import_and_test_client_s"] = round(time.monotonic() - t0, 1)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
env = dict(os.environ, KUBE_ALIVE_BIND=f"127.0.0.1:{port}")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
t1 = time.monotonic()
deadline = t1 + float(sys.argv[1])
last = "no attempt"
with tempfile.TemporaryFile() as errors:
    server = subprocess.Popen(
        [sys.executable, "-m", "workloads", "getip"], env=env,
        stdout=subprocess.DEVNULL, stderr=errors,
    )
    try:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                last = f"the server exited with status {server.returncode}"
                break
            try:
                with opener.open(f"http://127.0.0.1:{port}/", timeout=10) as answer:
                    out["tcp"] = {"status": answer.status, "body": json.loads(answer.read())}
                out["server_first_answer_s"] = round(time.monotonic() - t1, 1)
                break
            except OSError as exc:
                last = repr(exc)
                time.sleep(0.25)
    finally:
        server.terminate()
        try:
            out["server_exit"] = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            out["server_exit"] = server.wait(timeout=60)
    errors.seek(0)
    out["server_log_tail"] = errors.read().decode(errors="replace").splitlines()[-10:]
out["last_error"] = last
print(json.dumps(out))
"""


def check_argv(container: str, version: str, pod: str) -> list[str]:
    """`buildah run` of the check snippet in the arm64 container."""
    return [
        "buildah",
        "run",
        "--isolation=chroot",
        "--network=host",
        "--env",
        f"POD_NAME={pod}",
        container,
        "--",
        "python",
        "-c",
        CHECK_SNIPPET,
        str(SERVER_DEADLINE_S),
    ]


def evaluate_check(
    result: dict[str, Any], version: str, pod: str, uid: int = IMAGE_UID
) -> list[str]:
    """What is wrong with the check's answer; an empty list means the image passed."""
    problems = []
    # qemu answers uname with aarch64; the ELF header shows the interpreter itself is arm64 code.
    if result.get("machine") != MACHINE:
        problems.append(f"platform.machine() is {result.get('machine')!r}, expected {MACHINE!r}")
    if result.get("elf_machine") != ELF_MACHINE:
        problems.append(
            f"the interpreter's ELF machine is {result.get('elf_machine')}, expected "
            f"{ELF_MACHINE} (aarch64)"
        )
    if result.get("uid") != uid:
        problems.append(f"ran as uid {result.get('uid')}, expected the image's user {uid}")
    for how in ("test_client", "tcp"):
        seen = result.get(how)
        if not isinstance(seen, dict):
            problems.append(f"GET / ({how}): no answer; last error: {result.get('last_error')}")
            continue
        body = seen.get("body") or {}
        if seen.get("status") != 200:
            problems.append(f"GET / ({how}): status {seen.get('status')}, expected 200")
        if body.get("version") != version or body.get("pod") != pod:
            problems.append(
                f"GET / ({how}): answered pod={body.get('pod')!r} version={body.get('version')!r}, "
                f"expected pod={pod!r} version={version!r}"
            )
    return problems


@dataclass
class CheckReport:
    """The outcome of `check_arm64`, with the figures worth reporting."""

    build: BuildResult
    result: dict[str, Any]
    problems: list[str]
    check_seconds: float
    image_arch: str
    host_machine: str = field(default_factory=platform.machine)

    @property
    def ok(self) -> bool:
        """True when the image is arm64 and answered under emulation."""
        return not self.problems

    def lines(self) -> list[str]:
        """A short human summary."""
        b = self.build
        built = b.summary()
        r = self.result
        out = [
            f"image: {b.ref} ({self.image_arch}), {built}",
            f"archive: {b.archive} ({b.archive_bytes / 1e6:.1f} MB)",
            f"host {self.host_machine}; in the container platform.machine() = "
            f"{r.get('machine')!r} (ELF machine {r.get('elf_machine')}), Python {r.get('python')}, "
            f"uid {r.get('uid')}",
            f"test client: {r.get('test_client')} after {r.get('import_and_test_client_s')}s",
            f"gunicorn over TCP: {r.get('tcp')} after {r.get('server_first_answer_s')}s "
            f"(exit {r.get('server_exit')})",
            f"check took {self.check_seconds:.0f}s",
        ]
        out += [f"PROBLEM: {p}" for p in self.problems]
        if self.problems and r.get("server_log_tail"):
            out += ["server log:", *r["server_log_tail"]]
        out.append("OK: the arm64 image answers under emulation" if self.ok else "FAILED")
        return out


def check_arm64(paths: config.Paths, log: Log, version: str = "v1") -> CheckReport:
    """Build (or find) the arm64 image and run the emulated check in it."""
    build = build_arm64_image(paths, version, log)
    ensure_binfmt(log)
    pod = f"arm64-check-{os.getpid()}"
    log(f"{build.ref}: running the check under qemu")
    started = time.monotonic()
    ctr = _buildah("from", "--arch", ARCH, f"oci-archive:{build.archive}")
    try:
        image_arch = _buildah("inspect", "--format", "{{.OCIv1.Architecture}}", ctr)
        proc = run(check_argv(ctr, version, pod), timeout=CHECK_TIMEOUT_S)
    finally:
        run(["buildah", "rm", ctr], check=False)
    seconds = time.monotonic() - started
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise ClusterError(
            f"the check printed no JSON line:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        ) from exc
    problems = evaluate_check(result, version, pod)
    if image_arch != ARCH:
        problems.insert(0, f"the image's architecture is {image_arch!r}, expected {ARCH!r}")
    return CheckReport(build, result, problems, seconds, image_arch)


def main(argv: list[str] | None = None) -> int:
    """`python -m localcluster.multiarch check-arm64 | binfmt`."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.multiarch",
        description="Build the arm64 workload image with buildah and qemu, and prove it answers.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check-arm64", help="build the arm64 image (cached) and run the app in it under qemu"
    )
    check.add_argument("--version", choices=("v1", "v2"), default="v1", help="image version")
    build = sub.add_parser(
        "build-arm64",
        help="only build the arm64 image (cached), e.g. in the background ahead of the check",
    )
    build.add_argument("--version", choices=("v1", "v2"), default="v1", help="image version")
    sub.add_parser("binfmt", help="register qemu-aarch64 with binfmt_misc and show it")
    args = parser.parse_args(argv)
    try:
        if args.command == "binfmt":
            entry = ensure_binfmt(stderr_log)
            print(f"{BINFMT_NAME}: enabled, interpreter {entry.interpreter}, flags {entry.flags}")
            return 0
        if args.command == "build-arm64":
            built = build_arm64_image(config.Paths.default(), args.version, stderr_log)
            print(f"{built.ref}: {built.summary()}; {built.archive}")
            return 0
        report = check_arm64(config.Paths.default(), stderr_log, args.version)
    except ClusterError as exc:
        print(f"multiarch {args.command}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

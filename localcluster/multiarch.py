"""The arm64 and arm/v7 workload images, built and run here under emulation, and the
three-platform index: the multi-arch proof.

Users build the images for every platform with `scripts/build-images.sh` (docker buildx: one
index of linux/amd64, linux/arm64 and linux/arm/v7 per tag). That cannot run on this project's
machines (no registry to pull a base image from, no multi-platform builder), so this module proves
the same Dockerfile with what Debian provides: qemu-user-static registered with binfmt_misc
(qemu-aarch64, qemu-arm), the arm64 and armhf twins of the amd64 python base
(`build.build_base_image`: packages unpacked natively, only the standard library's bytecode is
compiled under qemu), and buildah building `workloads/Dockerfile` with `--platform` on that base
(its pip install runs emulated).

The check runs the image's own Python, as the image's user: it imports the getip app, answers
`GET /` through Flask's test client, starts the real entrypoint (`python -m workloads getip`,
gunicorn) on loopback and fetches `/` and `/healthz` over TCP. It passes only if the interpreter
and the health endpoint say the platform's machine (aarch64, armv7l, x86_64) and every answer
carries the pod and the image's version.

    python -m localcluster.multiarch build-arm64        # only build (cached); for a head start
    python -m localcluster.multiarch build-armv7        # the same for linux/arm/v7
    python -m localcluster.multiarch check-arm64        # build (cached) and check, exit 0 or 1
    python -m localcluster.multiarch check-index REGISTRY
        # one index of the three images (`buildah manifest`) pushed to a plain-HTTP registry, read
        # back over its API (exactly the three platforms), each image pulled by its digest and run
    python -m localcluster.multiarch binfmt             # only register qemu and show it

The image archives are cached under the cluster cache (KUBE_ALIVE_CACHE_DIR, default
/var/cache/kube-alive), keyed by the workloads' content, `build.py` and the build's arguments, so
a warm check only runs the images. One build per platform at a time: a check that finds a build
in progress (e.g. `build-arm64` started early in the background) waits for it and uses its result.
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
from localcluster.build import (
    _bud_args,
    _export,
    build_base_image,
    build_workload_images,
    host_arch,
    images_lock,
    workload_archive,
)
from localcluster.imageindex import (
    ImageIndex,
    IndexEntry,
    RegistryClient,
    index_problems,
)
from localcluster.util import ClusterError, Log, file_lock, run, stderr_log, tree_hash
from suite import images as workload_images


@dataclass(frozen=True)
class Platform:
    """One platform of the workload image: how OCI, Debian, the kernel and qemu name it."""

    oci: str  # the image index's name: linux/arm/v7
    deb_arch: str  # Debian's architecture of the base: armhf
    machine: str  # what the kernel (and Python's platform.machine()) calls it: armv7l
    elf_machine: int  # e_machine in the ELF header of its programs (EM_ARM = 40)
    binfmt: str  # the entry Debian's qemu-user-static ships for update-binfmts
    suffix: str  # the local image's tag suffix and its cache folder: armv7

    @property
    def arch(self) -> str:
        """The OCI architecture (arm)."""
        return self.oci.split("/")[1]

    @property
    def variant(self) -> str:
        """The OCI variant (v7), or empty."""
        parts = self.oci.split("/")
        return parts[2] if len(parts) > 2 else ""

    @property
    def qemu(self) -> str:
        """The qemu-user-static program that runs its code on another machine."""
        return f"{self.binfmt}-static"

    def arch_args(self) -> list[str]:
        """buildah's --arch (and --variant) for this platform."""
        return ["--arch", self.arch, *(["--variant", self.variant] if self.variant else [])]


AMD64 = Platform("linux/amd64", "amd64", "x86_64", 62, "qemu-x86_64", "amd64")
ARM64 = Platform("linux/arm64", "arm64", "aarch64", 183, "qemu-aarch64", "arm64")
ARMV7 = Platform("linux/arm/v7", "armhf", "armv7l", 40, "qemu-arm", "armv7")
#: What scripts/build-images.sh publishes as one index, and what `check-index` expects in it.
INDEX_PLATFORMS = (AMD64, ARM64, ARMV7)
#: The platforms built here under emulation (amd64 is the local cluster's own image).
FOREIGN = {p.suffix: p for p in (ARM64, ARMV7)}

# The arm64 names the check-arm64 command and its tests use.
ARCH = ARM64.arch
MACHINE = ARM64.machine
ELF_MACHINE = ARM64.elf_machine
BINFMT_NAME = ARM64.binfmt
IMAGE_UID = 10001  # the image's USER (workloads/Dockerfile)
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
SYSTEM_PACKAGES = ("qemu-user-static", "binfmt-support", "debootstrap", "buildah")
CHECK_APP = "getip"

# Everything below runs emulated, several times slower than native; the deadlines are generous
# bounds on a 2-core machine, not expectations. Measured on one here, cold, with a Go build
# beside it (load 10): arm64 base 128 s (download 60 s, stdlib bytecode under qemu 51 s), image
# build 146 s (the Dockerfile's venv and pip install, emulated), check 8 s.
BUILD_TIMEOUT_S = 3600
CHECK_TIMEOUT_S = 600
# Inside the check: how long gunicorn may take to answer its first request under qemu.
SERVER_DEADLINE_S = 180
LOCK_NAME = "arm64-build.lock"


def lock_name(platform: Platform) -> str:
    """One build per platform at a time (arm64-build.lock, armv7-build.lock)."""
    return f"{platform.suffix}-build.lock"


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


def binfmt_problem(entry: BinfmtEntry | None, name: str = BINFMT_NAME) -> str | None:
    """Why registration `name` cannot run its programs in a chroot, or None when it can."""
    if entry is None:
        return f"{name} is not registered with binfmt_misc"
    if not entry.enabled:
        return f"{name} is registered but disabled"
    # Without F (fix binary) the kernel opens the interpreter by path at exec time, inside the
    # chroot, where /usr/libexec/qemu-binfmt/... does not exist: every exec fails with ENOENT.
    if "F" not in entry.flags:
        return (
            f"{name} is registered without the F (fix binary) flag (flags: "
            f"{entry.flags or 'none'}), so it cannot run programs inside a chroot; "
            f"re-register it with `update-binfmts --disable {name}` and "
            f"`update-binfmts --enable {name}` (Debian's entry says fix_binary yes)"
        )
    return None


def read_binfmt_entry(binfmt_dir: Path = BINFMT_DIR, name: str = BINFMT_NAME) -> BinfmtEntry | None:
    """The kernel's current registration `name` (qemu-aarch64), or None."""
    path = binfmt_dir / name
    return parse_binfmt_entry(path.read_text()) if path.exists() else None


def ensure_binfmt(
    log: Log, binfmt_dir: Path = BINFMT_DIR, platform: Platform = ARM64
) -> BinfmtEntry:
    """Mount binfmt_misc if needed and register the platform's qemu with it; returns the
    registration."""
    name = platform.binfmt
    if shutil.which(platform.qemu) is None or shutil.which("update-binfmts") is None:
        raise ClusterError(
            f"{platform.qemu} or update-binfmts is missing: "
            f"apt-get install {' '.join(SYSTEM_PACKAGES)}"
        )
    if not (binfmt_dir / "status").exists():
        log(f"binfmt: mounting binfmt_misc on {binfmt_dir}")
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", binfmt_dir], timeout=30)
    entry = read_binfmt_entry(binfmt_dir, name)
    if entry is None or not entry.enabled:
        log(f"binfmt: {binfmt_problem(entry, name)}; update-binfmts --enable {name}")
        run(["update-binfmts", "--enable", name], timeout=60)
        entry = read_binfmt_entry(binfmt_dir, name)
    problem = binfmt_problem(entry, name)
    if problem is not None or entry is None:
        raise ClusterError(f"binfmt: {problem}")
    return entry


def is_native(platform: Platform) -> bool:
    """True when this machine runs the platform's programs without qemu."""
    return platform.deb_arch == host_arch()


def _buildah(*args: str | Path, timeout: float = 600) -> str:
    return run(["buildah", *args], timeout=timeout).stdout.strip()


def foreign_ref(platform: Platform, version: str) -> str:
    """A foreign image's local name: its own tag (`:v1-armv7`), so it never shadows the amd64
    `:v1` and `:v2`."""
    return f"{config.WORKLOAD_IMAGE_REPO}:{version}-{platform.suffix}"


def arm64_ref(version: str) -> str:
    """The arm64 image's local name."""
    return foreign_ref(ARM64, version)


def foreign_archive(paths: config.Paths, version: str, platform: Platform = ARM64) -> Path:
    """The cached OCI archive, keyed by the amd64 key (workloads' sources, `build.py`, which
    makes the base too) and the build's own arguments (how this platform's image is built).

    It lives in a folder of its own: `build.py` deletes stale `workloads-<version>-*.tar` next to
    its archives, which would otherwise include these.
    """
    # The checkout's path (the build context, last) is no part of the recipe.
    recipe = foreign_bud_args("REF", version, "BASE", platform)[:-1]
    key = tree_hash([], f"{workload_archive(paths, version).name} {' '.join(recipe)}")
    return paths.images / platform.suffix / f"workloads-{version}-{key}.tar"


def arm64_archive(paths: config.Paths, version: str) -> Path:
    """The cached arm64 OCI archive (`foreign_archive`)."""
    return foreign_archive(paths, version, ARM64)


def foreign_bud_args(ref: str, version: str, base: str, platform: Platform = ARM64) -> list[str]:
    """`build._bud_args` (CA bundle as a secret, pip variables, chroot isolation) for another
    platform."""
    args = _bud_args(ref, version, base)
    if args[0] != "bud":
        raise ClusterError("build._bud_args changed shape; expected it to start with 'bud'")
    # buildah 1.28's layer cache keys ENV steps by their unexpanded text, so with --layers the
    # `ENV APP_VERSION=$VERSION` step of v1 is reused for v2 (and back). A full build takes
    # about a minute under qemu and happens only when the workloads change: build without it.
    args = [a for a in args[1:] if a != "--layers"]
    return ["bud", f"--platform={platform.oci}", "--layers=false", *args]


def arm64_bud_args(ref: str, version: str, base: str) -> list[str]:
    """`foreign_bud_args` for arm64."""
    return foreign_bud_args(ref, version, base, ARM64)


@dataclass(frozen=True)
class BuildResult:
    """What building (or finding) a foreign image took."""

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


def image_platform(ref: str) -> str:
    """An image's platform from its configuration (`linux/arm/v7`), as an index would name it."""
    fields = _buildah(
        "inspect",
        "--type",
        "image",
        "--format",
        "{{.OCIv1.OS}}/{{.OCIv1.Architecture}}/{{.OCIv1.Variant}}",
        ref,
    )
    return fields.rstrip("/")


def build_foreign_image(
    paths: config.Paths, version: str, log: Log, platform: Platform = ARM64
) -> BuildResult:
    """Build `workloads/Dockerfile` for `platform` on its Debian base, cached as an OCI
    archive."""
    ref = foreign_ref(platform, version)
    archive = foreign_archive(paths, version, platform)
    what = f"{platform.suffix} image build"
    with file_lock(paths.cache / lock_name(platform), what, log) as waited:
        if archive.exists():
            log(f"{ref}: cached in {archive}")
            return BuildResult(ref, archive, True, 0.0, 0.0, archive.stat().st_size, waited)
        ensure_binfmt(log, platform=platform)
        started = time.monotonic()
        base = build_base_image(paths, log, platform.deb_arch)
        base_seconds = time.monotonic() - started
        log(f"{ref}: buildah bud --platform {platform.oci} workloads/Dockerfile (emulated)")
        started = time.monotonic()
        archive.parent.mkdir(parents=True, exist_ok=True)
        for old in archive.parent.glob(f"workloads-{version}-*.tar"):
            old.unlink()
        _buildah(*foreign_bud_args(ref, version, base, platform), timeout=BUILD_TIMEOUT_S)
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
        # An index names each image by the platform in its configuration: it must be this one.
        built_for = image_platform(ref)
        if built_for != platform.oci:
            raise ClusterError(f"{ref}: built for {built_for}, expected {platform.oci}")
        _export(ref, archive)
        result = BuildResult(
            ref, archive, False, base_seconds, image_seconds, archive.stat().st_size, waited
        )
        log(f"{ref}: {result.summary()}")
        return result


def build_arm64_image(paths: config.Paths, version: str, log: Log) -> BuildResult:
    """Build (or find cached) the arm64 image."""
    return build_foreign_image(paths, version, log, ARM64)


# Runs inside the image's container, as the image's user, with the image's Python. It prints one
# JSON line; `evaluate_check` judges it on the host. The server gets the real entrypoint, bound to
# a free loopback port (KUBE_ALIVE_BIND is the entrypoint's switch for running outside a pod);
# once it answers `/`, its health endpoint is asked too (it says the machine it runs on).
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
            except OSError as exc:
                last = repr(exc)
                time.sleep(0.25)
                continue
            try:
                with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
                    out["healthz"] = {"status": answer.status, "body": json.loads(answer.read())}
            except OSError as exc:
                last = f"GET /healthz: {exc!r}"
            break
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
    """`buildah run` of the check snippet in the image's container."""
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
    result: dict[str, Any],
    version: str,
    pod: str,
    uid: int = IMAGE_UID,
    platform: Platform = ARM64,
) -> list[str]:
    """What is wrong with the check's answer; an empty list means the image passed."""
    problems = []
    # qemu answers uname with the emulated machine; the ELF header shows the interpreter itself
    # is that platform's code.
    if result.get("machine") != platform.machine:
        problems.append(
            f"platform.machine() is {result.get('machine')!r}, expected {platform.machine!r}"
        )
    if result.get("elf_machine") != platform.elf_machine:
        problems.append(
            f"the interpreter's ELF machine is {result.get('elf_machine')}, expected "
            f"{platform.elf_machine} ({platform.machine})"
        )
    if result.get("uid") != uid:
        problems.append(f"ran as uid {result.get('uid')}, expected the image's user {uid}")
    for path, how in (("/", "test_client"), ("/", "tcp"), ("/healthz", "healthz")):
        seen = result.get(how)
        label = f"GET {path} ({how})" if how != "healthz" else "GET /healthz (tcp)"
        if not isinstance(seen, dict):
            problems.append(f"{label}: no answer; last error: {result.get('last_error')}")
            continue
        body = seen.get("body") or {}
        if seen.get("status") != 200:
            problems.append(f"{label}: status {seen.get('status')}, expected 200")
        if body.get("version") != version or body.get("pod") != pod:
            problems.append(
                f"{label}: answered pod={body.get('pod')!r} version={body.get('version')!r}, "
                f"expected pod={pod!r} version={version!r}"
            )
        if how == "healthz" and body.get("machine") != platform.machine:
            problems.append(
                f"{label}: says machine {body.get('machine')!r}, expected {platform.machine!r}"
            )
    return problems


def run_check(container: str, version: str, pod: str) -> tuple[dict[str, Any], float]:
    """Run the check snippet in `container`; its JSON answer and the seconds it took."""
    started = time.monotonic()
    proc = run(check_argv(container, version, pod), timeout=CHECK_TIMEOUT_S)
    seconds = time.monotonic() - started
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise ClusterError(
            f"the check printed no JSON line:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        ) from exc
    return result, seconds


def answer_line(result: dict[str, Any]) -> str:
    """The health endpoint's answer in one line (what the check saw the image say)."""
    seen = result.get("healthz") or {}
    body = seen.get("body") or {}
    return (
        f"GET /healthz {seen.get('status')}: machine={body.get('machine')!r} "
        f"version={body.get('version')!r} (platform.machine() {result.get('machine')!r}, "
        f"ELF machine {result.get('elf_machine')}, Python {result.get('python')}, "
        f"uid {result.get('uid')}, first answer after {result.get('server_first_answer_s')}s)"
    )


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
            f"health endpoint: {r.get('healthz')}",
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
    ctr = _buildah("from", "--arch", ARCH, f"oci-archive:{build.archive}")
    try:
        image_arch = _buildah("inspect", "--format", "{{.OCIv1.Architecture}}", ctr)
        result, seconds = run_check(ctr, version, pod)
    finally:
        run(["buildah", "rm", ctr], check=False)
    problems = evaluate_check(result, version, pod)
    if image_arch != ARCH:
        problems.insert(0, f"the image's architecture is {image_arch!r}, expected {ARCH!r}")
    return CheckReport(build, result, problems, seconds, image_arch)


# The three-platform index CI pushes: the workload repository, at the content tag with this
# suffix, so it never replaces the images the existing-cluster scenarios pull from the registry.
INDEX_REPOSITORY = "kube-alive/workloads"
INDEX_TAG_SUFFIX = "multiarch"
PUSH_TIMEOUT_S = 1200
PULL_TIMEOUT_S = 900


def index_tag(version: str) -> str:
    """`v1` -> `v1-<digest>-multiarch`."""
    return f"{workload_images.content_tag(version)}-{INDEX_TAG_SUFFIX}"


def platform_images(paths: config.Paths, version: str, log: Log) -> list[tuple[Platform, Path]]:
    """Each index platform's OCI archive: the native one is the local cluster's own image
    (`build.build_workload_images`), the others are built under qemu; all cached."""
    out = []
    for plat in INDEX_PLATFORMS:
        if is_native(plat):
            with images_lock(paths, log):
                built = dict(build_workload_images(paths, log))
            out.append((plat, built[workload_images.image_ref(version)]))
        else:
            out.append((plat, build_foreign_image(paths, version, log, plat).archive))
        log(f"{plat.oci}: {out[-1][1]}")
    return out


def push_index(archives: list[Path], reference: str, log: Log) -> None:
    """Assemble one index of the images in `archives` (each names its platform in its
    configuration) and push it, with the images, to `reference` over plain HTTP."""
    name = f"localhost/kube-alive/index-{os.getpid()}"
    run(["buildah", "manifest", "rm", name], check=False)
    _buildah("manifest", "create", name)
    try:
        for archive in archives:
            _buildah("manifest", "add", name, f"oci-archive:{archive}", timeout=PUSH_TIMEOUT_S)
        log(f"pushing the index and its {len(archives)} images to {reference}")
        _buildah(
            "manifest", "push", "--all", "--tls-verify=false", name, f"docker://{reference}",
            timeout=PUSH_TIMEOUT_S,
        )  # fmt: skip
    finally:
        run(["buildah", "manifest", "rm", name], check=False)


@dataclass
class PlatformAnswer:
    """One platform's image, pulled from the registry and run."""

    platform: Platform
    digest: str
    config_platform: str
    result: dict[str, Any]
    problems: list[str]
    seconds: float


@dataclass
class IndexReport:
    """The outcome of `check_index`."""

    reference: str
    index: ImageIndex
    problems: list[str]
    answers: list[PlatformAnswer]
    build_seconds: float
    push_seconds: float
    host_machine: str = field(default_factory=platform.machine)

    @property
    def ok(self) -> bool:
        """True when the index lists exactly the platforms and each image answered as its own."""
        return not self.problems and all(not a.problems for a in self.answers)

    def lines(self) -> list[str]:
        """A short human summary."""
        index = self.index
        out = [
            f"index: {self.reference} {index.digest} ({index.media_type})",
            f"platforms: {', '.join(index.platforms)}"
            + (f" (+{len(index.entries) - len(index.images)} attestations)" if
               len(index.entries) > len(index.images) else ""),
            f"images built or found in {self.build_seconds:.0f}s, pushed in "
            f"{self.push_seconds:.0f}s; host {self.host_machine}",
        ]  # fmt: skip
        out += [f"PROBLEM: {p}" for p in self.problems]
        for a in self.answers:
            how = "natively" if is_native(a.platform) else "under qemu"
            out.append(
                f"{a.platform.oci}: {a.digest} (config {a.config_platform}), run {how} in "
                f"{a.seconds:.0f}s: {answer_line(a.result)}"
            )
            out += [f"PROBLEM: {a.platform.oci}: {p}" for p in a.problems]
            if a.problems and a.result.get("server_log_tail"):
                out += ["server log:", *a.result["server_log_tail"]]
        names = ", ".join(p.oci for p in INDEX_PLATFORMS)
        out.append(
            f"OK: the index lists {names} and each image answers as its own machine"
            if self.ok
            else "FAILED"
        )
        return out


def check_platform(
    client: RegistryClient, entry: IndexEntry, plat: Platform, version: str, log: Log
) -> PlatformAnswer:
    """Pull one entry of the index by its digest and run the check in it (under qemu when the
    platform is not this machine's)."""
    problems = []
    config_platform = client.image_platform(INDEX_REPOSITORY, entry.digest)
    if config_platform != entry.platform:
        problems.append(
            f"the index calls {entry.digest} {entry.platform}, its configuration says "
            f"{config_platform}"
        )
    if not is_native(plat):
        ensure_binfmt(log, platform=plat)
    source = f"docker://{client.registry}/{INDEX_REPOSITORY}@{entry.digest}"
    how = "natively" if is_native(plat) else "under qemu"
    log(f"{plat.oci}: pulling {source} and running its app {how}")
    ctr = _buildah(
        "from", "--pull=always", "--tls-verify=false", "--quiet", *plat.arch_args(), source,
        timeout=PULL_TIMEOUT_S,
    )  # fmt: skip
    try:
        result, seconds = run_check(ctr, version, f"index-check-{plat.suffix}-{os.getpid()}")
    finally:
        run(["buildah", "rm", ctr], check=False)
    pod = f"index-check-{plat.suffix}-{os.getpid()}"
    problems += evaluate_check(result, version, pod, platform=plat)
    log(f"{plat.oci}: {answer_line(result)}")
    return PlatformAnswer(plat, entry.digest, config_platform, result, problems, seconds)


def check_index(
    paths: config.Paths, registry: str, log: Log, version: str = "v1", push: bool = True
) -> IndexReport:
    """Push the three-platform index of the workload image to `registry` (host:port, plain
    HTTP), read it back over the registry's API, and pull and run each platform's image."""
    tag = index_tag(version)
    reference = f"{registry}/{INDEX_REPOSITORY}:{tag}"
    build_seconds = push_seconds = 0.0
    if push:
        started = time.monotonic()
        built = platform_images(paths, version, log)
        build_seconds = time.monotonic() - started
        started = time.monotonic()
        push_index([archive for _plat, archive in built], reference, log)
        push_seconds = time.monotonic() - started
    client = RegistryClient(registry)
    index = client.index(INDEX_REPOSITORY, tag)
    log(f"{reference}: {index.digest} lists {', '.join(index.platforms)}")
    problems = index_problems(index, [plat.oci for plat in INDEX_PLATFORMS])
    answers = []
    for plat in INDEX_PLATFORMS:
        entry = next((e for e in index.images if e.platform == plat.oci), None)
        if entry is not None:
            answers.append(check_platform(client, entry, plat, version, log))
    return IndexReport(reference, index, problems, answers, build_seconds, push_seconds)


def main(argv: list[str] | None = None) -> int:
    """`python -m localcluster.multiarch check-arm64 | build-arm64 | build-armv7 | check-index
    REGISTRY | binfmt`."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.multiarch",
        description="Build the arm64 and arm/v7 workload images with buildah and qemu, prove "
        "they answer, and push and check the three-platform index.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check-arm64", help="build the arm64 image (cached) and run the app in it under qemu"
    )
    check.add_argument("--version", choices=("v1", "v2"), default="v1", help="image version")
    for suffix, plat in FOREIGN.items():
        build = sub.add_parser(
            f"build-{suffix}",
            help=f"only build the {plat.oci} image (cached), e.g. in the background ahead of "
            "the checks",
        )
        build.add_argument("--version", choices=("v1", "v2"), default="v1", help="image version")
    index = sub.add_parser(
        "check-index",
        help="push one index of the linux/amd64, linux/arm64 and linux/arm/v7 images to "
        "REGISTRY (plain HTTP), read it back and run each platform's image",
    )
    index.add_argument("registry", metavar="REGISTRY", help="host:port of a plain-HTTP registry")
    index.add_argument("--version", choices=("v1", "v2"), default="v1", help="image version")
    index.add_argument(
        "--no-push", action="store_true", help="only read back and check what is there"
    )
    sub.add_parser("binfmt", help="register qemu-aarch64 and qemu-arm with binfmt_misc")
    args = parser.parse_args(argv)
    try:
        if args.command == "binfmt":
            for plat in FOREIGN.values():
                entry = ensure_binfmt(stderr_log, platform=plat)
                print(
                    f"{plat.binfmt}: enabled, interpreter {entry.interpreter}, flags {entry.flags}"
                )
            return 0
        if args.command.startswith("build-"):
            plat = FOREIGN[args.command.removeprefix("build-")]
            built = build_foreign_image(config.Paths.default(), args.version, stderr_log, plat)
            print(f"{built.ref}: {built.summary()}; {built.archive}")
            return 0
        if args.command == "check-index":
            registry = args.registry.strip().rstrip("/")
            if not registry or "://" in registry or "/" in registry:
                parser.error(f"REGISTRY is host:port without a scheme or path, not {registry!r}")
            result = check_index(
                config.Paths.default(), registry, stderr_log, args.version, not args.no_push
            )
            print("\n".join(result.lines()))
            return 0 if result.ok else 1
        report = check_arm64(config.Paths.default(), stderr_log, args.version)
    except ClusterError as exc:
        print(f"multiarch {args.command}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

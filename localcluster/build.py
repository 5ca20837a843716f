"""Builds the cluster's binaries from their Go modules and the images it runs, cached by content.

Each component has a wrapper module in `gomod/<component>` (go.mod and go.sum committed). A
binary is rebuilt only when its wrapper module changes: the cache key is the version plus a hash of
the wrapper's files. Images are built into OCI archives under the cache and imported into the
cluster's containerd at `up`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from localcluster import config
from localcluster.util import ClusterError, Log, file_lock, run, stderr_log, tree_hash

# The one place the workload images are named (standard library only, no cluster code).
from suite import images as workload_images


@dataclass(frozen=True)
class Component:
    """One Go build: which wrapper module, which packages, which binaries come out."""

    name: str
    version: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    ldflags: str = ""


def _k8s_ldflags(version: str) -> str:
    # The version packages read these at run time; without them /version says v0.0.0.
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


K8S_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubeadm",
    "kube-proxy",
    "kubectl",
)

COMPONENTS: tuple[Component, ...] = (
    Component(
        "kubernetes",
        config.KUBERNETES_VERSION,
        ("tool",),
        K8S_BINARIES,
        _k8s_ldflags(config.KUBERNETES_VERSION),
    ),
    Component("etcd", config.ETCD_VERSION, ("tool",), ("server",)),
    Component(
        "metrics-server",
        config.METRICS_SERVER_VERSION,
        ("tool",),
        ("metrics-server",),
        f"-X sigs.k8s.io/metrics-server/pkg/version.gitVersion={config.METRICS_SERVER_VERSION}",
    ),
    Component("coredns", config.COREDNS_VERSION, (".",), ("coredns",)),
)

# Binary names the rest of the package uses, mapped to (component, file in its build folder).
BINARY_SOURCES: dict[str, tuple[str, str]] = {
    **{b: ("kubernetes", b) for b in K8S_BINARIES},
    "etcd": ("etcd", "server"),
    "metrics-server": ("metrics-server", "metrics-server"),
    "coredns": ("coredns", "coredns"),
}


def component_dir(paths: config.Paths, component: Component) -> Path:
    """The cache folder of one component's build, keyed by version and wrapper-module hash."""
    src = config.GOMOD_DIR / component.name
    key = tree_hash(
        [p for p in src.iterdir() if p.is_file()], component.ldflags + " ".join(component.packages)
    )
    return paths.bin / f"{component.name}-{component.version}-{key}"


def binary(paths: config.Paths, name: str) -> Path:
    """The path of a built binary (it may not exist yet)."""
    comp_name, file = BINARY_SOURCES[name]
    comp = next(c for c in COMPONENTS if c.name == comp_name)
    return component_dir(paths, comp) / file


def build_component(paths: config.Paths, component: Component, log: Log) -> Path:
    """Build one component unless its cached build is complete; returns its folder."""
    out = component_dir(paths, component)
    if all((out / b).exists() for b in component.binaries):
        log(f"{component.name} {component.version}: cached in {out}")
        return out
    log(f"{component.name} {component.version}: building from Go modules (cold: minutes)")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod")
    argv = ["go", "build", "-trimpath", "-ldflags", f"-s -w {component.ldflags}", "-o", f"{tmp}/"]
    run([*argv, *component.packages], cwd=config.GOMOD_DIR / component.name, env=env, timeout=3600)
    missing = [b for b in component.binaries if not (tmp / b).exists()]
    if missing:
        raise ClusterError(f"{component.name}: go build produced no {', '.join(missing)} in {tmp}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def build_binaries(paths: config.Paths, log: Log) -> None:
    """Build (or find cached) every Go component."""
    for component in COMPONENTS:
        build_component(paths, component, log)


def module_dir(wrapper: str, module: str) -> Path:
    """Where the Go module cache holds `module` at the version wrapper module `wrapper` pins."""
    out = run(
        ["go", "list", "-m", "-f", "{{.Dir}}", module],
        cwd=config.GOMOD_DIR / wrapper,
        env=dict(os.environ, GOFLAGS="-mod=mod"),
        timeout=600,
    )
    return Path(out.stdout.strip())


def _kubernetes_module_dir() -> Path:
    return module_dir("kubernetes", "k8s.io/kubernetes")


def _buildah(*args: str | Path, timeout: float = 600) -> str:
    return run(["buildah", *args], timeout=timeout).stdout.strip()


def build_pause_image(paths: config.Paths, log: Log) -> Path:
    """The pod sandbox image: pause.c from the kubernetes module, static, in an empty image."""
    archive = paths.images / f"pause-{config.PAUSE_VERSION}.tar"
    if archive.exists():
        return archive
    log(f"pause {config.PAUSE_VERSION}: compiling pause.c from the kubernetes module")
    source = _kubernetes_module_dir() / "build" / "pause" / "linux" / "pause.c"
    paths.images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "pause"
        run(["gcc", "-Os", "-static", f"-DVERSION=v{config.PAUSE_VERSION}", "-o", exe, source])
        run(["strip", exe])
        ctr = _buildah("from", "scratch")
        try:
            _buildah("copy", "--chmod", "0755", ctr, exe, "/pause")
            _buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctr)
            _buildah("commit", "--rm", ctr, config.PAUSE_IMAGE)
        except ClusterError:
            run(["buildah", "rm", ctr], check=False)
            raise
    _export(config.PAUSE_IMAGE, archive)
    return archive


def _export(image: str, archive: Path) -> None:
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _buildah("push", image, f"oci-archive:{partial}:{image}")
    partial.rename(archive)


# The Debian packages the Dockerfile needs from BASE_IMAGE: python3 with its venv module, and the
# CA certificates the official slim Python image carries too.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The base is these, the shell the Dockerfile's RUN steps use, the packages that lay out the file
# system and /etc (libc-bin: the C library's name service and loader configuration), and
# everything they depend on to run.
BASE_ROOTS = (*BASE_PACKAGES, "dash", "base-files", "base-passwd", "libc-bin")
# Dependencies that only maintainer scripts use. The base is unpacked, never configured by dpkg,
# so nothing in it ever runs them: leaving them (and what only they pull in: perl, apt's
# libraries) out is most of what makes the base lean.
MAINTAINER_ONLY = frozenset({"dpkg", "debconf", "perl-base", "tar", "install-info"})
# Merged /usr: Debian's top-level program and library folders are symlinks into /usr.
MERGED_USR = {
    "amd64": ("bin", "sbin", "lib", "lib64"),
    "arm64": ("bin", "sbin", "lib"),
    "armhf": ("bin", "sbin", "lib"),
}
# Debian's architecture name -> the OCI platform's architecture and variant (armhf is ARMv7 with
# hardware floating point: 32-bit Raspberry Pi OS, linux/arm/v7).
OCI_ARCHES = {"amd64": ("amd64", ""), "arm64": ("arm64", ""), "armhf": ("arm", "v7")}
# Not needed to run Python: documentation, manuals, translations.
SLIMMED = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
)
DEB_ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}
DEBOOTSTRAP_TIMEOUT_S = 1800
# Compiling the standard library's bytecode with the image's own Python: seconds natively,
# minutes under qemu.
COMPILE_TIMEOUT_S = 1800


def host_arch() -> str:
    """This machine's Debian architecture name."""
    machine = platform.machine()
    if machine not in DEB_ARCHES:
        raise ClusterError(f"no Debian architecture known for machine {machine!r}")
    return DEB_ARCHES[machine]


def base_key(arch: str) -> str:
    """The content key of the python base: this recipe (this file), the suite and the arch."""
    return tree_hash([Path(__file__)], f"{config.DEBIAN_SUITE} {arch}")


def base_image_ref(arch: str | None = None) -> str:
    """The python base's local image name; it changes whenever its recipe does."""
    arch = arch or host_arch()
    return f"{config.BASE_IMAGE}-{arch}-{base_key(arch)}"


def parse_control(text: str) -> dict[str, str]:
    """A deb's control fields (`dpkg-deb --field` output), continuation lines joined."""
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def _relations(field: str) -> list[list[str]]:
    # "libc6 (>= 2.34), zlib1g | libz, python3:any" -> [["libc6"], ["zlib1g", "libz"], ["python3"]]
    groups = []
    for group in field.split(","):
        names = [re.split(r"[\s(:\[]", alt.strip(), maxsplit=1)[0] for alt in group.split("|")]
        if any(names):
            groups.append([n for n in names if n])
    return groups


def package_closure(
    controls: dict[str, dict[str, str]],
    roots: tuple[str, ...] = BASE_ROOTS,
    skip: frozenset[str] = MAINTAINER_ONLY,
) -> list[str]:
    """The packages `roots` need to run: Pre-Depends and Depends, transitively, without `skip`.

    `controls` maps each available package to its control fields. An alternative is satisfied by
    the first available package that is or provides it; one that names a skipped package is left
    out with it. Raises ClusterError when a dependency cannot be met from `controls`.
    """
    provides: dict[str, str] = {}
    for name, fields in controls.items():
        for group in _relations(fields.get("Provides", "")):
            provides.setdefault(group[0], name)
    needed: list[str] = []
    todo = list(roots)
    while todo:
        name = todo.pop(0)
        if name in needed:
            continue
        if name not in controls:
            raise ClusterError(f"python base: package {name} was not downloaded")
        needed.append(name)
        fields = controls[name]
        for group in _relations(fields.get("Pre-Depends", "") + "," + fields.get("Depends", "")):
            if any(alt in skip for alt in group):
                continue
            found = next(
                (provides.get(a, a) for a in group if provides.get(a, a) in controls), None
            )
            if found is None:
                raise ClusterError(f"python base: {name} depends on {' | '.join(group)}: not found")
            if found not in skip:
                todo.append(found)
    return needed


def _download_debs(paths: config.Paths, arch: str, work: Path) -> dict[str, Path]:
    """debootstrap --download-only: the minbase set plus BASE_PACKAGES with their dependencies
    resolved by debootstrap; debs are kept in a cache folder across recipes."""
    debs = paths.cache / "debs" / f"{config.DEBIAN_SUITE}-{arch}"
    debs.mkdir(parents=True, exist_ok=True)
    run(
        [
            "debootstrap",
            "--download-only",
            f"--arch={arch}",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            f"--cache-dir={debs}",
            config.DEBIAN_SUITE,
            work,
        ],
        timeout=DEBOOTSTRAP_TIMEOUT_S,
    )
    found: dict[str, Path] = {}
    for line in (work / "debootstrap" / "debpaths").read_text().splitlines():
        name, _, where = line.partition(" ")
        found[name] = work / where.lstrip("/")
    return found


def _unpack(deb: Path, root: Path, scratch: Path) -> None:
    # dpkg-deb -x would replace the merged-/usr symlinks with folders; GNU tar can keep them.
    tarball = scratch / "data.tar"
    with tarball.open("wb") as out:
        try:
            subprocess.run(
                ["dpkg-deb", "--fsys-tarfile", str(deb)],
                stdout=out,
                stderr=subprocess.PIPE,
                check=True,
                timeout=300,
            )
        except subprocess.CalledProcessError as exc:
            raise ClusterError(
                f"dpkg-deb --fsys-tarfile {deb} exited {exc.returncode}: {exc.stderr.decode()}"
            ) from exc
    run(["tar", "-x", "--keep-directory-symlink", "-f", tarball, "-C", root], timeout=300)
    tarball.unlink()


def _configure(root: Path) -> None:
    """What the skipped maintainer scripts would have left that running Python needs."""
    # base-passwd's postinst: the system users and groups.
    for name in ("passwd", "group"):
        master = root / "usr" / "share" / "base-passwd" / f"{name}.master"
        shutil.copyfile(master, root / "etc" / name)
        (root / "etc" / name).chmod(0o644)
    # libc-bin's postinst: without nsswitch.conf the C library would ask DNS before /etc/hosts.
    shutil.copyfile(root / "usr/share/libc-bin/nsswitch.conf", root / "etc/nsswitch.conf")
    # ca-certificates' postinst (update-ca-certificates with every certificate trusted): the
    # bundle OpenSSL's default paths lead to.
    certs = sorted((root / "usr" / "share" / "ca-certificates").rglob("*.crt"))
    if not certs:
        raise ClusterError(f"python base: no certificates under {root}/usr/share/ca-certificates")
    bundle = root / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_text("".join(c.read_text().rstrip("\n") + "\n" for c in certs))
    # base-files' postinst: /var/run and /var/lock point into /run.
    for old, target in (("var/run", "/run"), ("var/lock", "/run/lock")):
        if (root / old).is_dir() and not (root / old).is_symlink():
            (root / old).rmdir()
        if not (root / old).is_symlink():
            (root / old).symlink_to(target)
    for sub in SLIMMED:
        shutil.rmtree(root / sub, ignore_errors=True)


def make_base_rootfs(paths: config.Paths, arch: str, rootfs: Path, log: Log) -> None:
    """A Debian rootfs of Python and only what it needs to run, for `arch`, with no emulation.

    debootstrap downloads the packages (and resolves their dependencies); only the closure of
    BASE_ROOTS is unpacked, with tar, natively for any architecture. No maintainer script runs:
    `_configure` does the little of their work that running Python needs, and the image's own
    Python compiles the standard library's bytecode (the root file system is read-only at run
    time, so nothing can be cached later), under qemu for a foreign `arch`.
    """
    partial = rootfs.with_name(rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    work = partial / ".download"
    log(f"python base ({arch}): debootstrap --download-only {config.DEBIAN_SUITE}")
    debs = _download_debs(paths, arch, work)
    controls = {
        name: parse_control(
            run(["dpkg-deb", "--field", deb, "Pre-Depends", "Depends", "Provides"]).stdout
        )
        for name, deb in debs.items()
    }
    packages = package_closure(controls)
    log(f"python base ({arch}): unpacking {len(packages)} of {len(debs)} packages")
    root = partial / "root"
    root.mkdir(mode=0o755)
    (root / "usr").mkdir(mode=0o755)
    for top in MERGED_USR[arch]:
        (root / "usr" / top).mkdir(mode=0o755)
        (root / top).symlink_to(f"usr/{top}")
    for name in packages:
        _unpack(debs[name], root, partial)
    stray = [p.name for p in root.iterdir() if p.name.startswith("lib") and not p.is_symlink()]
    if stray:
        raise ClusterError(f"python base ({arch}): {', '.join(stray)} outside merged /usr")
    _configure(root)
    (root / "etc" / "kube-alive-packages").write_text("\n".join(sorted(packages)) + "\n")
    log(f"python base ({arch}): compiling the standard library with the image's Python")
    stdlib = run(
        [
            "chroot",
            root,
            "/usr/bin/python3",
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ],
        timeout=COMPILE_TIMEOUT_S,
    ).stdout.strip()
    run(
        ["chroot", root, "/usr/bin/python3", "-m", "compileall", "-q", "-x", "/test/", stdlib],
        timeout=COMPILE_TIMEOUT_S,
    )
    shutil.rmtree(work)
    shutil.rmtree(rootfs, ignore_errors=True)
    root.rename(rootfs)
    shutil.rmtree(partial)


def build_base_image(paths: config.Paths, log: Log, arch: str | None = None) -> str:
    """The Debian Python base image for the workloads' BASE_IMAGE; returns its name.

    Users with Docker build on the official slim Python image; here no image can be pulled, so the
    same Dockerfile builds on this locally made base instead. It is cached by `base_key`: in the
    image store under that name, and as a rootfs folder it can be committed from again.
    """
    arch = arch or host_arch()
    ref = base_image_ref(arch)
    if run(["buildah", "inspect", "--type", "image", ref], check=False).returncode == 0:
        return ref
    rootfs = paths.cache / "rootfs" / f"{config.DEBIAN_SUITE}-{arch}-{base_key(arch)}"
    if not (rootfs / "usr" / "bin" / "python3").exists():
        started = time.monotonic()
        # Earlier recipes' folders (this recipe never mounts anything inside them).
        earlier = re.compile(rf"{config.DEBIAN_SUITE}-{arch}-[0-9a-f]{{12}}(\.partial)?")
        for stale in rootfs.parent.glob(f"{config.DEBIAN_SUITE}-{arch}-*"):
            if earlier.fullmatch(stale.name) and not stale.name.startswith(rootfs.name):
                shutil.rmtree(stale)
        make_base_rootfs(paths, arch, rootfs, log)
        log(f"python base ({arch}): rootfs made in {time.monotonic() - started:.0f}s")
    log(f"python base ({arch}): committing {rootfs} as {ref}")
    oci_arch, variant = OCI_ARCHES[arch]
    platform_args = ["--arch", oci_arch, *(["--variant", variant] if variant else [])]
    ctr = _buildah("from", *platform_args, "scratch")
    try:
        _buildah("copy", ctr, f"{rootfs}/", "/", timeout=1200)
        _buildah(
            "config",
            *platform_args,
            "--os",
            "linux",
            *("--env", "PATH=/usr/local/bin:/usr/bin:/bin", "--cmd", "python3"),
            ctr,
        )
        _buildah("commit", "--rm", ctr, ref, timeout=1200)
    except ClusterError:
        run(["buildah", "rm", ctr], check=False)
        raise
    # Earlier recipes' bases: untagged, so the store does not grow with every recipe change (an
    # image still in use stays; nothing depends on this succeeding).
    earlier_prefix = f"{config.BASE_IMAGE}-{arch}-"
    for name in _buildah("images", "--format", "{{.Name}}:{{.Tag}}").splitlines():
        if name.startswith(earlier_prefix) and name != ref:
            run(["buildah", "rmi", name], check=False)
    return ref


WORKLOAD_VERSIONS = ("v1", "v2")


def workload_archive(paths: config.Paths, version: str) -> Path:
    """The cached OCI archive of one workload image version, keyed by the workloads' sources."""
    src = config.REPO_DIR / "workloads"
    files = [
        p
        for p in src.rglob("*")
        if p.is_file() and "tests" not in p.parts and "__pycache__" not in p.parts
    ]
    # The recipe is part of the key: a change to how images are built rebuilds them.
    key = tree_hash([*files, Path(__file__)], version)
    return paths.images / f"workloads-{version}-{key}.tar"


def build_workload_images(paths: config.Paths, log: Log) -> list[tuple[str, Path]]:
    """Build the workload images from workloads/Dockerfile (cached), named by content
    (`localhost/kube-alive/workloads:v1-<digest>` and `:v2-<digest>`, suite.images); returns
    each reference with its OCI archive (which carries that name only)."""
    results: list[tuple[str, Path]] = []
    for version in WORKLOAD_VERSIONS:
        ref = workload_images.image_ref(version)
        archive = workload_archive(paths, version)
        if not archive.exists():
            base = build_base_image(paths, log)
            log(f"{ref}: buildah bud workloads/Dockerfile (BASE_IMAGE={base})")
            paths.images.mkdir(parents=True, exist_ok=True)
            for old in paths.images.glob(f"workloads-{version}-*.tar"):
                old.unlink()
            _buildah(*_bud_args(ref, version, base), timeout=1800)
            _check_version(ref, version)
            # The plain tag, for the demo's manifests (`kubectl apply -k manifests/`).
            _buildah("tag", ref, workload_images.alias_ref(version))
            _export(ref, archive)
            log(f"{ref}: {image_size_bytes(archive) / 1e6:.1f} MB")
        results.append((ref, archive))
    return results


def image_size_bytes(archive: Path) -> int:
    """An image's size as `buildah images` counts it: its layers, uncompressed, from its OCI
    archive (so it needs no image store)."""
    with tarfile.open(archive) as tar:

        def member(name: str) -> IO[bytes]:
            found = tar.extractfile(name)
            if found is None:
                raise ClusterError(f"{archive}: no {name}")
            return found

        def blob(digest: str) -> IO[bytes]:
            return member("blobs/" + digest.replace(":", "/"))

        index = json.load(member("index.json"))
        manifest = json.load(blob(index["manifests"][0]["digest"]))
        total = 0
        for layer in manifest["layers"]:
            data = blob(layer["digest"])
            inflate = zlib.decompressobj(31) if layer["mediaType"].endswith("+gzip") else None
            while chunk := data.read(1 << 20):
                total += len(inflate.decompress(chunk)) if inflate else len(chunk)
    return total


def images_lock(paths: config.Paths, log: Log) -> AbstractContextManager[float]:
    """The lock of the workload images' folder: one builder (or importer) at a time."""
    return file_lock(paths.images / ".lock", "workload images", log)


def check_image_sizes(paths: config.Paths, max_mb: float, log: Log) -> list[str]:
    """Build (or find cached) the workload images and print each one's size; returns one
    problem per image larger than `max_mb` (1 MB = 10^6 bytes, as buildah counts)."""
    problems = []
    with images_lock(paths, log):
        built = build_workload_images(paths, log)
    for ref, archive in built:
        megabytes = image_size_bytes(archive) / 1e6
        verdict = "OK" if megabytes <= max_mb else "TOO BIG"
        print(f"{ref}: {megabytes:.1f} MB (at most {max_mb:g} MB): {verdict}")
        if megabytes > max_mb:
            problems.append(f"{ref} is {megabytes:.1f} MB, more than {max_mb:g} MB")
    return problems


IMAGE_CHECKS_ENV = "KUBE_ALIVE_IMAGE_CHECKS"


def image_checks_skip_reason(
    cluster: str | None, euid: int, in_ci: bool, environ: dict[str, str]
) -> str | None:
    """Why the image checks (size, arm64 under qemu) do not run in this pytest run, or None.

    They build images with buildah as root, so they belong to the local cluster's run
    (`pytest --cluster=local`, as .ci/run does, where they never skip) or to a run that opts in
    with KUBE_ALIVE_IMAGE_CHECKS=1. Anywhere else (`tox -e unit`, other clusters, no root) they
    are skipped with this reason, never failed.
    """
    local = cluster == "local"
    if not local and environ.get(IMAGE_CHECKS_ENV) != "1":
        return (
            f"image check (buildah as root): runs with --cluster=local (as .ci/run does) or "
            f"{IMAGE_CHECKS_ENV}=1; this run has --cluster={cluster or '(none)'}"
        )
    if euid != 0 and not (local and in_ci):
        return "image check: needs root (buildah builds, binfmt_misc); run it as root"
    return None


def _check_version(ref: str, version: str) -> None:
    # buildah 1.28 with --layers reused a cached `ENV APP_VERSION=$VERSION` step across build
    # arguments, so v2 answered "v1"; the build no longer caches layers, and this proves it.
    env = _buildah("inspect", "--type", "image", "--format", "{{.OCIv1.Config.Env}}", ref)
    if f"APP_VERSION={version}" not in env:
        raise ClusterError(f"{ref}: built with VERSION={version} but its environment is {env}")


def _bud_args(ref: str, version: str, base: str) -> list[str]:
    args = [
        "bud",
        "--isolation=chroot",
        "--network=host",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        f"VERSION={version}",
    ]
    # pip inside the build must trust this machine's TLS proxy: the CA bundle is mounted for the
    # build only (a secret), never copied into the image.
    bundle = _ca_bundle()
    if bundle is not None:
        args += ["--secret", f"id=cabundle,src={bundle}"]
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        if os.environ.get(var):
            args += ["--build-arg", f"{var}={os.environ[var]}"]
    return [*args, "-f", "workloads/Dockerfile", "-t", ref, str(config.REPO_DIR)]


def _ca_bundle() -> Path | None:
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def main(argv: list[str] | None = None) -> int:
    """`python -m localcluster.build image-size --max-mb N`: the CI check of the image's size."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.build",
        description="The workload images' build checks (images are built, or found cached).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    size = sub.add_parser(
        "image-size", help="print each workload image's size; exit 1 when one is over --max-mb"
    )
    size.add_argument("--max-mb", type=float, required=True, help="largest size allowed, in MB")
    args = parser.parse_args(argv)
    try:
        problems = check_image_sizes(config.Paths.default(), args.max_mb, stderr_log)
    except ClusterError as exc:
        print(f"build {args.command}: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

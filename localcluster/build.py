"""Builds the cluster's binaries from their Go modules and the images it runs, cached by content.

Each component has a wrapper module in `gomod/<component>` (go.mod and go.sum committed). A
binary is rebuilt only when its wrapper module changes: the cache key is the version plus a hash of
the wrapper's files. Images are built into OCI archives under the cache and imported into the
cluster's containerd at `up`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from localcluster import config
from localcluster.util import ClusterError, Log, run, tree_hash


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


def _kubernetes_module_dir() -> Path:
    out = run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"],
        cwd=config.GOMOD_DIR / "kubernetes",
        env=dict(os.environ, GOFLAGS="-mod=mod"),
        timeout=600,
    )
    return Path(out.stdout.strip())


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


def build_base_image(paths: config.Paths, log: Log) -> None:
    """A Debian Python base image made with debootstrap, for the workloads' BASE_IMAGE.

    Users with Docker build on the official slim Python image; here no image can be pulled, so the
    same Dockerfile builds on this locally made base instead.
    """
    if (
        run(["buildah", "inspect", "--type", "image", config.BASE_IMAGE], check=False).returncode
        == 0
    ):
        return
    rootfs = paths.cache / "rootfs" / config.DEBIAN_SUITE
    if not (rootfs / "usr" / "bin" / "python3").exists():
        log(f"python base: debootstrap {config.DEBIAN_SUITE} (about a minute)")
        shutil.rmtree(rootfs, ignore_errors=True)
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                config.DEBIAN_SUITE,
                rootfs,
            ],
            timeout=1800,
        )
    # Slim the base: docs, man pages, locales and apt lists are not needed to run Python.
    for sub in ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / sub, ignore_errors=True)
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    log("python base: committing the rootfs as an image")
    ctr = _buildah("from", "scratch")
    try:
        _buildah("copy", ctr, f"{rootfs}/", "/", timeout=1200)
        _buildah("config", "--env", "PATH=/usr/local/bin:/usr/bin:/bin", "--cmd", "python3", ctr)
        _buildah("commit", "--rm", ctr, config.BASE_IMAGE, timeout=1200)
    except ClusterError:
        run(["buildah", "rm", ctr], check=False)
        raise


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
    """Build `localhost/kube-alive/workloads:v1` and `:v2` from workloads/Dockerfile (cached)."""
    results: list[tuple[str, Path]] = []
    for version in WORKLOAD_VERSIONS:
        ref = f"{config.WORKLOAD_IMAGE_REPO}:{version}"
        archive = workload_archive(paths, version)
        if not archive.exists():
            build_base_image(paths, log)
            log(f"{ref}: buildah bud workloads/Dockerfile (BASE_IMAGE={config.BASE_IMAGE})")
            paths.images.mkdir(parents=True, exist_ok=True)
            for old in paths.images.glob(f"workloads-{version}-*.tar"):
                old.unlink()
            _buildah(*_bud_args(ref, version), timeout=1800)
            _check_version(ref, version)
            _export(ref, archive)
        results.append((ref, archive))
    return results


def _check_version(ref: str, version: str) -> None:
    # buildah 1.28 with --layers reused a cached `ENV APP_VERSION=$VERSION` step across build
    # arguments, so v2 answered "v1"; the build no longer caches layers, and this proves it.
    env = _buildah("inspect", "--type", "image", "--format", "{{.OCIv1.Config.Env}}", ref)
    if f"APP_VERSION={version}" not in env:
        raise ClusterError(f"{ref}: built with VERSION={version} but its environment is {env}")


def _bud_args(ref: str, version: str) -> list[str]:
    args = [
        "bud",
        "--isolation=chroot",
        "--network=host",
        "--build-arg",
        f"BASE_IMAGE={config.BASE_IMAGE}",
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

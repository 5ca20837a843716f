"""The kind node image, assembled offline from the same pinned build as the local cluster.

`kind build node-image` cannot work without a registry (it pulls images inside its build
container), so the image is put together here from what this machine builds:

- a Debian root filesystem (debootstrap) with Debian's systemd, containerd, runc and CNI plugins,
  the packages kind's own base image installs;
- kind's node files (`images/base/files`, the base Dockerfile's systemd clean-up, the default
  storage manifest), read from the `sigs.k8s.io/kind` Go module at the pinned release;
- kubeadm, kubelet and kubectl from the local cluster's Kubernetes build (`/usr/bin`), and
  `/kind/version`;
- every image the node needs, written as image archives by `imagearchive` (control plane, etcd,
  CoreDNS, pause, kube-proxy, the pod network agent `podnet`, local-path-provisioner and
  metrics-server), imported into the node's containerd at boot, before the kubelet starts.
  Image names come from `kubeadm config images list` and kind's own files, never from here.

The archive is cached by the content of everything that goes into it: a rebuild with nothing
changed finds it in well under a second.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localcluster import build, config, imagearchive
from localcluster.util import ClusterError, Log, run, tail, tree_hash

KIND_VERSION = "v0.30.0"
#: The release kind's storage manifest builds its provisioner image from.
LOCAL_PATH_PROVISIONER_VERSION = "v0.0.30"
NODE_IMAGE = f"localhost/kube-alive/kind-node:{config.KUBERNETES_VERSION}"
METRICS_SERVER_IMAGE = f"localhost/kube-alive/metrics-server:{config.METRICS_SERVER_VERSION}"
#: Where the node keeps the metrics-server manifest the kind provider applies.
METRICS_SERVER_MANIFEST = "/kind/manifests/kube-alive-metrics-server.yaml"
HERE = Path(__file__).resolve().parent

#: crictl, as kind's base image carries it (kind's `export logs` runs `crictl images` on each node).
CRICTL = build.Component("crictl", "v1.34.0", ("tool",), ("crictl",))
KIND_COMPONENTS: tuple[build.Component, ...] = (
    build.Component("kind", KIND_VERSION, ("tool",), ("kind",)),
    build.Component(
        "local-path-provisioner",
        LOCAL_PATH_PROVISIONER_VERSION,
        ("tool",),
        ("local-path-provisioner",),
    ),
    build.Component("podnet", "v1", (".",), ("podnet",)),
    CRICTL,
)

# What kind's images/base/Dockerfile installs, with Debian's containerd, runc and CNI plugins in
# place of kind's own builds.
NODE_PACKAGES = (
    "systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,"
    "pigz,fuse-overlayfs,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc,"
    "containernetworking-plugins,socat,ebtables"
)
# The base of kube-proxy, podnet and the local-path helper: iptables for kube-proxy, iproute2
# for podnet, a shell and coreutils for the helper.
NET_PACKAGES = "iptables,nftables,conntrack,kmod,iproute2,ca-certificates"
SLIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
    "var/lib/apt/lists",
    "var/cache/apt/archives",
)
CAP_NET_BIND_SERVICE = 10


@dataclass(frozen=True)
class NodeImage:
    """A built node image: its reference and its archive (loadable with `docker load`)."""

    ref: str
    archive: Path


def kind_cache(paths: config.Paths) -> Path:
    """Where the node image's inputs and archives are cached."""
    return paths.cache / "kind"


def kind_binary(paths: config.Paths) -> Path:
    """The pinned kind CLI (built by `build_node_image`, or by `build_kind_cli` alone)."""
    return build.component_dir(paths, KIND_COMPONENTS[0]) / "kind"


def build_kind_cli(paths: config.Paths, log: Log) -> Path:
    """Build (or find cached) the pinned kind CLI; returns its path."""
    build.build_component(paths, KIND_COMPONENTS[0], log)
    return kind_binary(paths)


@contextlib.contextmanager
def _step(name: str, log: Log) -> Iterator[None]:
    """Names the build step in any failure, so a broken build says where it broke."""
    log(f"kind node image: {name}")
    try:
        yield
    except (ClusterError, OSError) as error:
        raise ClusterError(f"kind node image, step '{name}' failed: {error}") from error


def _debootstrap(target: Path, packages: str, log_file: Path) -> None:
    """A minbase Debian root filesystem with `packages`, slimmed; cached by its package list."""
    if (target / ".complete").exists():
        return
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # A private mount namespace: debootstrap's /proc and /sys mounts never show on the host and
    # vanish with it, also when it is killed.
    argv = ["unshare", "--mount", "--propagation", "private", "debootstrap", "--variant=minbase"]
    argv += [f"--include={packages}", config.DEBIAN_SUITE, str(partial)]
    with log_file.open("w") as out:
        try:
            code = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=1800
            ).returncode
        except subprocess.TimeoutExpired as error:
            raise ClusterError(f"debootstrap: no end within 1800s; see {log_file}") from error
    if code != 0:
        raise ClusterError(
            f"debootstrap exited {code}; last lines of {log_file}:\n{tail(log_file)}"
        )
    for sub in SLIM:
        shutil.rmtree(partial / sub, ignore_errors=True)
        (partial / sub).mkdir(parents=True, exist_ok=True)
    (partial / ".complete").write_text(packages)
    partial.rename(target)


def _rootfs_dir(paths: config.Paths, name: str, packages: str) -> Path:
    return kind_cache(paths) / f"{name}-{config.DEBIAN_SUITE}-{tree_hash([], packages)}"


def go_string_constant(source: str, name: str) -> str:
    """A Go raw-string constant of kind's nodeimage package, with `+ name +` concatenations of
    other string constants resolved (how kind writes its default manifests)."""
    consts = dict(re.findall(r'const (\w+)\s*=\s*"([^"]*)"', source))
    match = re.search(r"const " + name + r" = `(.*?)\n`\n", source, re.S)
    if match is None:
        raise ClusterError(f"kind source: no constant {name}")
    body = re.sub(r"` \+ (\w+) \+ `", lambda m: consts[m.group(1)], match.group(1))
    return body.lstrip("\n")


def manifest_images(manifest: str) -> list[str]:
    """The image references in a manifest, in order, without repeats."""
    refs: list[str] = []
    for ref in re.findall(r"image:\s*(\S+)", manifest):
        if ref not in refs:
            refs.append(ref)
    refs += [r for r in re.findall(r"--helper-image[= ]\s*(\S+)", manifest) if r not in refs]
    return refs


def kubeadm_image(kubeadm_list: str, name: str) -> str:
    """The reference kubeadm uses for component `name` (`kubeadm config images list`)."""
    for line in kubeadm_list.split():
        if line.rsplit("/", 1)[-1].split(":", 1)[0] == name:
            return line
    raise ClusterError(f"`kubeadm config images list` names no {name} image:\n{kubeadm_list}")


def sandbox_image(containerd_config: str) -> str:
    """The sandbox (pause) image kind's containerd config names."""
    match = re.search(r'sandbox_image\s*=\s*"([^"]+)"', containerd_config)
    if match is None:
        raise ClusterError("kind's containerd config names no sandbox_image")
    return match.group(1)


def file_capability(bits: int) -> bytes:
    """A `security.capability` value (VFS revision 2, effective) granting capability `bits`."""
    return struct.pack("<IIIII", 0x02000001, 1 << bits, 0, 0, 0)


def _static_base(work: Path) -> Path:
    """A layer for static binaries: /etc/passwd, /etc/group, /tmp, nsswitch; nothing else."""
    root = work / "static-base"
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("tmp", "etc", "var/run", "usr/local/bin"):
        (root / sub).mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnobody:x:65534:\n")
    (root / "etc/nsswitch.conf").write_text("hosts: files dns\n")
    return imagearchive.layer_from_dir(root, work / "static-base.tar")


def _binary_layer(
    work: Path, name: str, files: dict[str, Path], capability: int | None = None
) -> Path:
    root = work / "layers" / name
    shutil.rmtree(root, ignore_errors=True)
    for dst, src in files.items():
        target = root / dst.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        target.chmod(0o755)
        if capability is not None:
            os.setxattr(target, "security.capability", file_capability(capability))
    return imagearchive.layer_from_dir(root, work / "layers" / f"{name}.tar")


#: kube-proxy must use the iptables backend the node uses (legacy or nft), as upstream's
#: iptables-wrapper does: whichever holds more rules wins.
KUBE_PROXY_WRAPPER = """#!/bin/sh
legacy=$( (iptables-legacy-save; ip6tables-legacy-save) 2>/dev/null | grep -c '^-')
nft=$( (timeout 5 sh -c 'iptables-nft-save; ip6tables-nft-save') 2>/dev/null | grep -c '^-')
if [ "$legacy" -ge "$nft" ]; then mode=legacy; else mode=nft; fi
update-alternatives --set iptables /usr/sbin/iptables-$mode >/dev/null
update-alternatives --set ip6tables /usr/sbin/ip6tables-$mode >/dev/null
exec /usr/local/bin/kube-proxy.bin "$@"
"""

#: containerd in the node may lower a container's oom_score_adj only with CAP_SYS_RESOURCE;
#: where the node lacks it (as on these VMs), let containerd clamp the value instead of failing
#: every container start (kind does the same for rootless nodes).
CONTAINERD_CAPS_SCRIPT = """#!/bin/bash
set -eu
bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
if (( (0x$bnd >> 24) & 1 )); then value=false; else value=true; fi
sed -i "s/restrict_oom_score_adj = .*/restrict_oom_score_adj = $value/" /etc/containerd/config.toml
"""

IMPORT_SCRIPT = """#!/bin/bash
# kube-alive: import the preloaded images into containerd's k8s.io namespace, once per boot.
set -eu
for _ in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
for archive in /kind/images/*.tar; do
  ctr -n k8s.io images import "$archive" >/dev/null
done
"""

IMPORT_UNIT = """[Unit]
Description=kube-alive: import the preloaded images into containerd
After=containerd.service
Requires=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/kind/bin/kube-alive-import-images.sh

[Install]
WantedBy=multi-user.target
"""

CONTAINERD_DROPIN = """[Service]
ExecStartPre=/kind/bin/kube-alive-containerd-caps.sh
"""


def _inputs_key(paths: config.Paths, node_root: Path, net_root: Path) -> str:
    built = [build.component_dir(paths, c).name for c in (*build.COMPONENTS, *KIND_COMPONENTS)]
    recipe = [Path(__file__), HERE / "podnet.yaml", HERE / "metrics-server.yaml"]
    recipe.append(Path(imagearchive.__file__))
    return tree_hash(recipe, " ".join([*built, node_root.name, net_root.name, KIND_VERSION]))


def prepare(paths: config.Paths, log: Log) -> None:
    """Make the root filesystems (debootstrap, cached): the part that needs the network."""
    cache = kind_cache(paths)
    cache.mkdir(parents=True, exist_ok=True)
    node_root = _rootfs_dir(paths, "node-rootfs", NODE_PACKAGES)
    net_root = _rootfs_dir(paths, "net-rootfs", NET_PACKAGES)
    with (
        _step("root filesystems (debootstrap, about 2 min cold)", log),
        concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool,
    ):
        jobs = [
            pool.submit(_debootstrap, node_root, NODE_PACKAGES, cache / "node-rootfs.log"),
            pool.submit(_debootstrap, net_root, NET_PACKAGES, cache / "net-rootfs.log"),
        ]
        for job in jobs:
            job.result()


def build_node_image(paths: config.Paths, log: Log) -> NodeImage:
    """Build (or find cached) the node image archive; returns its reference and path."""
    cache = kind_cache(paths)
    cache.mkdir(parents=True, exist_ok=True)
    node_root = _rootfs_dir(paths, "node-rootfs", NODE_PACKAGES)
    net_root = _rootfs_dir(paths, "net-rootfs", NET_PACKAGES)
    with _step("Go builds (cached by wrapper module)", log):
        for component in (*build.COMPONENTS, *KIND_COMPONENTS):
            build.build_component(paths, component, log)
    archive = cache / f"node-{_inputs_key(paths, node_root, net_root)}.tar"
    if archive.exists():
        log(f"kind node image: cached {archive.name} ({archive.stat().st_size / 2**20:.0f} MiB)")
        return NodeImage(NODE_IMAGE, archive)
    prepare(paths, log)
    work = cache / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        with _step("component images", log):
            images = _component_images(paths, work, net_root)
        with _step("node root filesystem", log):
            root = _assemble_root(paths, work, node_root, images)
        with _step("node image archive", log):
            layer = imagearchive.layer_from_dir(root, work / "node.tar")
            for old in cache.glob("node-*.tar"):
                old.unlink()
            imagearchive.write_archive(
                archive,
                [NODE_IMAGE],
                [layer],
                imagearchive.ImageConfig(
                    entrypoint=("/usr/local/bin/entrypoint", "/sbin/init"),
                    env=(
                        "container=docker",
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    ),
                    stop_signal="SIGRTMIN+3",
                ),
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"kind node image: {NODE_IMAGE} in {archive} ({archive.stat().st_size / 2**20:.0f} MiB)")
    return NodeImage(NODE_IMAGE, archive)


@dataclass(frozen=True)
class _Images:
    archives: list[Path]
    podnet: str
    storage_manifest: str


def _component_images(paths: config.Paths, work: Path, net_root: Path) -> _Images:
    kubernetes = build.component_dir(paths, build.COMPONENTS[0])
    kubeadm_list = run(
        [
            kubernetes / "kubeadm",
            "config",
            "images",
            "list",
            "--kubernetes-version",
            config.KUBERNETES_VERSION,
        ],
        timeout=60,
    ).stdout
    kind_src = build.module_dir("kind", "sigs.k8s.io/kind")
    kind_files = kind_src / "images" / "base" / "files"
    storage = go_string_constant(
        (kind_src / "pkg/build/nodeimage/const_storage.go").read_text(), "defaultStorageManifest"
    )
    storage_images = manifest_images(storage)
    provisioner = next(r for r in storage_images if "local-path-provisioner" in r)
    helper = next(r for r in storage_images if "local-path-helper" in r)
    pause_refs = [
        kubeadm_image(kubeadm_list, "pause"),
        sandbox_image((kind_files / "etc/containerd/config.toml").read_text()),
    ]

    static = _static_base(work)
    net = imagearchive.layer_from_dir(net_root, work / "net-base.tar")
    out = work / "images"
    archives: list[Path] = []

    def image(
        name: str, tags: list[str], layers: list[Path], cfg: imagearchive.ImageConfig
    ) -> None:
        archives.append(imagearchive.write_archive(out / f"{name}.tar", tags, layers, cfg))

    def binary(component: str, file: str) -> Path:
        comp = next(c for c in (*build.COMPONENTS, *KIND_COMPONENTS) if c.name == component)
        return build.component_dir(paths, comp) / file

    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        layer = _binary_layer(work, name, {f"/usr/local/bin/{name}": kubernetes / name})
        image(
            name,
            [kubeadm_image(kubeadm_list, name)],
            [static, layer],
            imagearchive.ImageConfig(entrypoint=(f"/usr/local/bin/{name}",)),
        )
    wrapper = work / "kube-proxy-wrapper"
    wrapper.write_text(KUBE_PROXY_WRAPPER)
    layer = _binary_layer(
        work,
        "kube-proxy",
        {
            "/usr/local/bin/kube-proxy.bin": kubernetes / "kube-proxy",
            "/usr/local/bin/kube-proxy": wrapper,
        },
    )
    image(
        "kube-proxy",
        [kubeadm_image(kubeadm_list, "kube-proxy")],
        [net, layer],
        imagearchive.ImageConfig(entrypoint=("/usr/local/bin/kube-proxy",)),
    )
    layer = _binary_layer(work, "etcd", {"/usr/local/bin/etcd": binary("etcd", "server")})
    image(
        "etcd",
        [kubeadm_image(kubeadm_list, "etcd")],
        [static, layer],
        imagearchive.ImageConfig(entrypoint=("/usr/local/bin/etcd",)),
    )
    # CoreDNS runs as 65532 (as upstream's image) and binds port 53 with a file capability.
    layer = _binary_layer(
        work, "coredns", {"/coredns": binary("coredns", "coredns")}, capability=CAP_NET_BIND_SERVICE
    )
    image(
        "coredns",
        [kubeadm_image(kubeadm_list, "coredns")],
        [static, layer],
        imagearchive.ImageConfig(entrypoint=("/coredns",), user="65532:65532"),
    )
    layer = _binary_layer(work, "pause", {"/pause": _pause_binary(work)})
    image(
        "pause",
        pause_refs,
        [layer],
        imagearchive.ImageConfig(entrypoint=("/pause",), user="65535:65535"),
    )
    layer = _binary_layer(
        work, "metrics-server", {"/metrics-server": binary("metrics-server", "metrics-server")}
    )
    image(
        "metrics-server",
        [METRICS_SERVER_IMAGE],
        [static, layer],
        imagearchive.ImageConfig(entrypoint=("/metrics-server",), user="65534:65534"),
    )
    layer = _binary_layer(
        work,
        "local-path-provisioner",
        {
            "/usr/local/bin/local-path-provisioner": binary(
                "local-path-provisioner", "local-path-provisioner"
            ),
        },
    )
    image(
        "local-path-provisioner",
        [provisioner],
        [static, layer],
        imagearchive.ImageConfig(entrypoint=("/usr/local/bin/local-path-provisioner",)),
    )
    image("local-path-helper", [helper], [net], imagearchive.ImageConfig())
    podnet_binary = binary("podnet", "podnet")
    podnet_ref = f"localhost/kube-alive/podnet:{tree_hash([podnet_binary])}"
    layer = _binary_layer(work, "podnet", {"/usr/local/bin/podnet": podnet_binary})
    image(
        "podnet",
        [podnet_ref],
        [net, layer],
        imagearchive.ImageConfig(entrypoint=("/usr/local/bin/podnet",)),
    )
    return _Images(archives, podnet_ref, storage)


def _pause_binary(work: Path) -> Path:
    source = build._kubernetes_module_dir() / "build" / "pause" / "linux" / "pause.c"
    exe = work / "pause"
    run(["gcc", "-Os", "-static", f"-DVERSION=v{config.PAUSE_VERSION}", "-o", exe, source])
    run(["strip", exe])
    return exe


def _assemble_root(paths: config.Paths, work: Path, node_root: Path, images: _Images) -> Path:
    root = work / "node"
    root.mkdir()
    run(["cp", "-a", f"{node_root}/.", f"{root}/"], timeout=600)
    (root / ".complete").unlink(missing_ok=True)
    kind_files = build.module_dir("kind", "sigs.k8s.io/kind") / "images" / "base" / "files"
    # kind's node files, as its base image Dockerfile copies them.
    run(["cp", "-r", "--no-preserve=mode,ownership", f"{kind_files}/.", f"{root}/"], timeout=120)
    for sub in ("usr/local/bin", "kind/bin"):
        for exe in (root / sub).iterdir():
            exe.chmod(0o755)
    (root / "kind").chmod(0o755)
    # Debian's containerd and runc where kind's units and scripts expect kind's own builds.
    for name in ("containerd", "ctr", "containerd-shim-runc-v2"):
        _symlink(f"/usr/bin/{name}", root / "usr/local/bin" / name)
    _symlink("/usr/sbin/runc", root / "usr/local/sbin/runc")
    cni_bin = root / "opt/cni/bin"
    cni_bin.mkdir(parents=True, exist_ok=True)
    for plugin in sorted((root / "usr/lib/cni").iterdir()):
        _symlink(f"/usr/lib/cni/{plugin.name}", cni_bin / plugin.name)
    # The Dockerfile's systemd clean-up: no units a container has no use for.
    for pattern in (
        "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
        "lib/systemd/system/multi-user.target.wants/*",
        "etc/systemd/system/*.wants/*",
        "lib/systemd/system/local-fs.target.wants/*",
        "lib/systemd/system/sockets.target.wants/*udev*",
        "lib/systemd/system/sockets.target.wants/*initctl*",
        "lib/systemd/system/basic.target.wants/*",
    ):
        for path in root.glob(pattern):
            path.unlink()
    with (root / "etc/systemd/journald.conf").open("a") as journald:
        journald.write("ReadKMsg=no\n")
    _symlink("/usr/lib/systemd/systemd", root / "sbin/init")
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    # cri-base.json as the Dockerfile makes it: `ctr oci spec`, kind's product-files hook, no
    # rlimits (a container inherits the node's).
    spec = json.loads(run(["chroot", root, "/usr/bin/ctr", "oci", "spec"], timeout=60).stdout)
    hooks = spec.setdefault("hooks", {}).setdefault("createContainer", [])
    hooks.append({"path": "/kind/bin/mount-product-files.sh"})
    spec["process"].pop("rlimits", None)
    (root / "etc/containerd/cri-base.json").write_text(json.dumps(spec, indent=2))
    _script(root / "kind/bin/kube-alive-containerd-caps.sh", CONTAINERD_CAPS_SCRIPT)
    dropin = root / "etc/systemd/system/containerd.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "10-kube-alive-caps.conf").write_text(CONTAINERD_DROPIN)
    kubernetes = build.component_dir(paths, build.COMPONENTS[0])
    for name in ("kubeadm", "kubelet", "kubectl"):
        shutil.copyfile(kubernetes / name, root / "usr/bin" / name)
        (root / "usr/bin" / name).chmod(0o755)
    # crictl where kind's Dockerfile puts it (its config, etc/crictl.yaml, came with kind's files).
    shutil.copyfile(build.component_dir(paths, CRICTL) / "crictl", root / "usr/local/bin/crictl")
    (root / "usr/local/bin/crictl").chmod(0o755)
    (root / "kind/version").write_text(config.KUBERNETES_VERSION)
    manifests = root / "kind/manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / "default-storage.yaml").write_text(images.storage_manifest)
    podnet = (HERE / "podnet.yaml").read_text().replace("${PODNET_IMAGE}", images.podnet)
    (manifests / "default-cni.yaml").write_text(podnet)
    metrics = (HERE / "metrics-server.yaml").read_text()
    (root / METRICS_SERVER_MANIFEST.lstrip("/")).write_text(
        metrics.replace("${METRICS_SERVER_IMAGE}", METRICS_SERVER_IMAGE)
    )
    preload = root / "kind/images"
    preload.mkdir(parents=True, exist_ok=True)
    for archive in images.archives:
        shutil.move(archive, preload / archive.name)
    _script(root / "kind/bin/kube-alive-import-images.sh", IMPORT_SCRIPT)
    (root / "etc/systemd/system/kube-alive-import-images.service").write_text(IMPORT_UNIT)
    units = [
        "kubelet.service",
        "containerd.service",
        "undo-mount-hacks.service",
        "kube-alive-import-images.service",
    ]
    run(["systemctl", f"--root={root}", "enable", *units], timeout=60)
    run(["systemctl", f"--root={root}", "mask", "systemd-binfmt.service"], timeout=60)
    return root


def _symlink(target: str, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def _script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)

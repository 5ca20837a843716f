"""Image archives written from folders, with no daemon, registry or mount.

The kind node image and the component images inside it are assembled from files this machine
builds (Go binaries, debootstrap root filesystems). An archive here has the `docker save` layout,
which both `docker load` and `ctr images import` accept. Identical inputs give identical bytes
(sorted tar members, numeric owners, a fixed creation time), so an unchanged image is the same
image to containerd and docker, and layer tars shared between images are stored once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.util import run

#: Every image claims the Unix epoch as its creation time, so rebuilds are byte-identical.
EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's runtime config the node images use."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    stop_signal: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The `config` object of the image configuration."""
        out: dict[str, object] = {"Env": list(self.env)}
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.user:
            out["User"] = self.user
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.labels:
            out["Labels"] = dict(self.labels)
        return out


def layer_from_dir(src: Path, dst: Path) -> Path:
    """Tar a folder as one layer (numeric owners, extended attributes such as file capabilities
    kept, sorted, without the contents of /dev, /proc and /sys)."""
    run(
        [
            "tar",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--sort=name",
            "--mtime=@0",
            # The pax headers --xattrs needs would carry access and change times: drop them.
            "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
            "--exclude=./dev/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "-C",
            src,
            "-cf",
            dst,
            ".",
        ],
        timeout=1200,
    )
    return dst


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_archive(
    out: Path,
    tags: list[str],
    layers: list[Path],
    config: ImageConfig,
    *,
    architecture: str = "amd64",
) -> Path:
    """Write a `docker save`-layout archive of `layers` (tar files, bottom first) named `tags`.

    The file appears whole or not at all (written beside it, then renamed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".image-") as tmp:
        work = Path(tmp)
        diff_ids: list[str] = []
        names: list[str] = []
        for layer in layers:
            digest = _sha256(layer)
            folder = work / digest
            folder.mkdir(exist_ok=True)
            shutil.copyfile(layer, folder / "layer.tar")
            diff_ids.append(f"sha256:{digest}")
            names.append(f"{digest}/layer.tar")
        image_config = {
            "architecture": architecture,
            "os": "linux",
            "created": EPOCH,
            "config": config.as_json(),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": EPOCH, "created_by": "kube-alive"} for _ in diff_ids],
        }
        raw = json.dumps(image_config, separators=(",", ":"), sort_keys=True).encode()
        config_name = hashlib.sha256(raw).hexdigest() + ".json"
        (work / config_name).write_bytes(raw)
        manifest = [{"Config": config_name, "RepoTags": tags, "Layers": names}]
        (work / "manifest.json").write_text(json.dumps(manifest))
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as archive:
            for member in sorted(work.iterdir()):
                archive.add(member, arcname=member.name, filter=_normalise)
        partial.rename(out)
    return out


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def image_id(archive: Path) -> str:
    """The image ID (`sha256:` + the config's digest) of an archive written by write_archive."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{archive}: no manifest.json")
        manifest = json.load(member)
    return "sha256:" + str(manifest[0]["Config"]).removesuffix(".json")

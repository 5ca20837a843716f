"""The workload image references: named by content, and rewritten for a registry.

The one place the workload images are named. Every image the suite uses is tagged
`<version>-<digest>` (`v1-3f2a9c0d41b7`): the version (`v1`, `v2`, the build argument VERSION)
and the first 12 hex digits of a sha256 over the image's sources (`content_digest`: every file of
`workloads/` the build context holds, its Dockerfile included, not its tests). Edit a workload and
the tag changes, so every provider builds and loads the new image instead of finding the old one
under the same name, and IfNotPresent never keeps a stale image on a node.

The plain tags `v1` and `v2` are aliases of the latest build, for the demo (`kubectl apply -k
manifests/` names them); the suite never runs them: it pins every `...workloads:v1` it applies to
the content tag (`pin`).

Standard library only, and runnable on its own (`python3 suite/images.py tag v1`), so
scripts/build-images.sh asks this module for the tags without the suite installed.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

#: One repository, two versions; the version is the only difference between v1 and v2 (see
#: AGENTS.md), the content digest in the tag is the same for both.
REPOSITORY = "localhost/kube-alive/workloads"
TAGS = ("v1", "v2")
#: The node architectures (kubernetes.io/arch) of the platforms scripts/build-images.sh builds and
#: pushes by default: linux/amd64, linux/arm64 and linux/arm/v7 (a 32-bit Raspberry Pi OS's node
#: says `arm`).
PUSHED_ARCHITECTURES = ("amd64", "arm64", "arm")
_LOCAL_PREFIX = "localhost/"
#: The repository root: the image's build context (see .dockerignore).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Hex digits of the sha256 kept in the tag: 48 bits, plenty to tell builds apart.
DIGEST_LENGTH = 12
#: Left out of the digest, as .dockerignore leaves them out of the build context: the workloads'
#: unit tests and Python's bytecode caches.
_EXCLUDED_DIRS = frozenset({"tests", "__pycache__"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
_CONTENT_TAG = re.compile(rf"^(?P<version>.+)-(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}})$")


def content_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files the digest covers, relative to `root`, sorted: everything under workloads/ (its
    Dockerfile, requirements, modules and page) but its tests and bytecode caches."""

    def walk(directory: Path) -> Iterator[Path]:
        for entry in directory.iterdir():
            if entry.is_dir():
                if entry.name not in _EXCLUDED_DIRS:
                    yield from walk(entry)
            elif entry.is_file() and not entry.name.endswith(_EXCLUDED_SUFFIXES):
                yield entry.relative_to(root)

    workloads = root / "workloads"
    if not (workloads / "Dockerfile").is_file():
        raise FileNotFoundError(f"{workloads}/Dockerfile: the workload image sources are missing")
    return sorted(walk(workloads), key=lambda path: path.as_posix())


def content_digest(root: Path = REPO_ROOT) -> str:
    """The first DIGEST_LENGTH hex digits of a sha256 over content_files: each file's path
    (relative, `/`-separated), its size and its bytes, in path order. Stable across machines and
    checkouts; any change to a file that goes into the image, or a file added or removed, changes
    it."""
    return _digest(root.resolve())


@cache
def _digest(root: Path) -> str:
    sha = hashlib.sha256()
    for relative in content_files(root):
        data = (root / relative).read_bytes()
        sha.update(f"{relative.as_posix()}\0{len(data)}\0".encode())
        sha.update(data)
    return sha.hexdigest()[:DIGEST_LENGTH]


def content_tag(version: str, root: Path = REPO_ROOT) -> str:
    """`v1` -> `v1-<digest>`: the tag of one version's image as built from these sources."""
    return f"{version}-{content_digest(root)}"


def image_ref(tag: str) -> str:
    """The canonical (unrewritten) reference of a version, named by content
    (`localhost/kube-alive/workloads:v1-<digest>`); a tag that is no version (TAGS) is used as
    it is."""
    return f"{REPOSITORY}:{content_tag(tag) if tag in TAGS else tag}"


def alias_ref(version: str) -> str:
    """The plain reference of a version (`localhost/kube-alive/workloads:v1`): what the demo's
    manifests name; every build points it at its latest image."""
    return f"{REPOSITORY}:{version}"


def workload_refs() -> list[str]:
    """Every image the scenarios need (content-named)."""
    return [image_ref(tag) for tag in TAGS]


def pin(ref: str) -> str:
    """A plain version reference of the workload repository (`...workloads:v1`, as the
    manifests have it, in any registry) -> its content-named reference; anything else
    unchanged."""
    head, _, tag = ref.rpartition(":")
    if tag in TAGS and head.rsplit("/", 2)[-2:] == ["kube-alive", "workloads"]:
        return f"{head}:{content_tag(tag)}"
    return ref


def rewrite(ref: str, registry: str | None) -> str:
    """Point a `localhost/kube-alive/...` reference at `registry`; leave others alone.

    `localhost/kube-alive/workloads:v1` with registry `registry.lan:5000` becomes
    `registry.lan:5000/kube-alive/workloads:v1`. Without a registry nothing changes.
    """
    if not registry or not ref.startswith(_LOCAL_PREFIX + "kube-alive/"):
        return ref
    return registry.strip().rstrip("/") + "/" + ref[len(_LOCAL_PREFIX) :]


def tag_of(ref: str) -> str:
    """The tag of a reference (`v2` of `.../workloads:v2`), or `latest` when there is none."""
    name = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def version_of(tag: str) -> str:
    """The version a tag names: `v2-<digest>` -> `v2`; any other tag as it is."""
    match = _CONTENT_TAG.match(tag)
    return match["version"] if match else tag


def digest_of(tag: str) -> str | None:
    """The content digest in a tag (`v2-<digest>` -> `<digest>`), None in a plain tag."""
    match = _CONTENT_TAG.match(tag)
    return match["digest"] if match else None


def with_tag(ref: str, tag: str) -> str:
    """The same repository at another tag."""
    head, _, name = ref.rpartition("/")
    base = name.split(":", 1)[0]
    return f"{head}/{base}:{tag}" if head else f"{base}:{tag}"


def facts() -> dict[str, object]:
    """What the report records about the workload images of this run."""
    return {
        "repository": REPOSITORY,
        "digest": content_digest(),
        "tags": [content_tag(tag) for tag in TAGS],
    }


_USAGE = (
    "usage: python3 suite/images.py digest | tag VERSION | tags\n"
    "  digest       the content digest of workloads/ (what the tags carry)\n"
    "  tag VERSION  the content tag of one version (v1 -> v1-<digest>)\n"
    "  tags         VERSION CONTENT_TAG, one line per version"
)


def main(argv: list[str]) -> int:
    """For scripts (scripts/build-images.sh): print the digest or the tags; exit 2 on bad use."""
    if argv == ["digest"]:
        print(content_digest())
    elif len(argv) == 2 and argv[0] == "tag" and argv[1] in TAGS:
        print(content_tag(argv[1]))
    elif argv == ["tags"]:
        for tag in TAGS:
            print(tag, content_tag(tag))
    else:
        print(_USAGE, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

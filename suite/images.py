"""The workload image references, and how they are rewritten for a registry."""

from __future__ import annotations

#: One repository, two tags; the tag is the only difference between v1 and v2 (see AGENTS.md).
REPOSITORY = "localhost/kube-alive/workloads"
TAGS = ("v1", "v2")
#: The architectures scripts/build-images.sh builds and pushes by default.
PUSHED_ARCHITECTURES = ("amd64", "arm64")
_LOCAL_PREFIX = "localhost/"


def image_ref(tag: str) -> str:
    """The canonical (unrewritten) reference of one tag."""
    return f"{REPOSITORY}:{tag}"


def workload_refs() -> list[str]:
    """Every image the scenarios need."""
    return [image_ref(tag) for tag in TAGS]


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
    name = ref.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def with_tag(ref: str, tag: str) -> str:
    """The same repository at another tag."""
    head, _, name = ref.rpartition("/")
    base = name.split(":", 1)[0]
    return f"{head}/{base}:{tag}" if head else f"{base}:{tag}"

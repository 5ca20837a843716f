"""A multi-platform image index (manifest list) read back from a registry over its HTTP API.

What a node's container runtime does before it pulls, done with the standard library: ask the
registry for the tag with the index media types in `Accept`, check that the answer is an index
whose digest is what the registry says, list its platforms, and follow one entry to its image
manifest and configuration (whose os/architecture/variant must be the entry's platform).

Plain HTTP, as the registry a Raspberry Pi cluster often uses on its LAN (and the one .ci/run
starts on the kind network). Entries that Docker buildx adds as build attestations
(`vnd.docker.reference.type: attestation-manifest`, platform unknown/unknown) are no platform:
they are counted apart and never pulled by a node.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localcluster.util import ClusterError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ATTESTATION = "attestation-manifest"
HTTP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (names in lower case) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


#: GET `url` with this `Accept` header.
Fetch = Callable[[str, str], Answer]


def http_fetch(url: str, accept: str) -> Answer:
    """GET over HTTP, never through a proxy (the registry is on this network); an HTTP error is
    an answer, a connection failure a ClusterError."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    if not url.startswith(("http://", "https://")):
        raise ClusterError(f"{url}: not an HTTP address")
    request = urllib.request.Request(url, headers={"Accept": accept})  # noqa: S310 (checked)
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT_S) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return Answer(response.status, headers, response.read())
    except urllib.error.HTTPError as exc:
        headers = {k.lower(): v for k, v in exc.headers.items()}
        return Answer(exc.code, headers, exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClusterError(f"GET {url}: no answer ({reason})") from exc


def sha256_digest(body: bytes) -> str:
    """The content digest of a manifest or blob, as registries name them."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def platform_name(platform: Mapping[str, Any] | None) -> str:
    """`{"os": "linux", "architecture": "arm", "variant": "v7"}` -> `linux/arm/v7`."""
    platform = platform or {}
    name = f"{platform.get('os') or 'unknown'}/{platform.get('architecture') or 'unknown'}"
    return f"{name}/{platform['variant']}" if platform.get("variant") else name


@dataclass(frozen=True)
class IndexEntry:
    """One manifest an index lists."""

    platform: str
    digest: str
    media_type: str
    attestation: bool = False


@dataclass(frozen=True)
class ImageIndex:
    """An index as the registry served it."""

    reference: str
    digest: str
    media_type: str
    entries: tuple[IndexEntry, ...]

    @property
    def images(self) -> list[IndexEntry]:
        """The entries a node may pull (attestations left out)."""
        return [e for e in self.entries if not e.attestation]

    @property
    def platforms(self) -> list[str]:
        """The platforms of those entries, in the index's order."""
        return [e.platform for e in self.images]


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClusterError(f"{what}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ClusterError(f"{what}: a JSON {type(doc).__name__}, not an object")
    return doc


def parse_index(body: bytes, content_type: str, reference: str, digest: str) -> ImageIndex:
    """An index (OCI image index or Docker manifest list) from the registry's answer; a single
    image's manifest, or anything else, is a ClusterError that says what it is."""
    doc = _json(body, reference)
    media_type = doc.get("mediaType") or content_type.split(";")[0].strip()
    if media_type not in INDEX_TYPES or not isinstance(doc.get("manifests"), list):
        raise ClusterError(
            f"{reference} is {media_type or 'of no media type'}, not an image index (manifest "
            f"list): it was pushed for one platform only; push it for every platform "
            f"(scripts/build-images.sh REGISTRY --push)"
        )
    entries = []
    for item in doc["manifests"]:
        item = item if isinstance(item, dict) else {}
        annotations = item.get("annotations") or {}
        entries.append(
            IndexEntry(
                platform=platform_name(item.get("platform")),
                digest=str(item.get("digest", "")),
                media_type=str(item.get("mediaType", "")),
                attestation=annotations.get("vnd.docker.reference.type") == ATTESTATION,
            )
        )
    return ImageIndex(reference, digest, media_type, tuple(entries))


def index_problems(index: ImageIndex, expected: Sequence[str]) -> list[str]:
    """What is wrong with the index's platforms against exactly `expected`; empty when none."""
    problems = []
    seen = Counter(index.platforms)
    missing = [p for p in expected if p not in seen]
    if missing:
        problems.append(
            f"{index.reference}: no image for {', '.join(missing)} (it lists "
            f"{', '.join(index.platforms) or 'nothing'}): a node of that platform cannot pull it"
        )
    extra = [p for p in seen if p not in expected]
    if extra:
        problems.append(
            f"{index.reference}: lists {', '.join(extra)} beside the expected {', '.join(expected)}"
        )
    twice = [p for p, n in seen.items() if n > 1]
    if twice:
        problems.append(
            f"{index.reference}: lists {', '.join(twice)} more than once: which image a node "
            f"pulls is then up to its runtime"
        )
    for entry in index.images:
        if entry.media_type not in MANIFEST_TYPES:
            kind = entry.media_type or "of no media type"
            problems.append(
                f"{index.reference}: the {entry.platform} entry is {kind}, not an image manifest"
            )
    return problems


def _error_text(answer: Answer) -> str:
    # distribution answers {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "..."}]}.
    try:
        errors = json.loads(answer.body).get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or "no detail"
    except (ValueError, AttributeError):
        return answer.body[:200].decode(errors="replace") or "no detail"


class RegistryClient:
    """Reads manifests and blobs of one registry (`host:port`, plain HTTP)."""

    def __init__(self, registry: str, fetch: Fetch = http_fetch) -> None:
        self.registry = registry.strip().rstrip("/")
        self._fetch = fetch

    def _get(self, path: str, accept: str, expected_digest: str | None = None) -> Answer:
        url = f"http://{self.registry}/v2/{path}"
        answer = self._fetch(url, accept)
        if answer.status != 200:
            raise ClusterError(
                f"GET {url}: HTTP {answer.status} ({_error_text(answer)}), expected 200"
            )
        digest = sha256_digest(answer.body)
        claimed = answer.headers.get("docker-content-digest")
        for name, want in (
            ("Docker-Content-Digest", claimed),
            ("the digest asked", expected_digest),
        ):
            if want and want != digest:
                raise ClusterError(f"GET {url}: the body's digest is {digest}, {name} {want}")
        return answer

    def index(self, repository: str, tag: str) -> ImageIndex:
        """The index tagged `tag` in `repository`."""
        reference = f"{self.registry}/{repository}:{tag}"
        answer = self._get(
            f"{repository}/manifests/{tag}", ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
        )
        content_type = answer.headers.get("content-type", "")
        return parse_index(answer.body, content_type, reference, sha256_digest(answer.body))

    def image_platform(self, repository: str, digest: str) -> str:
        """The platform an image's configuration names (`linux/arm/v7`), read through its
        manifest."""
        where = f"{self.registry}/{repository}@{digest}"
        manifest = _json(
            self._get(f"{repository}/manifests/{digest}", ", ".join(MANIFEST_TYPES), digest).body,
            where,
        )
        config_digest = (manifest.get("config") or {}).get("digest")
        if not config_digest:
            raise ClusterError(f"{where}: an image manifest without a config digest")
        config = _json(
            self._get(f"{repository}/blobs/{config_digest}", "*/*", config_digest).body,
            f"{where} config {config_digest}",
        )
        return platform_name(config)

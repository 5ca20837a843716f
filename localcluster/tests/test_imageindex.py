"""Reading a multi-platform index back from a registry: fake registry answers, and one real HTTP
server on loopback for the client's own requests."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from localcluster import imageindex
from localcluster.imageindex import Answer, RegistryClient
from localcluster.util import ClusterError

REPO = "kube-alive/workloads"
THREE = ("linux/amd64", "linux/arm64", "linux/arm/v7")


def _body(doc: object) -> bytes:
    return json.dumps(doc).encode()


class FakeRegistry:
    """Answers GET /v2/... from what was published into it, as distribution does (a digest
    header on every manifest and blob, an error document on a 404)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, bytes]] = {}
        self.asked: list[tuple[str, str]] = []

    def put(self, path: str, media_type: str, body: bytes) -> str:
        digest = imageindex.sha256_digest(body)
        self.objects[path.replace("{digest}", digest)] = (media_type, body)
        return digest

    def fetch(self, url: str, accept: str) -> Answer:
        self.asked.append((url, accept))
        path = url.split("/v2/", 1)[1]
        if path not in self.objects:
            error = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
            return Answer(404, {"content-type": "application/json"}, _body(error))
        media_type, body = self.objects[path]
        headers = {
            "content-type": media_type,
            "docker-content-digest": imageindex.sha256_digest(body),
        }
        return Answer(200, headers, body)

    def image(self, platform: str, config_platform: str | None = None) -> dict[str, object]:
        """Publish one image (config and manifest); returns its index entry."""
        os_, arch, *variant = (config_platform or platform).split("/")
        config = {"os": os_, "architecture": arch, "config": {"Env": ["APP_VERSION=v1"]}}
        if variant:
            config["variant"] = variant[0]
        config_digest = self.put(f"{REPO}/blobs/{{digest}}", "application/json", _body(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": imageindex.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest},
            "layers": [],
        }  # fmt: skip
        body = _body(manifest)
        digest = self.put(f"{REPO}/manifests/{{digest}}", imageindex.OCI_MANIFEST, body)
        os_, arch, *variant = platform.split("/")
        entry: dict[str, object] = {
            "mediaType": imageindex.OCI_MANIFEST,
            "digest": digest,
            "size": len(body),
            "platform": {"os": os_, "architecture": arch, **({"variant": variant[0]} if variant
                                                              else {})},
        }  # fmt: skip
        return entry

    def index(self, tag: str, entries: list[dict[str, object]], media_type: str) -> str:
        """Publish an index of `entries` under `tag`; returns its digest."""
        doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        body = _body(doc)
        self.objects[f"{REPO}/manifests/{tag}"] = (media_type, body)
        return imageindex.sha256_digest(body)


@pytest.fixture
def registry() -> FakeRegistry:
    """An empty fake registry."""
    return FakeRegistry()


def test_an_index_of_three_platforms_is_read_with_its_digest(registry):
    digest = registry.index("t", [registry.image(p) for p in THREE], imageindex.OCI_INDEX)
    index = RegistryClient("reg:5000", registry.fetch).index(REPO, "t")
    assert index.digest == digest
    assert index.reference == "reg:5000/kube-alive/workloads:t"
    assert index.media_type == imageindex.OCI_INDEX
    assert index.platforms == list(THREE)
    assert imageindex.index_problems(index, THREE) == []
    url, accept = registry.asked[0]
    assert url == "http://reg:5000/v2/kube-alive/workloads/manifests/t"
    # Without the index types in Accept a registry may answer with one platform's manifest.
    assert imageindex.OCI_INDEX in accept
    assert imageindex.DOCKER_LIST in accept


def test_a_docker_manifest_list_is_an_index_too(registry):
    registry.index("t", [registry.image(p) for p in THREE], imageindex.DOCKER_LIST)
    index = RegistryClient("reg:5000", registry.fetch).index(REPO, "t")
    assert index.media_type == imageindex.DOCKER_LIST
    assert imageindex.index_problems(index, THREE) == []


def test_a_missing_platform_is_named_with_what_the_index_lists(registry):
    registry.index("t", [registry.image(p) for p in THREE[:2]], imageindex.OCI_INDEX)
    index = RegistryClient("reg:5000", registry.fetch).index(REPO, "t")
    assert imageindex.index_problems(index, THREE) == [
        "reg:5000/kube-alive/workloads:t: no image for linux/arm/v7 (it lists linux/amd64, "
        "linux/arm64): a node of that platform cannot pull it"
    ]


def test_an_extra_or_repeated_platform_is_a_problem(registry):
    entries = [registry.image(p) for p in (*THREE, "linux/386", "linux/arm64")]
    registry.index("t", entries, imageindex.OCI_INDEX)
    index = RegistryClient("reg:5000", registry.fetch).index(REPO, "t")
    problems = imageindex.index_problems(index, THREE)
    assert len(problems) == 2
    assert "lists linux/386 beside the expected" in problems[0]
    assert "lists linux/arm64 more than once" in problems[1]


def test_an_arm_entry_without_its_variant_is_not_arm_v7(registry):
    entries = [registry.image(p) for p in (*THREE[:2], "linux/arm")]
    registry.index("t", entries, imageindex.OCI_INDEX)
    index = RegistryClient("reg:5000", registry.fetch).index(REPO, "t")
    problems = imageindex.index_problems(index, THREE)
    assert "no image for linux/arm/v7" in problems[0]
    assert "lists linux/arm beside" in problems[1]


def test_buildx_attestations_are_no_platform(registry):
    attestation = dict(
        registry.image("unknown/unknown"),
        annotations={"vnd.docker.reference.type": "attestation-manifest"},
    )
    registry.index("t", [*[registry.image(p) for p in THREE], attestation], imageindex.OCI_INDEX)
    index = RegistryClient("reg:5000", registry.fetch).index(REPO, "t")
    assert len(index.entries) == 4
    assert index.platforms == list(THREE)
    assert imageindex.index_problems(index, THREE) == []


def test_a_single_platform_push_is_not_an_index(registry):
    entry = registry.image("linux/amd64")
    registry.objects[f"{REPO}/manifests/t"] = registry.objects[
        f"{REPO}/manifests/{entry['digest']}"
    ]
    with pytest.raises(ClusterError) as caught:
        RegistryClient("reg:5000", registry.fetch).index(REPO, "t")
    assert str(caught.value) == (
        f"reg:5000/kube-alive/workloads:t is {imageindex.OCI_MANIFEST}, not an image index "
        "(manifest list): it was pushed for one platform only; push it for every platform "
        "(scripts/build-images.sh REGISTRY --push)"
    )


def test_an_unknown_tag_says_what_the_registry_answered(registry):
    with pytest.raises(ClusterError) as caught:
        RegistryClient("reg:5000/", registry.fetch).index(REPO, "nope")
    assert str(caught.value) == (
        "GET http://reg:5000/v2/kube-alive/workloads/manifests/nope: HTTP 404 "
        "(MANIFEST_UNKNOWN: manifest unknown), expected 200"
    )


def test_a_body_that_is_not_what_the_registry_says_it_is_fails(registry):
    registry.index("t", [registry.image(p) for p in THREE], imageindex.OCI_INDEX)
    real = registry.fetch

    def lying(url: str, accept: str) -> Answer:
        answer = real(url, accept)
        return Answer(answer.status, {**answer.headers, "docker-content-digest": "sha256:0"},
                      answer.body)  # fmt: skip

    with pytest.raises(ClusterError, match=r"the body's digest is sha256:[0-9a-f]{64}, "
                       r"Docker-Content-Digest sha256:0"):  # fmt: skip
        RegistryClient("reg:5000", lying).index(REPO, "t")


def test_an_image_platform_comes_from_its_configuration(registry):
    entry = registry.image("linux/arm/v7", config_platform="linux/arm64")
    client = RegistryClient("reg:5000", registry.fetch)
    assert client.image_platform(REPO, str(entry["digest"])) == "linux/arm64"
    right = registry.image("linux/arm/v7")
    assert client.image_platform(REPO, str(right["digest"])) == "linux/arm/v7"


def test_platform_names_follow_the_image_index_spec():
    assert imageindex.platform_name({"os": "linux", "architecture": "arm", "variant": "v7"}) == (
        "linux/arm/v7"
    )
    assert imageindex.platform_name({"os": "linux", "architecture": "amd64"}) == "linux/amd64"
    assert imageindex.platform_name(None) == "unknown/unknown"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"accept": self.headers.get("Accept")}).encode()
        self.send_response(200 if self.path == "/v2/ok" else 404)
        self.send_header("Docker-Content-Digest", imageindex.sha256_digest(body))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on loopback; yields its host:port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_fetch_sends_accept_and_returns_errors_as_answers(server):
    ok = imageindex.http_fetch(f"http://{server}/v2/ok", "x/y")
    assert ok.status == 200
    assert json.loads(ok.body) == {"accept": "x/y"}
    assert ok.headers["docker-content-digest"] == imageindex.sha256_digest(ok.body)
    assert imageindex.http_fetch(f"http://{server}/v2/missing", "x/y").status == 404


def test_http_fetch_without_a_server_is_one_line():
    with pytest.raises(ClusterError, match=r"^GET http://127\.0\.0\.1:9/v2/: no answer \(.*\)$"):
        imageindex.http_fetch("http://127.0.0.1:9/v2/", "*/*")
    with pytest.raises(ClusterError, match="not an HTTP address"):
        imageindex.http_fetch("file:///etc/passwd", "*/*")

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from suite import images


@pytest.mark.parametrize(
    ("ref", "registry", "expected"),
    [
        (
            "localhost/kube-alive/workloads:v1",
            "registry.lan:5000",
            "registry.lan:5000/kube-alive/workloads:v1",
        ),
        (
            "localhost/kube-alive/workloads:v2",
            "registry.lan:5000/",
            "registry.lan:5000/kube-alive/workloads:v2",
        ),
        ("localhost/kube-alive/workloads:v2", "ghcr.io/me", "ghcr.io/me/kube-alive/workloads:v2"),
        ("localhost/kube-alive/workloads:v1", None, "localhost/kube-alive/workloads:v1"),
        ("docker.io/library/python:3.11", "registry.lan", "docker.io/library/python:3.11"),
    ],
)
def test_rewrite(ref, registry, expected):
    assert images.rewrite(ref, registry) == expected


def test_refs_and_tags():
    digest = images.content_digest()
    assert images.workload_refs() == [
        f"localhost/kube-alive/workloads:v1-{digest}",
        f"localhost/kube-alive/workloads:v2-{digest}",
    ]
    assert images.image_ref("not-a-version") == "localhost/kube-alive/workloads:not-a-version"
    assert images.alias_ref("v2") == "localhost/kube-alive/workloads:v2"
    assert images.tag_of("registry:5000/kube-alive/workloads:v2") == "v2"
    assert images.tag_of("registry:5000/kube-alive/workloads:v2@sha256:ab") == "v2"
    assert images.tag_of("registry:5000/kube-alive/workloads") == "latest"
    assert images.with_tag("registry:5000/kube-alive/workloads:v1", "v2") == (
        "registry:5000/kube-alive/workloads:v2"
    )


# The content digest: what names the images (suite/images.py).


def _sources(root: Path) -> Path:
    """A minimal copy of the image's sources under `root`."""
    workloads = root / "workloads"
    (workloads / "tests").mkdir(parents=True)
    (workloads / "Dockerfile").write_text("FROM scratch\n")
    (workloads / "requirements.txt").write_text("flask\n")
    (workloads / "getip.py").write_text("print('getip')\n")
    (workloads / "frontend.html").write_text("<p>hi</p>\n")
    (workloads / "tests" / "test_getip.py").write_text("def test(): pass\n")
    return workloads


def test_the_digest_is_twelve_hex_digits_and_stable(tmp_path: Path) -> None:
    _sources(tmp_path / "a")
    _sources(tmp_path / "b")
    first = images.content_digest(tmp_path / "a")
    assert len(first) == images.DIGEST_LENGTH == 12
    assert all(c in "0123456789abcdef" for c in first)
    # Same files elsewhere (another checkout, another machine): the same digest.
    assert images.content_digest(tmp_path / "b") == first
    assert images.content_tag("v1", tmp_path / "a") == f"v1-{first}"


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda w: (w / "getip.py").write_text("print('edited')\n"), id="a module"),
        pytest.param(lambda w: (w / "Dockerfile").write_text("FROM other\n"), id="Dockerfile"),
        pytest.param(lambda w: (w / "requirements.txt").write_text("flask\nx\n"), id="reqs"),
        pytest.param(lambda w: (w / "frontend.html").write_text("<p>ho</p>\n"), id="the page"),
        pytest.param(lambda w: (w / "new.py").write_text(""), id="a new file"),
        pytest.param(lambda w: (w / "getip.py").unlink(), id="a removed file"),
        pytest.param(lambda w: (w / "getip.py").rename(w / "getip2.py"), id="a renamed file"),
    ],
)
def test_the_digest_changes_when_a_file_of_the_image_changes(
    tmp_path: Path, edit: Callable[[Path], object]
) -> None:
    workloads = _sources(tmp_path / "a")
    before = images.content_digest(tmp_path / "a")
    _sources(tmp_path / "b")
    edit(tmp_path / "b" / "workloads")
    assert images.content_digest(tmp_path / "b") != before
    assert images.content_digest(tmp_path / "a") == before, workloads


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda w: (w / "tests" / "test_getip.py").write_text("# edited\n"), id="a test"
        ),
        pytest.param(lambda w: (w / "tests" / "test_new.py").write_text(""), id="a new test"),
        pytest.param(
            lambda w: (
                (w / "__pycache__").mkdir() or (w / "__pycache__" / "getip.pyc").write_bytes(b"x")
            ),
            id="__pycache__",
        ),
        pytest.param(lambda w: (w / "getip.cpython-311.pyc").write_bytes(b"x"), id="a .pyc"),
        pytest.param(lambda w: (w.parent / "README.md").write_text("x"), id="outside workloads/"),
    ],
)
def test_the_digest_ignores_what_does_not_go_into_the_image(
    tmp_path: Path, edit: Callable[[Path], object]
) -> None:
    _sources(tmp_path / "a")
    _sources(tmp_path / "b")
    edit(tmp_path / "b" / "workloads")
    assert images.content_digest(tmp_path / "b") == images.content_digest(tmp_path / "a")


def test_the_digest_covers_this_checkouts_image_sources() -> None:
    files = [path.as_posix() for path in images.content_files()]
    assert "workloads/Dockerfile" in files
    assert "workloads/requirements.txt" in files
    assert "workloads/getip.py" in files
    assert not [f for f in files if "/tests/" in f or "__pycache__" in f], files


def test_without_the_sources_the_digest_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="workloads/Dockerfile"):
        images.content_digest(tmp_path)


@pytest.mark.parametrize(
    ("ref", "pinned"),
    [
        ("localhost/kube-alive/workloads:v1", "localhost/kube-alive/workloads:v1-{d}"),
        (
            "registry.lan:5000/kube-alive/workloads:v2",
            "registry.lan:5000/kube-alive/workloads:v2-{d}",
        ),
        ("localhost/kube-alive/workloads:v1-{d}", "localhost/kube-alive/workloads:v1-{d}"),
        ("localhost/kube-alive/workloads:latest", "localhost/kube-alive/workloads:latest"),
        ("localhost/kube-alive/pause:v1", "localhost/kube-alive/pause:v1"),
        ("docker.io/library/python:3.11", "docker.io/library/python:3.11"),
        ("localhost/kube-alive/workloads", "localhost/kube-alive/workloads"),
    ],
)
def test_pin_names_a_plain_version_by_content_and_leaves_the_rest(ref: str, pinned: str) -> None:
    digest = images.content_digest()
    assert images.pin(ref.format(d=digest)) == pinned.format(d=digest)


def test_versions_and_digests_are_read_back_from_tags() -> None:
    assert images.version_of("v2-0123456789ab") == "v2"
    assert images.digest_of("v2-0123456789ab") == "0123456789ab"
    assert images.version_of("v2") == "v2"
    assert images.digest_of("v2") is None
    assert images.version_of("v1-arm64") == "v1-arm64"


def test_the_command_line_prints_what_build_images_sh_tags() -> None:
    script = Path(images.__file__)
    run = subprocess.run(
        [sys.executable, "-I", str(script), "tag", "v2"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == images.content_tag("v2")
    bad = subprocess.run(
        [sys.executable, "-I", str(script), "tag", "v3"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "usage" in bad.stderr


def test_facts_record_the_digest_and_tags() -> None:
    facts = images.facts()
    assert facts["digest"] == images.content_digest()
    assert facts["tags"] == [images.content_tag("v1"), images.content_tag("v2")]

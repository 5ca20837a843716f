"""The workload image's recipe: the lean python base's package closure, cache keys, the size
check's arithmetic; and the size check itself in the local cluster's run.

The size check builds the images (or finds them cached, as after `python -m localcluster up`) and
needs root and buildah: it runs in `pytest --cluster=local` (as .ci/run does) or with
KUBE_ALIVE_IMAGE_CHECKS=1, and is skipped with that reason anywhere else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from pathlib import Path

import pytest

from localcluster import build, config
from localcluster.util import ClusterError

#: The issue's bound on the workload image built on the Debian base (it was 205 MB).
MAX_IMAGE_MB = 120


def control(depends: str = "", pre: str = "", provides: str = "") -> dict[str, str]:
    """Control fields as `parse_control` returns them."""
    return {"Depends": depends, "Pre-Depends": pre, "Provides": provides}


def test_control_fields_are_parsed_with_continuation_lines():
    text = "Pre-Depends: libc6 (>= 2.34)\nDepends: python3.11 (>= 3.11.2-1~),\n libpython3-stdlib\n"
    assert build.parse_control(text) == {
        "Pre-Depends": "libc6 (>= 2.34)",
        "Depends": "python3.11 (>= 3.11.2-1~), libpython3-stdlib",
    }


def test_the_closure_follows_depends_pre_depends_alternatives_and_provides():
    controls = {
        "python3": control("python3.11 (>= 3.11), libpython3-stdlib", pre="python3-minimal"),
        "python3.11": control("libc6 (>= 2.34), media-types | mime-support"),
        "libpython3-stdlib": control("libpython3.11-stdlib:any"),
        "libpython3.11-stdlib": control("libc6"),
        "python3-minimal": control("python3.11-minimal, dpkg (>= 1.13.20)"),
        "python3.11-minimal": control("libc6"),
        "python3-venv": control("python3.11-venv"),
        "python3.11-venv": control("python3.11-distutils, python3-pip-whl"),
        "python3-distutils": control(provides="python3.11-distutils"),
        "python3-pip-whl": control(),
        "media-types": control(),
        "libc6": control("libgcc-s1"),
        "libgcc-s1": control(),
        "dpkg": control("tar"),
        "tar": control(),
        "perl-base": control(),
    }
    closure = build.package_closure(controls, roots=("python3", "python3-venv"))
    assert closure[:2] == ["python3", "python3-venv"]
    assert set(closure) == set(controls) - {"dpkg", "tar", "perl-base"}


def test_a_dependency_with_a_maintainer_only_alternative_is_left_out():
    controls = {
        "ca-certificates": control("openssl, debconf (>= 0.5) | debconf-2.0"),
        "openssl": {},
    }
    assert build.package_closure(controls, roots=("ca-certificates",)) == [
        "ca-certificates",
        "openssl",
    ]


def test_an_unmet_dependency_names_the_package_and_what_it_needs():
    controls = {"python3": control("python3.11 (>= 3.11) | python3.12")}
    with pytest.raises(ClusterError, match=re.escape("python3 depends on python3.11 | python3.12")):
        build.package_closure(controls, roots=("python3",))


def test_a_root_that_was_not_downloaded_is_named():
    with pytest.raises(ClusterError, match="package dash was not downloaded"):
        build.package_closure({}, roots=("dash",))


def test_the_base_is_named_by_its_recipe_and_architecture(monkeypatch, tmp_path):
    amd64, arm64 = build.base_image_ref("amd64"), build.base_image_ref("arm64")
    assert amd64 != arm64
    assert amd64 == build.base_image_ref("amd64")
    # A change to the recipe (this module's file) is a new name, so a new base.
    recipe = tmp_path / "build.py"
    recipe.write_text(Path(build.__file__).read_text() + "\n# changed\n")
    monkeypatch.setattr(build, "__file__", str(recipe))
    assert build.base_image_ref("amd64") != amd64


def test_workload_archives_are_keyed_by_the_base_recipe_too(monkeypatch, tmp_path):
    paths = config.Paths(state=tmp_path / "s", cache=tmp_path / "c")
    before = build.workload_archive(paths, "v1")
    recipe = tmp_path / "build.py"
    recipe.write_text(Path(build.__file__).read_text() + "\n# changed\n")
    monkeypatch.setattr(build, "__file__", str(recipe))
    assert build.workload_archive(paths, "v1") != before


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/" + digest.replace(":", "/"))
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return digest


def test_the_image_size_is_its_layers_uncompressed(tmp_path):
    archive = tmp_path / "image.tar"
    layers = [b"a" * 3000, b"b" * 5000]
    with tarfile.open(archive, "w") as tar:
        described = [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": _blob(tar, gzip.compress(layers[0])),
            },
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _blob(tar, layers[1]),
            },
        ]
        manifest = _blob(tar, json.dumps({"layers": described}).encode())
        index = json.dumps({"manifests": [{"digest": manifest}]}).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
    assert build.image_size_bytes(archive) == 8000


def test_the_size_check_prints_each_image_and_fails_over_the_bound(monkeypatch, tmp_path, capsys):
    archives = [("repo:v1", tmp_path / "v1.tar"), ("repo:v2", tmp_path / "v2.tar")]
    monkeypatch.setattr(build, "build_workload_images", lambda _paths, _log: archives)
    sizes = {archives[0][1]: 74_400_000, archives[1][1]: 120_500_000}
    monkeypatch.setattr(build, "image_size_bytes", sizes.__getitem__)
    problems = build.check_image_sizes(config.Paths(tmp_path, tmp_path), 120, lambda _m: None)
    assert capsys.readouterr().out.splitlines() == [
        "repo:v1: 74.4 MB (at most 120 MB): OK",
        "repo:v2: 120.5 MB (at most 120 MB): TOO BIG",
    ]
    assert problems == ["repo:v2 is 120.5 MB, more than 120 MB"]


@pytest.mark.parametrize(
    ("cluster_option", "euid", "in_ci", "environ", "runs"),
    [
        (None, 0, False, {}, False),  # tox -e unit
        (None, 0, True, {}, False),  # tox -e unit under CI=true
        ("kind", 0, True, {}, False),
        ("local", 0, True, {}, True),  # .ci/run
        ("local", 0, False, {}, True),
        ("local", 1000, False, {}, False),  # not root: skipped with the reason
        ("local", 1000, True, {}, True),  # CI's local run never skips: it fails instead
        (None, 0, False, {"KUBE_ALIVE_IMAGE_CHECKS": "1"}, True),
        (None, 1000, False, {"KUBE_ALIVE_IMAGE_CHECKS": "1"}, False),
    ],
)
def test_image_checks_run_in_the_local_clusters_run_or_on_request(
    cluster_option, euid, in_ci, environ, runs
):
    # (not named `cluster`: the plugin marks tests that take a `cluster` fixture as e2e)
    reason = build.image_checks_skip_reason(cluster_option, euid, in_ci, environ)
    assert (reason is None) == runs, reason


def test_the_size_cli_exits_1_over_the_bound(monkeypatch):
    monkeypatch.setattr(build, "check_image_sizes", lambda _p, _m, _l: ["too big"])
    assert build.main(["image-size", "--max-mb", "120"]) == 1
    monkeypatch.setattr(build, "check_image_sizes", lambda _p, _m, _l: [])
    assert build.main(["image-size", "--max-mb", "120"]) == 0


def test_the_workload_image_is_at_most_120_mb(image_checks):
    """Both workload images, as built on the Debian base, are at most MAX_IMAGE_MB."""
    problems = build.check_image_sizes(config.Paths.default(), MAX_IMAGE_MB, print)
    assert not problems


def test_the_maintainer_scripts_work_that_python_needs_is_done_by_the_recipe(tmp_path):
    root = tmp_path / "root"
    files = {
        "usr/share/base-passwd/passwd.master": "root:*:0:0:root:/root:/bin/sh\n",
        "usr/share/base-passwd/group.master": "root:*:0:\n",
        "usr/share/libc-bin/nsswitch.conf": "hosts: files dns\n",
        "usr/share/ca-certificates/mozilla/B.crt": "-----B-----\n",
        "usr/share/ca-certificates/mozilla/A.crt": "-----A-----",
        "usr/share/doc/python3/copyright": "text",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for folder in ("etc", "var/run", "var/lock"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    build._configure(root)
    assert (root / "etc/passwd").read_text() == files["usr/share/base-passwd/passwd.master"]
    assert (root / "etc/group").read_text() == files["usr/share/base-passwd/group.master"]
    assert (root / "etc/nsswitch.conf").read_text() == "hosts: files dns\n"
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    assert bundle.read_text() == "-----A-----\n-----B-----\n"
    assert os.readlink(root / "var/run") == "/run"
    assert os.readlink(root / "var/lock") == "/run/lock"
    assert not (root / "usr/share/doc").exists()


def test_a_base_without_certificates_is_an_error(tmp_path):
    root = tmp_path / "root"
    for name in ("passwd.master", "group.master"):
        (root / "usr/share/base-passwd").mkdir(parents=True, exist_ok=True)
        (root / "usr/share/base-passwd" / name).write_text("")
    (root / "usr/share/libc-bin").mkdir(parents=True)
    (root / "usr/share/libc-bin/nsswitch.conf").write_text("")
    (root / "etc").mkdir()
    with pytest.raises(ClusterError, match="no certificates"):
        build._configure(root)


def test_load_images_imports_the_content_named_images_and_points_the_plain_tags_at_them(
    monkeypatch, tmp_path
):
    from localcluster import api, cluster
    from suite import images

    built = [(images.image_ref(v), tmp_path / f"{v}.tar") for v in ("v1", "v2")]
    calls = []
    monkeypatch.setattr(api, "_paths", lambda: config.Paths(tmp_path, tmp_path))
    monkeypatch.setattr(build, "build_workload_images", lambda _paths, _log: built)
    monkeypatch.setattr(cluster, "import_images", lambda _p, archives, _l: calls.append(archives))
    monkeypatch.setattr(cluster, "tag_images", lambda _p, pairs, _l: calls.append(pairs))
    # A plain version on the command line means this checkout's content tag.
    api.load_images(["localhost/kube-alive/workloads:v2"], lambda _m: None)
    assert calls == [
        [tmp_path / "v2.tar"],
        [(images.image_ref("v2"), "localhost/kube-alive/workloads:v2")],
    ]
    with pytest.raises(ClusterError, match="no local build for"):
        api.load_images(["localhost/kube-alive/workloads:v2-0123456789ab"], lambda _m: None)

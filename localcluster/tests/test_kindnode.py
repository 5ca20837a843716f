"""Unit tests of the kind node image's pieces and the engine's runtime filter (no build, no
engine, no cluster)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import struct
import tarfile
import types
from pathlib import Path

import pytest

from localcluster import engine, imagearchive, kindnode

KIND_CONST_GO = """package nodeimage

const storageProvisionerImage = "example.test/kindest/local-path-provisioner:v1"
const storageHelperImage = "example.test/kindest/local-path-helper:v2"

const defaultStorageManifest = `
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - image: ` + storageProvisionerImage + `
          command:
            - --helper-image
            - ` + storageHelperImage + `
`
"""

KUBEADM_LIST = """example.test/kube-apiserver:v1.34.4
example.test/kube-controller-manager:v1.34.4
example.test/kube-scheduler:v1.34.4
example.test/kube-proxy:v1.34.4
example.test/coredns/coredns:v1.12.1
example.test/pause:3.10.1
example.test/etcd:3.6.5-0
"""


def test_kinds_storage_manifest_is_read_with_its_image_constants_resolved():
    manifest = kindnode.go_string_constant(KIND_CONST_GO, "defaultStorageManifest")
    assert manifest.startswith("apiVersion: apps/v1\n")
    assert "image: example.test/kindest/local-path-provisioner:v1" in manifest
    assert kindnode.manifest_images(manifest) == [
        "example.test/kindest/local-path-provisioner:v1",
    ]


def test_a_missing_constant_is_named():
    with pytest.raises(kindnode.ClusterError, match="no constant defaultCNIManifest"):
        kindnode.go_string_constant(KIND_CONST_GO, "defaultCNIManifest")


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("kube-apiserver", "example.test/kube-apiserver:v1.34.4"),
        ("coredns", "example.test/coredns/coredns:v1.12.1"),
        ("etcd", "example.test/etcd:3.6.5-0"),
        ("pause", "example.test/pause:3.10.1"),
    ],
)
def test_image_names_come_from_kubeadm(name, ref):
    assert kindnode.kubeadm_image(KUBEADM_LIST, name) == ref


def test_an_image_kubeadm_does_not_list_is_an_error():
    with pytest.raises(kindnode.ClusterError, match="names no kindnetd image"):
        kindnode.kubeadm_image(KUBEADM_LIST, "kindnetd")


def test_the_sandbox_image_comes_from_kinds_containerd_config():
    text = '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "example.test/pause:3.10"\n'
    assert kindnode.sandbox_image(text) == "example.test/pause:3.10"
    with pytest.raises(kindnode.ClusterError):
        kindnode.sandbox_image("version = 2\n")


def test_the_file_capability_grants_exactly_net_bind_service():
    magic, permitted, inheritable, high_p, high_i = struct.unpack(
        "<IIIII", kindnode.file_capability(kindnode.CAP_NET_BIND_SERVICE)
    )
    assert magic == 0x02000001  # revision 2, effective
    assert permitted == 1 << 10
    assert (inheritable, high_p, high_i) == (0, 0, 0)


def _archive(tmp_path: Path, name: str) -> Path:
    src = tmp_path / f"src-{name}"
    (src / "bin").mkdir(parents=True, exist_ok=True)
    (src / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    layer = imagearchive.layer_from_dir(src, tmp_path / f"{name}.layer.tar")
    return imagearchive.write_archive(
        tmp_path / f"{name}.tar",
        ["example.test/hello:1"],
        [layer],
        imagearchive.ImageConfig(entrypoint=("/bin/hello",), user="65534:65534"),
    )


def test_an_archive_has_the_docker_save_layout_and_is_byte_identical_when_rebuilt(tmp_path):
    first = _archive(tmp_path, "a")
    second = _archive(tmp_path, "b")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["example.test/hello:1"]
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        layer = tar.extractfile(manifest[0]["Layers"][0])
        with tarfile.open(fileobj=layer) as inner:
            assert "./bin/hello" in inner.getnames()
    assert config["config"]["Entrypoint"] == ["/bin/hello"]
    assert config["config"]["User"] == "65534:65534"
    assert config["created"] == imagearchive.EPOCH
    assert imagearchive.image_id(first).startswith("sha256:")
    assert not list(tmp_path.glob("*.partial"))


def test_missing_capabilities_reads_the_bounding_set():
    missing = engine.missing_capabilities()
    assert all(isinstance(bit, int) and bit >= 0 for bit in missing)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    assert all(bit <= last for bit in missing)


def _capfilter():
    path = str(Path(engine.__file__).with_name("runc-capfilter"))
    loader = importlib.machinery.SourceFileLoader("runc_capfilter", path)
    spec = importlib.util.spec_from_loader("runc_capfilter", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_runtime_filter_drops_only_capabilities_outside_the_bounding_set(tmp_path, monkeypatch):
    capfilter = _capfilter()
    monkeypatch.setattr(capfilter, "bounding_set", lambda: {"CAP_CHOWN", "CAP_NET_ADMIN"})
    bundle = tmp_path / "config.json"
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    bundle.write_text(json.dumps({"process": {"capabilities": {"bounding": caps}}}))
    capfilter.filter_file(str(bundle), in_process=False)
    kept = json.loads(bundle.read_text())["process"]["capabilities"]["bounding"]
    assert kept == ["CAP_CHOWN", "CAP_NET_ADMIN"]
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"effective": caps, "ambient": None}}))
    capfilter.filter_file(str(process), in_process=True)
    assert json.loads(process.read_text())["capabilities"]["effective"] == kept


def test_the_runtime_filter_then_runs_runc_with_the_same_arguments(tmp_path, monkeypatch):
    capfilter = _capfilter()
    calls = []
    monkeypatch.setattr(capfilter.os, "execv", lambda path, argv: calls.append((path, argv)))
    monkeypatch.setattr(capfilter, "REAL_RUNC", "/usr/sbin/runc")
    capfilter.main(["--root", "/x", "exec", "--process", str(tmp_path / "none.json"), "id"])
    assert calls == [
        (
            "/usr/sbin/runc",
            ["/usr/sbin/runc", "--root", "/x", "exec", "--process", f"{tmp_path}/none.json", "id"],
        )
    ]
    assert os.access(Path(engine.__file__).with_name("runc-capfilter"), os.X_OK)


def test_a_failing_build_step_is_named_with_the_tail_of_its_output():
    with pytest.raises(kindnode.ClusterError) as error, kindnode._step("component images", print):
        kindnode.run(["sh", "-c", "echo first; echo the last line >&2; exit 3"])
    text = str(error.value)
    assert text.startswith("kind node image, step 'component images' failed: ")
    assert "exited 3" in text
    assert text.rstrip().endswith("the last line")


def test_a_failing_debootstrap_names_its_log_and_its_last_lines(tmp_path, monkeypatch):
    def fake_debootstrap(argv, stdout, stderr, timeout):
        stdout.write("I: Retrieving InRelease\nE: Failed getting release file\n")
        stdout.flush()
        return types.SimpleNamespace(returncode=1)

    monkeypatch.setattr(kindnode.subprocess, "run", fake_debootstrap)
    with pytest.raises(kindnode.ClusterError) as error:
        kindnode._debootstrap(tmp_path / "rootfs", "bash", tmp_path / "rootfs.log")
    assert f"debootstrap exited 1; last lines of {tmp_path / 'rootfs.log'}" in str(error.value)
    assert "E: Failed getting release file" in str(error.value)
    assert not (tmp_path / "rootfs").exists()

"""The README's registry set-up for Raspberry Pi nodes is what CI does to its kind nodes.

CI's existing-cluster step lets the kind nodes pull from its plain-HTTP registry by writing
containerd's `hosts.toml` (`engine.trust_registry_on_kind_nodes`); the README tells a Pi owner to
write the same file. These tests hold the two together, and check that the README's snippets are
valid TOML and YAML that say what the prose says.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from localcluster import config, engine

README = config.REPO_DIR / "README.md"
EXAMPLE = "192.168.1.10:5000"


def _pi_section() -> str:
    text = README.read_text()
    start = text.index("### A Raspberry Pi cluster and its registry")
    return text[start : text.index("\n## ", start)]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _pi_section(), flags=re.DOTALL)


def test_the_readme_s_hosts_toml_is_the_one_ci_writes_on_its_nodes():
    assert engine.hosts_toml(EXAMPLE) in _blocks("toml")
    parsed = tomllib.loads(engine.hosts_toml(EXAMPLE))
    assert parsed["server"] == f"http://{EXAMPLE}"
    assert parsed["host"][f"http://{EXAMPLE}"]["capabilities"] == ["pull", "resolve"]


def test_the_readme_s_containerd_config_points_the_cri_plugin_at_certs_d():
    configs = [tomllib.loads(b) for b in _blocks("toml")]
    registry = next(
        c["plugins"]["io.containerd.grpc.v1.cri"]["registry"] for c in configs if "plugins" in c
    )
    assert registry == {"config_path": "/etc/containerd/certs.d"}
    assert f"/etc/containerd/certs.d/{EXAMPLE}/hosts.toml" in _pi_section()


def test_the_readme_s_k3s_registries_yaml_names_the_plain_http_endpoint():
    (block,) = _blocks("yaml")
    assert yaml.safe_load(block) == {"mirrors": {EXAMPLE: {"endpoint": [f"http://{EXAMPLE}"]}}}
    assert "/etc/rancher/k3s/registries.yaml" in _pi_section()


def test_the_readme_s_buildkitd_toml_lets_buildx_push_over_http():
    (buildkitd,) = [
        tomllib.loads(b) for b in _blocks("toml") if "registry" in b and "[registry" in b
    ]
    assert buildkitd == {"registry": {EXAMPLE: {"http": True}}}


def test_ci_writes_that_file_where_containerd_looks_for_the_registry(monkeypatch, tmp_path):
    written: list[tuple[list[str], str | None]] = []

    def fake_docker(_paths, _engine, _log, *args, timeout=120):
        assert args[:3] == ("ps", "--filter", f"label={engine.KIND_CLUSTER_LABEL}=kube-alive")
        return subprocess.CompletedProcess(args, 0, "kube-alive-worker\nkube-alive-control-plane\n")

    def fake_run(argv, *, input_text=None, **_kwargs):
        written.append(([str(a) for a in argv], input_text))
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(engine, "_docker", fake_docker)
    monkeypatch.setattr(engine, "run", fake_run)
    monkeypatch.setattr(engine, "docker_bin", lambda _paths, _log: tmp_path)
    paths = config.Paths(state=tmp_path / "state", cache=tmp_path / "cache")
    nodes = engine.trust_registry_on_kind_nodes(paths, "kube-alive", lambda _m: None)
    assert nodes == ["kube-alive-control-plane", "kube-alive-worker"]
    folder = f"/etc/containerd/certs.d/{engine.REGISTRY_ADDRESS}"
    for (argv, text), node in zip(written, nodes, strict=True):
        assert argv[:4] == [str(Path(tmp_path) / "docker"), "exec", "-i", node]
        assert argv[-1] == f"mkdir -p {folder} && cat > {folder}/hosts.toml"
        # The README's file, with CI's registry in place of the example address.
        assert text == engine.hosts_toml(EXAMPLE).replace(EXAMPLE, engine.REGISTRY_ADDRESS)

import pytest

from suite import images, manifests
from suite.tests.fakes import FakeKube


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_every_workload_in_the_repository_loads():
    for app in ("getip", "healthcheck", "cpuhog", "incver", "prober"):
        objects = manifests.load_app(app)
        kinds = {obj["kind"] for obj in objects}
        assert {"Deployment", "Service"} <= kinds, app
    assert "HorizontalPodAutoscaler" in {obj["kind"] for obj in manifests.load_app("cpuhog")}


def test_only_the_resources_list_is_used_and_directories_recurse(tmp_path):
    write(
        tmp_path / "app/kustomization.yaml", "namespace: ignored\nresources:\n  - a.yaml\n  - sub\n"
    )
    write(tmp_path / "app/a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n")
    write(tmp_path / "app/sub/kustomization.yaml", "resources: [b.yaml]\n")
    write(
        tmp_path / "app/sub/b.yaml",
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
    )
    write(tmp_path / "app/unlisted.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: no}\n")
    objects = manifests.load_app("app", root=tmp_path)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Service", "a"),
        ("ConfigMap", "b"),
    ]


def test_bad_kustomizations_are_explained(tmp_path):
    with pytest.raises(manifests.ManifestError, match="no manifests for 'nope'"):
        manifests.load_app("nope", root=tmp_path)
    write(tmp_path / "r/kustomization.yaml", "resources: [https://example.com/x.yaml]\n")
    with pytest.raises(manifests.ManifestError, match="remote resource"):
        manifests.load_app("r", root=tmp_path)
    write(tmp_path / "m/kustomization.yaml", "resources: [missing.yaml]\n")
    with pytest.raises(manifests.ManifestError, match="does not exist"):
        manifests.load_app("m", root=tmp_path)


def test_prepare_namespaces_rewrites_images_and_overrides():
    objects = [
        *manifests.load_app("getip"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-alive"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "kube-alive"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "kube-alive"}],
        },
    ]
    prepared = manifests.prepare(
        objects,
        "ka-1-test",
        rewrite=lambda ref: images.rewrite(ref, "registry.lan:5000"),
        overrides={"Deployment/getip": {"spec": {"replicas": 4}}},
    )
    kinds = [obj["kind"] for obj in prepared]
    assert "Namespace" not in kinds
    assert all(obj["metadata"]["namespace"] == "ka-1-test" for obj in prepared)
    deployment = next(obj for obj in prepared if obj["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 4
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.lan:5000/kube-alive/workloads:v1"
    assert container["args"] == ["getip"]
    binding = next(obj for obj in prepared if obj["kind"] == "RoleBinding")
    assert binding["subjects"][0]["namespace"] == "ka-1-test"
    # the input was not modified
    original = next(obj for obj in objects if obj["kind"] == "Deployment")
    assert original["spec"]["template"]["spec"]["containers"][0]["image"].startswith("localhost/")


def test_an_override_for_a_missing_object_is_an_error():
    with pytest.raises(manifests.ManifestError, match="Deployment/typo"):
        manifests.prepare(manifests.load_app("getip"), "ns", overrides={"Deployment/typo": {}})


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "list": [1]}}
    merged = manifests.deep_merge(
        base, {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}, "list": [2]}}
    )
    assert merged == {
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
            "list": [2],
        }
    }
    assert base["spec"]["list"] == [1]


def discovery_kube():
    return (
        FakeKube()
        .on(
            "GET",
            "/api/v1",
            {
                "resources": [
                    {"name": "services", "kind": "Service", "namespaced": True},
                    {"name": "services/proxy", "kind": "ServiceProxyOptions", "namespaced": True},
                ]
            },
        )
        .on(
            "GET",
            "/apis/apps/v1",
            {
                "resources": [
                    {"name": "deployments", "kind": "Deployment", "namespaced": True},
                    {"name": "deployments/scale", "kind": "Scale", "namespaced": True},
                ]
            },
        )
        .on("PATCH", "/api/v1/namespaces/ns/services/getip", lambda m, p, q, b: b)
        .on("PATCH", "/apis/apps/v1/namespaces/ns/deployments/getip", lambda m, p, q, b: b)
    )


def test_apply_uses_discovery_and_server_side_apply():
    kube = discovery_kube()
    applied = manifests.apply_app(kube, "getip", "ns")
    assert {obj["kind"] for obj in applied} == {"Deployment", "Service"}
    patches = [call for call in kube.calls if call[0] == "PATCH"]
    assert {call[1] for call in patches} == {
        "/api/v1/namespaces/ns/services/getip",
        "/apis/apps/v1/namespaces/ns/deployments/getip",
    }
    assert all(call[2] == {"fieldManager": "kube-alive", "force": True} for call in patches)
    # discovery is asked once per group/version
    assert kube.paths("GET").count("/apis/apps/v1") == 1


def test_unknown_kinds_are_explained():
    mapper = manifests.RestMapper(discovery_kube())
    with pytest.raises(manifests.ManifestError, match="does not serve Frobnicator in apps/v1"):
        mapper.resource("apps/v1", "Frobnicator")

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
    assert images.workload_refs() == [
        "localhost/kube-alive/workloads:v1",
        "localhost/kube-alive/workloads:v2",
    ]
    assert images.tag_of("registry:5000/kube-alive/workloads:v2") == "v2"
    assert images.tag_of("registry:5000/kube-alive/workloads") == "latest"
    assert images.with_tag("registry:5000/kube-alive/workloads:v1", "v2") == (
        "registry:5000/kube-alive/workloads:v2"
    )

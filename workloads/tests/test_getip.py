"""getip: who served the request."""

from __future__ import annotations

from workloads import getip


def test_get_root_says_pod_ip_node_and_version() -> None:
    response = getip.create_app().test_client().get("/")
    assert response.status_code == 200
    assert response.json == {
        "pod": "test-pod-0",
        "version": "v9",
        "ip": "10.1.2.3",
        "node": "node-a",
    }


def test_post_root_is_405() -> None:
    assert getip.create_app().test_client().post("/").status_code == 405

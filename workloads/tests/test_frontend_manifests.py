"""manifests/frontend: the ServiceAccount's rights, exactly: pods read, one HPA read, one
Deployment patched; no wildcard, no cluster-wide object, nothing else."""

from __future__ import annotations

from typing import Any

from workloads.tests.test_manifests import objects_of

POD_READER = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
INCVER_ROLLER = {
    "apiGroups": ["apps"],
    "resources": ["deployments"],
    "resourceNames": ["incver"],
    "verbs": ["get", "patch"],
}
HPA_READER = {
    "apiGroups": ["autoscaling"],
    "resources": ["horizontalpodautoscalers"],
    "resourceNames": ["cpuhog"],
    "verbs": ["get", "list", "watch"],
}
EXPECTED = {
    "frontend-pod-reader": [POD_READER],
    "frontend-incver-roller": [INCVER_ROLLER],
    "frontend-hpa-reader": [HPA_READER],
}


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects_of("frontend", kind)}


def test_the_frontend_has_exactly_three_roles_with_exactly_these_rules() -> None:
    roles = by_name("Role")
    assert {name: role["rules"] for name, role in roles.items()} == EXPECTED


def test_each_role_is_bound_to_the_frontend_service_account_only() -> None:
    bindings = by_name("RoleBinding")
    assert set(bindings) == set(EXPECTED)
    for name, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "frontend"}]


def test_no_rule_uses_a_wildcard_or_a_dangerous_verb() -> None:
    for role in by_name("Role").values():
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], key)
            assert not {"create", "delete", "deletecollection", "update", "escalate", "bind",
                        "impersonate"} & set(rule["verbs"])  # fmt: skip
            assert "nonResourceURLs" not in rule

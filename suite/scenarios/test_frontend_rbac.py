"""The frontend's ServiceAccount may do what the live page needs and nothing else.

What it needs (manifests/frontend/role*.yaml): get/list/watch pods in its own namespace; get/list/
watch the HorizontalPodAutoscaler named cpuhog; get and patch the Deployment named incver. Two
proofs, both from the API server itself:

1. SubjectAccessReview as `system:serviceaccount:<ns>:frontend` *with its groups*
   (`system:serviceaccounts`, `system:serviceaccounts:<ns>`, `system:authenticated`), so a grant to
   every ServiceAccount or every authenticated user would show up too: every needed verb is
   allowed; secrets, other namespaces, other Deployments and HPAs, deleting pods, exec, creating
   tokens, and changing RBAC are not.
2. A real token of the ServiceAccount (TokenRequest, 10 minutes): SelfSubjectRulesReview lists
   every rule it has in the namespace, and that list is exactly ours plus the self-review rules
   every user has; real requests with the token get 200/404 where allowed and 403 elsewhere
   (writes are sent with dryRun=All, so nothing changes even if RBAC were wrong).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from suite import manifests
from suite.cluster import Cluster
from suite.kube import Kube, client_configuration
from suite.waiting import retry_transient

SERVICE_ACCOUNT = "frontend"
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding")
#: A new RoleBinding reaches the authorizer's informer cache within a second or so; the rest is
#: room for a busy 2-core machine.
RBAC_PROPAGATION_S = 20.0
#: pytest-timeout backstop (suite/plugin.py): the frontend Ready (120 s, READY_S of
#: suite/fixtures.py), its rules propagated, a few hundred reviews; plus a margin.
BACKSTOP_S = 120.0 + RBAC_PROPAGATION_S + 120.0
#: The shortest lifetime a TokenRequest accepts.
TOKEN_LIFETIME_S = 600
OTHER_NAMESPACE = "kube-system"

#: (verb, API group, resource, name, subresource), in the frontend's own namespace.
Access = tuple[str, str, str, str, str]
ALLOWED: list[Access] = [
    ("get", "", "pods", "", ""),
    ("list", "", "pods", "", ""),
    ("watch", "", "pods", "", ""),
    ("get", "", "pods", "any-pod", ""),
    ("get", "apps", "deployments", "incver", ""),
    ("patch", "apps", "deployments", "incver", ""),
    ("get", "autoscaling", "horizontalpodautoscalers", "cpuhog", ""),
    # list/watch with fieldSelector=metadata.name=cpuhog arrive with the name set.
    ("list", "autoscaling", "horizontalpodautoscalers", "cpuhog", ""),
    ("watch", "autoscaling", "horizontalpodautoscalers", "cpuhog", ""),
]
DENIED: list[Access] = [
    ("get", "", "secrets", "", ""),
    ("list", "", "secrets", "", ""),
    ("get", "", "configmaps", "", ""),
    ("delete", "", "pods", "any-pod", ""),
    ("create", "", "pods", "", ""),
    ("patch", "", "pods", "any-pod", ""),
    ("create", "", "pods", "any-pod", "exec"),
    ("get", "", "pods", "any-pod", "log"),
    ("create", "", "serviceaccounts", "frontend", "token"),
    ("get", "", "services", "frontend", "proxy"),
    ("list", "apps", "deployments", "", ""),
    ("get", "apps", "deployments", "getip", ""),
    ("patch", "apps", "deployments", "getip", ""),
    ("update", "apps", "deployments", "incver", ""),
    ("delete", "apps", "deployments", "incver", ""),
    ("patch", "apps", "deployments", "incver", "scale"),
    ("create", "apps", "deployments", "", ""),
    ("list", "autoscaling", "horizontalpodautoscalers", "", ""),
    ("get", "autoscaling", "horizontalpodautoscalers", "other", ""),
    ("patch", "autoscaling", "horizontalpodautoscalers", "cpuhog", ""),
    ("create", "rbac.authorization.k8s.io", "roles", "", ""),
    ("bind", "rbac.authorization.k8s.io", "roles", "", ""),
    ("create", "rbac.authorization.k8s.io", "rolebindings", "", ""),
]
#: The same rights must stop at the namespace's edge.
DENIED_ELSEWHERE: list[Access] = [
    ("list", "", "pods", "", ""),
    ("watch", "", "pods", "", ""),
    ("get", "apps", "deployments", "incver", ""),
    ("patch", "apps", "deployments", "incver", ""),
    ("get", "autoscaling", "horizontalpodautoscalers", "cpuhog", ""),
]
#: What SelfSubjectRulesReview must list, as (API group, resource, name, verb); "" = any name.
EXPECTED_RULES = {
    *(("", "pods", "", verb) for verb in ("get", "list", "watch")),
    ("apps", "deployments", "incver", "get"),
    ("apps", "deployments", "incver", "patch"),
    *(("autoscaling", "horizontalpodautoscalers", "cpuhog", v) for v in ("get", "list", "watch")),
}
#: Every authenticated user may ask what it may do (system:basic-user); that is not a right over
#: the cluster's objects.
SELF_REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"}


def apply_rbac(cluster: Cluster, namespace: str) -> None:
    """Apply only the frontend's ServiceAccount, Roles and RoleBindings (no pod is needed)."""
    objects = [obj for obj in manifests.load_app("frontend") if obj["kind"] in RBAC_KINDS]
    assert {obj["kind"] for obj in objects} == set(RBAC_KINDS)
    manifests.apply_objects(cluster.kube, manifests.prepare(objects, namespace))


def user(namespace: str) -> str:
    """The ServiceAccount's user name, as the authorizer sees it."""
    return f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"


def review(kube: Kube, namespace: str, where: str, access: Access) -> tuple[bool, str]:
    """Ask the authorizer whether the ServiceAccount (with its groups) may do `access` in
    namespace `where`; (allowed, the authorizer's reason)."""
    verb, group, resource, name, subresource = access
    answer = kube.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user(namespace),
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{namespace}",
                    "system:authenticated",
                ],
                "resourceAttributes": {
                    "namespace": where,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "name": name,
                    "subresource": subresource,
                },
            },
        },
    )
    status = answer.get("status") or {}
    return bool(status.get("allowed")), str(status.get("reason") or status.get("denied") or "")


def describe(access: Access, where: str) -> str:
    """`patch deployments.apps/incver in ns`, kubectl-like."""
    verb, group, resource, name, subresource = access
    text = f"{verb} {resource}{'.' + group if group else ''}"
    if name:
        text += f"/{name}"
    if subresource:
        text += f"/{subresource}"
    return f"{text} in {where}"


class NotYet(Exception):
    """An access that should be allowed is not (yet): the RoleBinding may still be propagating."""


def wait_for_bindings(kube: Kube, namespace: str) -> None:
    """Wait until one allowed access of each Role is allowed (the bindings reached the
    authorizer's cache)."""
    probes = [
        ("list", "", "pods", "", ""),
        ("patch", "apps", "deployments", "incver", ""),
        ("watch", "autoscaling", "horizontalpodautoscalers", "cpuhog", ""),
    ]

    def check() -> None:
        waiting = [
            describe(a, namespace) for a in probes if not review(kube, namespace, namespace, a)[0]
        ]
        if waiting:
            raise NotYet(f"still denied: {', '.join(waiting)}")

    retry_transient(
        check,
        timeout_s=RBAC_PROPAGATION_S,
        what=f"rolebindings of serviceaccount/{SERVICE_ACCOUNT}",
        where=namespace,
        expected="each Role's rights granted",
        hint=f"kubectl -n {namespace} get roles,rolebindings -o wide",
        transient=lambda error: isinstance(error, NotYet),
    )


@pytest.fixture
def frontend_rbac(cluster: Cluster, namespace: str) -> str:
    """The frontend's ServiceAccount, Roles and RoleBindings in the test namespace, in force."""
    apply_rbac(cluster, namespace)
    wait_for_bindings(cluster.kube, namespace)
    return namespace


def test_the_frontend_service_account_may_do_what_the_page_needs_and_nothing_else(
    cluster: Cluster, frontend_rbac: str, figures: dict[str, Any]
) -> None:
    """Every needed access is allowed; secrets, other Deployments and HPAs, deleting pods, exec,
    tokens, RBAC, and everything in another namespace are denied (SubjectAccessReview with the
    ServiceAccount's groups)."""
    namespace = frontend_rbac
    cases = [(a, namespace, True) for a in ALLOWED]
    cases += [(a, namespace, False) for a in DENIED]
    cases += [(a, OTHER_NAMESPACE, False) for a in DENIED_ELSEWHERE]
    wrong: list[str] = []
    table: dict[str, str] = {}
    for access, where, expected in cases:
        allowed, reason = review(cluster.kube, namespace, where, access)
        label = describe(access, "its namespace" if where == namespace else where)
        table[label] = "yes" if allowed else "no"
        if allowed != expected:
            wrong.append(
                f"{label}: {'allowed' if allowed else 'denied'} ({reason or 'no reason given'}), "
                f"expected {'allowed' if expected else 'denied'}"
            )
    figures.update(user=user(namespace), can_i=table)
    assert not wrong, (
        f"{len(wrong)} of {len(cases)} access checks for {user(namespace)} are wrong: "
        + "; ".join(wrong)
    )


# With a real token of the ServiceAccount.


def api_client(cluster: Cluster, token: str) -> httpx.Client:
    """An HTTP client to the API server that authenticates with `token` only (the cluster's CA
    from the kubeconfig; none of the kubeconfig's own credentials)."""
    configuration = client_configuration(cluster.access.kubeconfig, cluster.access.context)
    verify: ssl.SSLContext | bool = False
    if configuration.verify_ssl:
        verify = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    return httpx.Client(
        base_url=configuration.host,
        verify=verify,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
        trust_env=False,
    )


@pytest.fixture
def as_frontend(cluster: Cluster, frontend_rbac: str) -> Iterator[httpx.Client]:
    """An API client holding a fresh 10-minute token of the frontend's ServiceAccount."""
    answer = cluster.kube.request(
        "POST",
        f"/api/v1/namespaces/{frontend_rbac}/serviceaccounts/{SERVICE_ACCOUNT}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_LIFETIME_S},
        },
    )
    with api_client(cluster, str(answer["status"]["token"])) as http:
        yield http


def rules_of(review_status: dict[str, Any]) -> tuple[set[tuple[str, str, str, str]], list[Any]]:
    """Expand SelfSubjectRulesReview resource rules into (group, resource, name, verb), leaving
    out the self-review rules; also return those rules that use a wildcard."""
    expanded: set[tuple[str, str, str, str]] = set()
    wildcards: list[Any] = []
    for rule in review_status.get("resourceRules") or []:
        resources = set(rule.get("resources") or [])
        if resources <= SELF_REVIEWS and set(rule.get("verbs") or []) <= {"create"}:
            continue
        if any("*" in rule.get(key) or [] for key in ("verbs", "apiGroups", "resources")):
            wildcards.append(rule)
        for group in rule.get("apiGroups") or [""]:
            for resource in resources:
                for name in rule.get("resourceNames") or [""]:
                    for verb in rule.get("verbs") or []:
                        expanded.add((group, resource, name, verb))
    return expanded, wildcards


def test_a_token_of_the_frontend_service_account_gets_exactly_its_rules(
    as_frontend: httpx.Client, frontend_rbac: str, figures: dict[str, Any]
) -> None:
    """SelfSubjectRulesReview with the ServiceAccount's own token lists our three rules and
    nothing else (besides asking what it may do)."""
    response = as_frontend.post(
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": frontend_rbac},
        },
    )
    assert response.status_code == 201, (
        f"SelfSubjectRulesReview answered {response.status_code}: {response.text[:300]}"
    )
    status = response.json().get("status") or {}
    rules, wildcards = rules_of(status)
    figures.update(rules=sorted("/".join(r) for r in rules))
    assert not wildcards, f"rules with a wildcard: {wildcards}"
    assert rules == EXPECTED_RULES, (
        f"the token's rules in {frontend_rbac} differ from what the page needs: "
        f"extra {sorted(rules - EXPECTED_RULES)}, missing {sorted(EXPECTED_RULES - rules)}"
        + (
            " (the review is incomplete: " + str(status.get("evaluationError")) + ")"
            if status.get("incomplete")
            else ""
        )
    )


def test_a_token_of_the_frontend_service_account_is_refused_everything_else(
    as_frontend: httpx.Client, frontend_rbac: str, figures: dict[str, Any]
) -> None:
    """Real requests with the token: reading pods and the cpuhog HPA by name work, incver may be
    read and patched (404: it is not deployed here, which the API says only to the authorized);
    secrets, other namespaces, other Deployments, listing HPAs and deleting pods get 403."""
    ns = frontend_rbac
    hpas = f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers"
    incver = f"/apis/apps/v1/namespaces/{ns}/deployments/incver"
    patch = {"headers": {"Content-Type": "application/merge-patch+json"}, "content": b"{}"}
    dry_run = {"dryRun": "All"}
    cases: list[tuple[str, str, dict[str, Any], set[int]]] = [
        ("GET", f"/api/v1/namespaces/{ns}/pods", {}, {200}),
        (
            "GET",
            f"/api/v1/namespaces/{ns}/pods",
            {"params": {"watch": "1", "timeoutSeconds": "1"}},
            {200},
        ),
        ("GET", hpas, {"params": {"fieldSelector": "metadata.name=cpuhog"}}, {200}),
        ("GET", f"{hpas}/cpuhog", {}, {404}),
        ("GET", incver, {}, {404}),
        ("PATCH", incver, {**patch, "params": dry_run}, {404}),
        ("GET", hpas, {}, {403}),
        ("GET", f"/api/v1/namespaces/{ns}/secrets", {}, {403}),
        ("GET", f"/api/v1/namespaces/{OTHER_NAMESPACE}/pods", {}, {403}),
        ("GET", f"/apis/apps/v1/namespaces/{ns}/deployments", {}, {403}),
        ("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/getip", {}, {403}),
        (
            "PATCH",
            f"/apis/apps/v1/namespaces/{ns}/deployments/getip",
            {**patch, "params": dry_run},
            {403},
        ),
        ("DELETE", f"/api/v1/namespaces/{ns}/pods/any-pod", {"params": dry_run}, {403}),
        ("GET", "/api/v1/nodes", {}, {403}),
    ]
    wrong = []
    seen: dict[str, int] = {}
    for method, path, options, expected in cases:
        response = as_frontend.request(method, path, **options)
        query = (
            "?" + "&".join(f"{k}={v}" for k, v in options.get("params", {}).items())
            if options.get("params")
            else ""
        )
        label = f"{method} {path}{query}"
        seen[label] = response.status_code
        if response.status_code not in expected:
            wrong.append(
                f"{label}: {response.status_code}, expected {sorted(expected)} "
                f"({response.text[:160]})"
            )
    figures.update(requests_as_frontend=seen)
    assert not wrong, (
        f"{len(wrong)} of {len(cases)} requests with the frontend's token were answered wrongly: "
        + "; ".join(wrong)
    )

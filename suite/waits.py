"""Waits for Kubernetes objects, on the one wait engine (`suite.waiting`): pods Ready, a Deployment
rolled out, an HPA synced, an APIService available, a namespace's default ServiceAccount, labelled
namespaces gone. Each names what it saw, the last event and where to look when it runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from localcluster.util import Deadline as Deadline  # the one deadline class, shared
from suite.kube import (
    APISERVICES,
    DEPLOYMENTS,
    HPAS,
    JSON,
    NAMESPACES,
    PODS,
    SERVICEACCOUNTS,
    Kube,
    condition,
    container_statuses,
    get_object,
    is_pod_ready,
    is_terminating,
    name_of,
    selector_string,
)
from suite.waiting import (
    IMAGE_FAILURES,
    START_FAILURES,
    Done,
    Failed,
    Pending,
    Source,
    State,
    Verdict,
    wait_until,
)


def pod_failure(pod: Mapping[str, Any], image_hint: str = "") -> str | None:
    """Why a pod will not become ready by itself (image cannot be pulled, container keeps
    crashing, bad config), or None."""
    name = name_of(pod)
    statuses = list((pod.get("status") or {}).get("initContainerStatuses") or [])
    statuses += list(container_statuses(pod))
    for status in statuses:
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        detail = " ".join(str(waiting.get("message") or "").split())[:200]
        if reason in IMAGE_FAILURES:
            text = f"pod/{name}: {reason} for image {status.get('image')!r}"
            if detail:
                text += f" ({detail})"
            return f"{text}; {image_hint}" if image_hint else text
        if reason in START_FAILURES:
            last = ((status.get("lastState") or {}).get("terminated")) or {}
            text = f"pod/{name} container {status.get('name')}: {reason}"
            if last:
                text += f" (last exit code {last.get('exitCode')}, {last.get('reason')})"
            if detail:
                text += f": {detail}"
            return text
    return None


def deployment_verdict(
    deployment: Mapping[str, Any] | None,
    pods: Iterable[Mapping[str, Any]],
    *,
    image_hint: str = "",
) -> Verdict:
    """Is the deployment fully rolled out and ready (what `kubectl rollout status` waits for,
    plus every replica Ready), can it no longer get there, or how far is it?"""
    if deployment is None:
        return Pending("not found")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)

    live_pods = [pod for pod in pods if not is_terminating(pod)]
    for pod in live_pods:
        problem = pod_failure(pod, image_hint)
        if problem:
            return Failed(f"{ready}/{desired} ready; {problem}")
    replica_failure = condition(deployment, "ReplicaFailure")
    if replica_failure and replica_failure.get("status") == "True":
        return Failed(f"{ready}/{desired} ready; ReplicaFailure: {replica_failure.get('message')}")
    progressing = condition(deployment, "Progressing")
    if (
        progressing
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    ):
        return Failed(
            f"{ready}/{desired} ready; ProgressDeadlineExceeded: {progressing.get('message')}"
        )

    if (
        observed >= generation
        and updated == desired
        and total == desired
        and available == desired
        and ready == desired
    ):
        return Done(dict(deployment))
    seen = f"{ready}/{desired} ready"
    if updated != desired or total != desired:
        seen += f", {updated}/{desired} updated, {total} replicas"
    if observed < generation:
        seen += (
            f", generation {generation} not yet observed by the deployment controller (at "
            f"{observed}): is kube-controller-manager running?"
        )
    unscheduled = [name_of(pod) for pod in live_pods if not (pod.get("spec") or {}).get("nodeName")]
    if unscheduled:
        seen += f", {len(unscheduled)} pod(s) not scheduled on a node (is kube-scheduler running?)"
    return Pending(seen)


def wait_deployment_ready(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    timeout_s: float,
    image_hint: str = "",
    hint: str = "",
) -> JSON:
    """Wait until deployment/`name` is rolled out with every replica Ready; fail early on image
    pull errors, crash loops and ReplicaSet failures (e.g. Pod Security rejections)."""
    deployment = get_object(kube, DEPLOYMENTS, namespace, name)
    match_labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    sources = [
        Source("deployment", DEPLOYMENTS, namespace, field_selector=f"metadata.name={name}"),
        Source("pods", PODS, namespace, label_selector=selector_string(match_labels)),
    ]

    def check(state: State) -> Verdict:
        return deployment_verdict(
            state["deployment"].get(name), state["pods"].values(), image_hint=image_hint
        )

    result: JSON = wait_until(
        kube,
        sources,
        check,
        timeout_s=timeout_s,
        what=f"deployment/{name}",
        where=namespace,
        expected="every replica updated and Ready",
        hint=hint or f"kubectl -n {namespace} describe deployment/{name}",
        events_namespace=namespace,
    )
    return result


def wait_pod(
    kube: Kube,
    namespace: str,
    name: str,
    check: Callable[[JSON], Verdict],
    *,
    timeout_s: float,
    expected: str,
    hint: str = "",
) -> JSON:
    """Wait for one pod to reach a state; its deletion is a failure."""

    def verdict(state: State) -> Verdict:
        pod = state["pod"].get(name)
        if pod is None:
            return Failed("the pod is gone")
        return check(pod)

    result: JSON = wait_until(
        kube,
        [Source("pod", PODS, namespace, field_selector=f"metadata.name={name}")],
        verdict,
        timeout_s=timeout_s,
        what=f"pod/{name}",
        where=namespace,
        expected=expected,
        hint=hint or f"kubectl -n {namespace} describe pod/{name}",
        events_namespace=namespace,
        related_event=lambda event: (event.get("involvedObject") or {}).get("name") == name,
    )
    return result


def wait_pods(
    kube: Kube,
    namespace: str,
    label_selector: str,
    check: Callable[[list[JSON]], Verdict],
    *,
    timeout_s: float,
    what: str,
    expected: str,
    hint: str = "",
) -> Any:
    """Wait for the set of pods matching a selector to reach a state."""
    return wait_until(
        kube,
        [Source("pods", PODS, namespace, label_selector=label_selector)],
        lambda state: check(sorted(state["pods"].values(), key=name_of)),
        timeout_s=timeout_s,
        what=what,
        where=namespace,
        expected=expected,
        hint=hint or f"kubectl -n {namespace} get pods -l {label_selector}",
        events_namespace=namespace,
    )


def wait_hpa(
    kube: Kube,
    namespace: str,
    name: str,
    check: Callable[[JSON], Verdict],
    *,
    timeout_s: float,
    expected: str,
    hint: str = "",
) -> JSON:
    """Wait for a HorizontalPodAutoscaler's status to reach a state."""

    def verdict(state: State) -> Verdict:
        hpa = state["hpa"].get(name)
        return Pending("not found") if hpa is None else check(hpa)

    result: JSON = wait_until(
        kube,
        [Source("hpa", HPAS, namespace, field_selector=f"metadata.name={name}")],
        verdict,
        timeout_s=timeout_s,
        what=f"horizontalpodautoscaler/{name}",
        where=namespace,
        expected=expected,
        hint=hint or f"kubectl -n {namespace} describe hpa/{name}",
        events_namespace=namespace,
    )
    return result


def pod_ready_verdict(pod: Mapping[str, Any]) -> Verdict:
    """Done when the pod is Ready and not terminating."""
    if is_terminating(pod):
        return Failed("the pod is terminating")
    if is_pod_ready(pod):
        return Done(dict(pod))
    phase = (pod.get("status") or {}).get("phase", "?")
    return Pending(f"{phase}, not Ready")


def wait_apiservice_available(kube: Kube, name: str, *, timeout_s: float, hint: str = "") -> JSON:
    """Wait for an aggregated API (e.g. v1beta1.metrics.k8s.io) to report Available=True."""

    def verdict(state: State) -> Verdict:
        service = state["apiservice"].get(name)
        if service is None:
            return Pending("not registered")
        available = condition(service, "Available")
        if available and available.get("status") == "True":
            return Done(dict(service))
        if available:
            return Pending(f"Available={available.get('status')} ({available.get('reason')})")
        return Pending("no Available condition yet")

    result: JSON = wait_until(
        kube,
        [Source("apiservice", APISERVICES, None, field_selector=f"metadata.name={name}")],
        verdict,
        timeout_s=timeout_s,
        what=f"apiservice/{name}",
        where="the cluster",
        expected="Available=True",
        hint=hint or f"kubectl get apiservice {name} -o yaml",
    )
    return result


def wait_default_service_account(kube: Kube, namespace: str, *, timeout_s: float) -> JSON:
    """Wait until serviceaccount/default exists in `namespace`: until then no pod can be created
    there (the ServiceAccount admission rejects it), and a ReplicaSet reports ReplicaFailure."""

    def verdict(state: State) -> Verdict:
        account = state["serviceaccount"].get("default")
        return Done(dict(account)) if account is not None else Pending("not created yet")

    result: JSON = wait_until(
        kube,
        [
            Source(
                "serviceaccount", SERVICEACCOUNTS, namespace, field_selector="metadata.name=default"
            )
        ],
        verdict,
        timeout_s=timeout_s,
        what="serviceaccount/default",
        where=namespace,
        expected="created by kube-controller-manager's ServiceAccount controller",
        hint="is kube-controller-manager running and connected to the API server?",
    )
    return result


def wait_namespaces_gone(kube: Kube, label_selector: str, *, timeout_s: float) -> None:
    """Wait until no namespace matches `label_selector` (deletion finished)."""

    def verdict(state: State) -> Verdict:
        left = sorted(state["namespaces"])
        return Done() if not left else Pending(f"{len(left)} left: {', '.join(left[:5])}")

    wait_until(
        kube,
        [Source("namespaces", NAMESPACES, None, label_selector=label_selector)],
        verdict,
        timeout_s=timeout_s,
        what=f"namespaces -l {label_selector}",
        where="the cluster",
        expected="none left",
        hint=f"kubectl get namespaces -l {label_selector}",
    )

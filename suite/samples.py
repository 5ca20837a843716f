"""What the recorder keeps of each object it watches: a pod as a `PodView` (phase, Ready,
terminating, containers and their restarts), and small JSON samples of Deployments, ReplicaSets,
HPAs, EndpointSlices and Events. Pure functions of one object, unit-tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from suite.kube import JSON, container_statuses, is_pod_ready, is_terminating, labels_of, name_of


@dataclass(frozen=True)
class ContainerView:
    """What matters about one container at one moment."""

    name: str
    state: str  # waiting | running | terminated | unknown
    reason: str = ""
    exit_code: int | None = None
    ready: bool = False
    restart_count: int = 0
    last_reason: str = ""
    last_exit_code: int | None = None
    image: str = ""
    #: When the current run started (running or terminated) and ended (terminated), and the last
    #: terminated run's, as the kubelet reports them (RFC 3339, whole seconds): a restart's delay
    #: is the one run's end to the next one's start.
    started_at: str = ""
    finished_at: str = ""
    last_started_at: str = ""
    last_finished_at: str = ""


@dataclass(frozen=True)
class PodView:
    """What matters about one pod at one moment (compared to decide whether it changed)."""

    name: str
    phase: str
    ready: bool
    terminating: bool
    labels: tuple[tuple[str, str], ...] = ()
    node: str = ""
    ip: str = ""
    owner: str = ""
    containers: tuple[ContainerView, ...] = ()

    @property
    def status(self) -> str:
        """One word for the timeline: Terminating, Ready, or the phase (Pending, Running, ...)."""
        if self.terminating:
            return "Terminating"
        if self.ready:
            return "Ready"
        return self.phase or "Unknown"

    @property
    def restarts(self) -> int:
        """Sum of the containers' restartCount."""
        return sum(container.restart_count for container in self.containers)

    @property
    def image(self) -> str:
        """The first container's image."""
        return self.containers[0].image if self.containers else ""

    def label_map(self) -> dict[str, str]:
        """Labels as a dict."""
        return dict(self.labels)

    def to_dict(self) -> JSON:
        """JSON-serialisable form (labels left out: they do not change and are long)."""
        data = asdict(self)
        data.pop("labels")
        data["status"] = self.status
        data["restarts"] = self.restarts
        return data


def _container_view(status: Mapping[str, Any], images: Mapping[str, str]) -> ContainerView:
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    name = str(status.get("name", ""))
    kind, detail = "unknown", {}
    for candidate in ("running", "waiting", "terminated"):
        if candidate in state and state[candidate] is not None:
            kind, detail = candidate, state[candidate]
            break
    exit_code = detail.get("exitCode") if kind == "terminated" else None
    return ContainerView(
        name=name,
        state=kind,
        reason=str(detail.get("reason") or ""),
        exit_code=int(exit_code) if exit_code is not None else None,
        ready=bool(status.get("ready")),
        restart_count=int(status.get("restartCount") or 0),
        last_reason=str(last.get("reason") or ""),
        last_exit_code=int(last["exitCode"]) if last.get("exitCode") is not None else None,
        image=images.get(name) or str(status.get("image") or ""),
        started_at=str(detail.get("startedAt") or "") if kind != "waiting" else "",
        finished_at=str(detail.get("finishedAt") or "") if kind == "terminated" else "",
        last_started_at=str(last.get("startedAt") or ""),
        last_finished_at=str(last.get("finishedAt") or ""),
    )


def pod_view(pod: Mapping[str, Any]) -> PodView:
    """Derive the recorded view of a pod from its API object."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    images = {str(c.get("name")): str(c.get("image", "")) for c in spec.get("containers") or []}
    statuses = {str(s.get("name")): s for s in container_statuses(pod)}
    containers = []
    for container in spec.get("containers") or []:
        name = str(container.get("name"))
        if name in statuses:
            containers.append(_container_view(statuses[name], images))
        else:
            containers.append(ContainerView(name=name, state="unknown", image=images[name]))
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    return PodView(
        name=name_of(pod),
        phase=str(status.get("phase") or ""),
        ready=is_pod_ready(pod),
        terminating=is_terminating(pod),
        labels=tuple(sorted(labels_of(pod).items())),
        node=str(spec.get("nodeName") or ""),
        ip=str(status.get("podIP") or ""),
        owner=str(owners[0].get("name", "")) if owners else "",
        containers=tuple(containers),
    )


def deployment_sample(obj: Mapping[str, Any]) -> JSON:
    """The recorded figures of a Deployment."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return {
        "name": name_of(obj),
        "generation": int((obj.get("metadata") or {}).get("generation") or 0),
        "observed_generation": int(status.get("observedGeneration") or 0),
        "spec_replicas": int(spec.get("replicas", 1)),
        "replicas": int(status.get("replicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "unavailable": int(status.get("unavailableReplicas") or 0),
        "image": str(containers[0].get("image", "")) if containers else "",
        # Progressing and Available as "status/reason" (a failed rollout's ProgressDeadlineExceeded
        # is Progressing "False/ProgressDeadlineExceeded").
        "conditions": {
            str(entry.get("type")): f"{entry.get('status')}/{entry.get('reason', '')}"
            for entry in status.get("conditions") or []
        },
    }


def replicaset_sample(obj: Mapping[str, Any]) -> JSON:
    """The recorded figures of a ReplicaSet."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {
        "name": name_of(obj),
        "revision": str(annotations.get("deployment.kubernetes.io/revision", "")),
        "spec_replicas": int(spec.get("replicas") or 0),
        "replicas": int(status.get("replicas") or 0),
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "image": str(containers[0].get("image", "")) if containers else "",
    }


def hpa_sample(obj: Mapping[str, Any]) -> JSON:
    """The recorded figures of an autoscaling/v2 HorizontalPodAutoscaler: replicas and CPU."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    current_cpu = None
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            current_cpu = (resource.get("current") or {}).get("averageUtilization")
    target_cpu = None
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target_cpu = (resource.get("target") or {}).get("averageUtilization")
    conditions = {
        str(entry.get("type")): f"{entry.get('status')}/{entry.get('reason', '')}"
        for entry in status.get("conditions") or []
    }
    return {
        "name": name_of(obj),
        "min_replicas": int(spec.get("minReplicas") or 1),
        "max_replicas": int(spec.get("maxReplicas") or 0),
        "current_replicas": int(status.get("currentReplicas") or 0),
        "desired_replicas": int(status.get("desiredReplicas") or 0),
        "cpu_utilization": int(current_cpu) if current_cpu is not None else None,
        "target_utilization": int(target_cpu) if target_cpu is not None else None,
        "last_scale_time": status.get("lastScaleTime"),
        # Whether a controller ever wrote the status: the HPA controller sets no
        # observedGeneration in v1.34, but a later one (or another autoscaler) may.
        "observed_generation": status.get("observedGeneration"),
        "conditions": conditions,
    }


def endpointslice_sample(obj: Mapping[str, Any]) -> JSON:
    """The recorded figures of a discovery.k8s.io/v1 EndpointSlice: its Service and, per
    endpoint, the pod it stands for and its conditions (a missing `ready` counts as ready, as
    the API says consumers should read it)."""
    labels = labels_of(obj)
    endpoints = []
    for endpoint in obj.get("endpoints") or []:
        target = endpoint.get("targetRef") or {}
        conditions = endpoint.get("conditions") or {}
        endpoints.append(
            {
                "pod": str(target.get("name") or "") if target.get("kind") == "Pod" else "",
                "addresses": [str(address) for address in endpoint.get("addresses") or []],
                "ready": conditions.get("ready") is not False,
                "serving": conditions.get("serving") is not False,
                "terminating": conditions.get("terminating") is True,
            }
        )
    endpoints.sort(key=lambda entry: (entry["pod"], entry["addresses"]))
    return {
        "name": name_of(obj),
        "service": labels.get("kubernetes.io/service-name", ""),
        "endpoints": endpoints,
    }


def node_sample(obj: Mapping[str, Any]) -> JSON:
    """The recorded figures of a Node: its Ready condition (status/reason), whether it is
    cordoned, and its taints as `key:effect` with, where the API stamps it (NoExecute), when each
    was added."""
    spec = obj.get("spec") or {}
    ready: Mapping[str, Any] = next(
        (
            entry
            for entry in (obj.get("status") or {}).get("conditions") or []
            if entry.get("type") == "Ready"
        ),
        {},
    )
    taints = sorted(
        (f"{entry.get('key')}:{entry.get('effect')}", str(entry.get("timeAdded") or ""))
        for entry in spec.get("taints") or []
    )
    return {
        "name": name_of(obj),
        "ready": f"{ready.get('status', 'Unknown')}/{ready.get('reason', '')}",
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": [taint for taint, _ in taints],
        "taints_added": {taint: added for taint, added in taints if added},
    }


def event_sample(obj: Mapping[str, Any]) -> JSON:
    """The recorded figures of an Event (core/v1)."""
    involved = obj.get("involvedObject") or {}
    return {
        "type": str(obj.get("type") or ""),
        "reason": str(obj.get("reason") or ""),
        "object": f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        "message": " ".join(str(obj.get("message") or "").split()),
        "count": int(obj.get("count") or 1),
        "first_timestamp": obj.get("firstTimestamp") or obj.get("eventTime"),
        "last_timestamp": obj.get("lastTimestamp") or obj.get("eventTime"),
    }

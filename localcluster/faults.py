"""Named faults the local cluster switches to and back from, to prove the scenarios catch them, and
named healthy variants of it, to prove the scenarios do not cry wolf.

A fault breaks one part of the cluster the way it breaks in real life: a component stopped, or
restarted with one setting changed, or an admission policy that rewrites what the suite submits
(a MutatingAdmissionPolicy, as a cluster's own policy or webhook would). A variant changes a
setting to another valid value (a slower controller clock, another dataplane mode): every
scenario must still pass under it.

`apply` records the change in `<state>/run/fault.json` BEFORE it touches anything, so a run that
crashes half-way still leaves a record that `clear` (and `up --restore`, which calls it) acts on:
`python -m localcluster up --restore` always brings back the normal cluster. A plain `up` leaves
an applied change alone and fails naming it (localcluster.api.up). Only one change (fault or
variant) is applied at a time.

While a change is applied, `/tmp/kube-alive-fault.lock` (override: KUBE_ALIVE_FAULT_LOCK) holds
its name (a variant's prefixed with "variant "), so other people and tools sharing the cluster can
see it is changed on purpose.

There is deliberately no "kubelet probes ignore failures" fault: the kubelet has no switch for
that, and faking it (dropping probe traffic) would make probes fail, the opposite of the fault.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from localcluster import build, components, config, processes
from localcluster.util import ClusterError, Log, poll, run

#: kube-proxy's minSyncPeriod under `service-routing-late`: endpoint changes reach the node's
#: rules up to this late (the healthy setting is the 1 s default).
LATE_SYNC_S = 20
#: How long a stopped metrics-server takes to show as a missing metrics API: the aggregator
#: fails the first request to an endpoint that refuses connections.
METRICS_GONE_S = 30.0

#: The labels every namespace the suite tests in carries (suite/naming.py PART_OF_LABEL, PART_OF):
#: the admission faults' policies act there only, never on the cluster's own objects.
SUITE_NAMESPACE_LABEL = ("app.kubernetes.io/part-of", "kube-alive")
#: Which app an object belongs to (every manifest and the pods of its Deployment carry it).
APP_LABEL = "app.kubernetes.io/name"
#: On every object a change creates through the API, so `clear` finds them all by label.
CHANGE_LABEL = "kube-alive/localcluster-change"
#: A namespace labelled like the suite's own, where a dry-run create shows an admission fault
#: acting before the matrix runs scenarios. It holds nothing and goes with the fault.
CHECK_NAMESPACE = "kube-alive-admission-check"
#: MutatingAdmissionPolicy: beta in Kubernetes v1.34, served behind its feature gate and this
#: API version (both enabled on the local cluster's kube-apiserver, localcluster/components.py).
ADMISSION_API = "admissionregistration.k8s.io/v1beta1"
ADMISSION_RESOURCES = (
    "mutatingadmissionpolicybindings.v1beta1.admissionregistration.k8s.io",
    "mutatingadmissionpolicies.v1beta1.admissionregistration.k8s.io",
)
#: A new policy and binding act once the API server's informers have them and the policy's CEL
#: is compiled: about a second here; 30 s for a busy machine.
POLICY_ACTS_S = 30.0
#: The image a dry-run pod names (never pulled: a dry run creates nothing).
CHECK_IMAGE = "localhost/kube-alive/workloads:v1"

#: Values the admission faults write. Each is valid (the API server admits the rewritten object),
#: and each is one a scenario depends on, so only reading the admitted objects back catches it.
SLOWED_LIVENESS_PERIOD_S = 10
CHANGED_CPU_REQUEST = "200m"  # cpuhog submits 100m with a 250m limit: still within the limit
RAISED_MEMORY_LIMIT = "1Gi"  # memhog submits 96Mi and allocates 512 MiB: no OOM under 1Gi

#: The variants' settings: valid, and different from this cluster's normal ones
#: (config.HPA_SYNC_S, config.METRICS_RESOLUTION_S, kube-proxy's iptables defaults).
HPA_SYNC_VARIANT = "15s"  # kube-controller-manager's upstream default
METRICS_RESOLUTION_VARIANT_S = 30
PROXY_SYNC_VARIANT = {"syncPeriod": "10s", "minSyncPeriod": "0s"}


class FaultNotApplicable(ClusterError):
    """The change cannot be applied on this machine or in this state (reported as not run)."""


@dataclass(frozen=True)
class Admission:
    """A MutatingAdmissionPolicy (JSON patch by CEL) and its binding, acting on objects of one app
    in the suite's namespaces, and how a dry-run create shows it acting."""

    #: "pods" or "services" (core API group, CREATE only).
    resource: str
    #: Objects labelled app.kubernetes.io/name=<app>.
    app: str
    #: CEL: the field the patch changes is there (else the object is left alone).
    condition: str
    #: CEL: the list of JSONPatch operations.
    patch: str
    #: An object like the suite's, created with --dry-run=server in CHECK_NAMESPACE.
    sample: Mapping[str, Any]
    #: None when the dry-run answer shows the mutation, else what it shows.
    seen: Callable[[Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Change:
    """One change of the cluster: which component, and how."""

    name: str
    component: str
    #: How the change is made.
    how: str
    #: None (and no admission): the component is stopped. Else: its argv under the change.
    argv: Callable[[config.Paths, list[str]], list[str]] | None = None
    #: Extra work after stopping (e.g. flushing kube-proxy's rules).
    after_stop: Callable[[config.Paths], None] | None = None
    #: Returns None once the change shows, else what is seen (polled after applying).
    shows: Callable[[config.Paths], str | None] | None = None
    shows_within_s: float = 30.0
    #: Made through the API (an admission policy), not by touching a process.
    admission: Admission | None = None
    #: The component's readiness deadline under the change (default: its normal one).
    ready_within_s: float | None = None
    kind: ClassVar[str] = "change"

    @property
    def stops(self) -> bool:
        """True when the change leaves its component stopped."""
        return bool(self.component) and self.argv is None and self.admission is None


@dataclass(frozen=True)
class Fault(Change):
    """One way to break the cluster."""

    #: What is broken, in the words a failure message should use.
    broken: str = ""
    kind: ClassVar[str] = "fault"


@dataclass(frozen=True)
class Variant(Change):
    """A healthy cluster configured otherwise: every scenario must pass under it."""

    #: Why this is a valid, working cluster.
    valid: str = ""
    kind: ClassVar[str] = "variant"


def _flush_proxy_rules(paths: config.Paths) -> None:
    run([str(build.binary(paths, "kube-proxy")), "--cleanup"], check=False, timeout=60)


def _proxy_rules_gone(paths: config.Paths) -> str | None:
    del paths
    nat = run(["iptables-save", "-t", "nat"], check=False).stdout
    return "KUBE-SERVICES still in the nat table" if ":KUBE-SERVICES" in nat else None


def _proxy_config(
    suffix: str, changes: Mapping[str, Any]
) -> Callable[[config.Paths, list[str]], list[str]]:
    """kube-proxy's argv with its config file replaced by a copy with `changes` merged in."""

    def argv(paths: config.Paths, normal: list[str]) -> list[str]:
        cfg = paths.state / "config"
        settings = yaml.safe_load((cfg / "kube-proxy.yaml").read_text())
        settings.update(changes)
        changed = cfg / f"kube-proxy-{suffix}.yaml"
        changed.write_text(yaml.safe_dump(settings))
        return [f"--config={changed}" if arg.startswith("--config=") else arg for arg in normal]

    return argv


def _without_controller(controller: str) -> Callable[[config.Paths, list[str]], list[str]]:
    def argv(paths: config.Paths, normal: list[str]) -> list[str]:
        del paths
        return [*normal, f"--controllers=*,-{controller}"]

    return argv


def _with_flag(flag: str, value: str) -> Callable[[config.Paths, list[str]], list[str]]:
    """The argv with `flag` set to `value` (replacing the normal value, appended if absent)."""

    def argv(paths: config.Paths, normal: list[str]) -> list[str]:
        del paths
        kept = [arg for arg in normal if arg != flag and not arg.startswith(f"{flag}=")]
        return [*kept, f"{flag}={value}"]

    return argv


def _metrics_api_gone(paths: config.Paths) -> str | None:
    ready = components.metrics_ready(paths)
    return "the metrics API still answers" if ready is None else None


def _nftables_in_use(paths: config.Paths) -> str | None:
    """None once kube-proxy's nftables table holds its services map and the iptables rules it
    wrote in iptables mode are gone (so traffic really takes the nftables path)."""
    stale = _proxy_rules_gone(paths)
    if stale is not None:
        return f"{stale} (kube-proxy has not cleaned up its iptables mode)"
    services = run(["nft", "list", "map", "ip", "kube-proxy", "service-ips"], check=False)
    if services.returncode != 0:
        return f"no nftables map ip kube-proxy service-ips: {services.stderr.strip()[:200]}"
    # Its first sync fills the map (the API server's own Service is always there).
    return None if "elements" in services.stdout else "kube-proxy's service-ips map is empty"


def _iptables_rules_back(paths: config.Paths) -> str | None:
    """None once kube-proxy in iptables mode wrote its rules: its /healthz answers before its
    first sync, so a Service would not route for a moment after it looks ready."""
    return None if _proxy_rules_gone(paths) else "no KUBE-SERVICES chain in the nat table yet"


def _container(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = (obj.get("spec") or {}).get("containers") or [{}]
    return dict(containers[0])


def _sample_pod(app: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{app}-admission-check-",
            "labels": {APP_LABEL: app, SUITE_NAMESPACE_LABEL[0]: SUITE_NAMESPACE_LABEL[1]},
        },
        "spec": {"containers": [{"name": app, "image": CHECK_IMAGE, "args": [app], **container}]},
    }


def _probe(path: str, period_s: int, threshold: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": 8080},
        "periodSeconds": period_s,
        "failureThreshold": threshold,
    }


def _liveness_period_slowed(obj: Mapping[str, Any]) -> str | None:
    period = (_container(obj).get("livenessProbe") or {}).get("periodSeconds")
    if period == SLOWED_LIVENESS_PERIOD_S:
        return None
    return f"a dry-run healthcheck pod was admitted with livenessProbe.periodSeconds {period}"


def _readiness_stripped(obj: Mapping[str, Any]) -> str | None:
    probe = _container(obj).get("readinessProbe")
    return None if probe is None else f"a dry-run incver pod kept its readinessProbe {probe}"


def _cpu_request_changed(obj: Mapping[str, Any]) -> str | None:
    cpu = ((_container(obj).get("resources") or {}).get("requests") or {}).get("cpu")
    if cpu == CHANGED_CPU_REQUEST:
        return None
    return f"a dry-run cpuhog pod was admitted with a cpu request of {cpu}"


def _memory_limit_raised(obj: Mapping[str, Any]) -> str | None:
    memory = ((_container(obj).get("resources") or {}).get("limits") or {}).get("memory")
    if memory == RAISED_MEMORY_LIMIT:
        return None
    return f"a dry-run memhog pod was admitted with a memory limit of {memory}"


def _session_affinity(obj: Mapping[str, Any]) -> str | None:
    affinity = (obj.get("spec") or {}).get("sessionAffinity")
    if affinity == "ClientIP":
        return None
    return f"a dry-run getip Service was admitted with sessionAffinity {affinity}"


def policy_objects(name: str, admission: Admission) -> list[dict[str, Any]]:
    """The MutatingAdmissionPolicy and its binding that make the admission change `name`."""
    labels = {CHANGE_LABEL: name}
    policy = f"kube-alive-{name}"
    key, value = SUITE_NAMESPACE_LABEL
    return [
        {
            "apiVersion": ADMISSION_API,
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": policy, "labels": labels},
            "spec": {
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": [admission.resource],
                        }
                    ]
                },
                "matchConditions": [{"name": "field-present", "expression": admission.condition}],
                # A policy that cannot act leaves objects alone: the dry-run check then fails the
                # fault's application, instead of the scenarios failing for a rejected object.
                "failurePolicy": "Ignore",
                "reinvocationPolicy": "Never",
                "mutations": [
                    {"patchType": "JSONPatch", "jsonPatch": {"expression": admission.patch}}
                ],
            },
        },
        {
            "apiVersion": ADMISSION_API,
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": policy, "labels": labels},
            "spec": {
                "policyName": policy,
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {key: value}},
                    "objectSelector": {"matchLabels": {APP_LABEL: admission.app}},
                },
            },
        },
    ]


def _check_namespace() -> dict[str, Any]:
    key, value = SUITE_NAMESPACE_LABEL
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": CHECK_NAMESPACE, "labels": {key: value, CHANGE_LABEL: "check"}},
    }


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            name="service-routing-stopped",
            component="kube-proxy",
            broken="Service routing (kube-proxy)",
            how="kube-proxy stopped and its iptables rules flushed (kube-proxy --cleanup)",
            after_stop=_flush_proxy_rules,
            shows=_proxy_rules_gone,
        ),
        Fault(
            name="service-routing-late",
            component="kube-proxy",
            broken="Service routing that follows endpoint changes late (kube-proxy)",
            how=f"kube-proxy restarted with iptables.minSyncPeriod {LATE_SYNC_S}s (healthy: 1s)",
            argv=_proxy_config("late", {"iptables": {"minSyncPeriod": f"{LATE_SYNC_S}s"}}),
        ),
        Fault(
            name="hpa-controller-off",
            component="kube-controller-manager",
            broken="the HorizontalPodAutoscaler controller (kube-controller-manager)",
            how="kube-controller-manager restarted with "
            "--controllers=*,-horizontal-pod-autoscaler-controller",
            argv=_without_controller("horizontal-pod-autoscaler-controller"),
        ),
        Fault(
            name="endpointslice-controller-off",
            component="kube-controller-manager",
            broken="the EndpointSlice controller (kube-controller-manager)",
            how="kube-controller-manager restarted with --controllers=*,-endpointslice-controller",
            argv=_without_controller("endpointslice-controller"),
        ),
        Fault(
            name="cluster-dns-stopped",
            component="coredns",
            broken="cluster DNS (CoreDNS)",
            how="CoreDNS stopped (the kube-dns Service stays, with no server behind it)",
        ),
        Fault(
            name="deployment-controller-off",
            component="kube-controller-manager",
            broken="the Deployment controller (kube-controller-manager)",
            how="kube-controller-manager restarted with --controllers=*,-deployment-controller",
            argv=_without_controller("deployment-controller"),
        ),
        Fault(
            name="metrics-api-gone",
            component="metrics-server",
            broken="the resource metrics API (metrics-server)",
            how="metrics-server stopped (its APIService stays registered, unavailable)",
            shows=_metrics_api_gone,
            shows_within_s=METRICS_GONE_S,
        ),
        Fault(
            name="admission-probe-slowed",
            component="kube-apiserver",
            broken="the healthcheck pods' liveness probe, rewritten at admission",
            how="a MutatingAdmissionPolicy sets livenessProbe.periodSeconds "
            f"{SLOWED_LIVENESS_PERIOD_S} (submitted: 1) on healthcheck pods in the suite's "
            "namespaces",
            admission=Admission(
                resource="pods",
                app="healthcheck",
                condition="has(object.spec.containers[0].livenessProbe)",
                patch='[JSONPatch{op: "replace", '
                'path: "/spec/containers/0/livenessProbe/periodSeconds", '
                f"value: {SLOWED_LIVENESS_PERIOD_S}}}]",
                sample=_sample_pod("healthcheck", livenessProbe=_probe("/healthz", 1, 8)),
                seen=_liveness_period_slowed,
            ),
        ),
        Fault(
            name="admission-readiness-stripped",
            component="kube-apiserver",
            broken="the incver pods' readiness probe, removed at admission",
            how="a MutatingAdmissionPolicy removes the readinessProbe of incver pods in the "
            "suite's namespaces",
            admission=Admission(
                resource="pods",
                app="incver",
                condition="has(object.spec.containers[0].readinessProbe)",
                patch='[JSONPatch{op: "remove", path: "/spec/containers/0/readinessProbe"}]',
                sample=_sample_pod("incver", readinessProbe=_probe("/readyz", 1, 1)),
                seen=_readiness_stripped,
            ),
        ),
        Fault(
            name="admission-cpu-request-changed",
            component="kube-apiserver",
            broken="the cpuhog pods' CPU request, rewritten at admission",
            how=f"a MutatingAdmissionPolicy sets the cpu request {CHANGED_CPU_REQUEST} "
            "(submitted: 100m) on cpuhog pods in the suite's namespaces",
            admission=Admission(
                resource="pods",
                app="cpuhog",
                condition="has(object.spec.containers[0].resources.requests) && "
                "'cpu' in object.spec.containers[0].resources.requests",
                patch='[JSONPatch{op: "replace", '
                'path: "/spec/containers/0/resources/requests/cpu", '
                f'value: "{CHANGED_CPU_REQUEST}"}}]',
                sample=_sample_pod(
                    "cpuhog",
                    resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "250m"}},
                ),
                seen=_cpu_request_changed,
            ),
        ),
        Fault(
            name="admission-session-affinity",
            component="kube-apiserver",
            broken="the getip Service's session affinity, rewritten at admission",
            how="a MutatingAdmissionPolicy sets sessionAffinity ClientIP (submitted: None) on "
            "the getip Service in the suite's namespaces",
            admission=Admission(
                resource="services",
                app="getip",
                condition="!has(object.spec.sessionAffinity) || "
                "object.spec.sessionAffinity != 'ClientIP'",
                # The API server defaults sessionAffinityConfig (3 h) after the policy.
                patch='[JSONPatch{op: "add", path: "/spec/sessionAffinity", value: "ClientIP"}]',
                sample={
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "generateName": "getip-admission-check-",
                        "labels": {
                            APP_LABEL: "getip",
                            SUITE_NAMESPACE_LABEL[0]: SUITE_NAMESPACE_LABEL[1],
                        },
                    },
                    "spec": {
                        "selector": {APP_LABEL: "getip"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    },
                },
                seen=_session_affinity,
            ),
        ),
        Fault(
            name="admission-memory-limit-raised",
            component="kube-apiserver",
            broken="the memhog pods' memory limit, rewritten at admission",
            how=f"a MutatingAdmissionPolicy sets the memory limit {RAISED_MEMORY_LIMIT} "
            "(submitted: 96Mi) on memhog pods in the suite's namespaces",
            admission=Admission(
                resource="pods",
                app="memhog",
                condition="has(object.spec.containers[0].resources.limits) && "
                "'memory' in object.spec.containers[0].resources.limits",
                patch='[JSONPatch{op: "replace", '
                'path: "/spec/containers/0/resources/limits/memory", '
                f'value: "{RAISED_MEMORY_LIMIT}"}}]',
                sample=_sample_pod(
                    "memhog",
                    resources={
                        "requests": {"cpu": "50m", "memory": "96Mi"},
                        "limits": {"cpu": "500m", "memory": "96Mi"},
                    },
                ),
                seen=_memory_limit_raised,
            ),
        ),
    )
}

VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            name="hpa-sync-slow",
            component="kube-controller-manager",
            how="kube-controller-manager restarted with "
            f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_VARIANT} "
            f"(this cluster's normal: {config.HPA_SYNC_S}s)",
            valid="the upstream default sync period, which kind and kubeadm clusters run with",
            argv=_with_flag("--horizontal-pod-autoscaler-sync-period", HPA_SYNC_VARIANT),
        ),
        Variant(
            name="metrics-resolution-slow",
            component="metrics-server",
            how=f"metrics-server restarted with --metric-resolution="
            f"{METRICS_RESOLUTION_VARIANT_S}s (this cluster's normal: "
            f"{config.METRICS_RESOLUTION_S}s)",
            valid="metrics-server refreshes CPU readings half as often as its upstream "
            "manifests (15 s); the HPA still scales, later",
            argv=_with_flag("--metric-resolution", f"{METRICS_RESOLUTION_VARIANT_S}s"),
            # Two scrapes before the first CPU rate exists, as the normal readiness deadline.
            ready_within_s=2 * METRICS_RESOLUTION_VARIANT_S + 60,
        ),
        Variant(
            name="proxy-sync-period",
            component="kube-proxy",
            how="kube-proxy restarted with iptables.syncPeriod "
            f"{PROXY_SYNC_VARIANT['syncPeriod']} and minSyncPeriod "
            f"{PROXY_SYNC_VARIANT['minSyncPeriod']} (normal: 30s and 1s)",
            valid="a full resync three times as often, and every endpoint change applied at once "
            "(minSyncPeriod 0s was kube-proxy's default before v1.27)",
            argv=_proxy_config("sync", {"iptables": dict(PROXY_SYNC_VARIANT)}),
        ),
        Variant(
            name="kube-proxy-nftables",
            component="kube-proxy",
            how="kube-proxy restarted in nftables mode (normal: iptables); it removes its "
            "iptables rules as it starts, and its nftables table as it starts in iptables mode",
            valid="kube-proxy's nftables dataplane, GA since v1.33",
            argv=_proxy_config("nftables", {"mode": "nftables"}),
            shows=_nftables_in_use,
        ),
    )
}


def lock_path() -> Path:
    """The file that says a change is applied (other users of the cluster check it)."""
    return Path(os.environ.get("KUBE_ALIVE_FAULT_LOCK", "/tmp/kube-alive-fault.lock"))  # noqa: S108


def _marker(paths: config.Paths) -> Path:
    return paths.run / "fault.json"


def known() -> str:
    """One line listing the known faults."""
    return "known faults: " + ", ".join(FAULTS)


def known_variants() -> str:
    """One line listing the known variants."""
    return "known variants: " + ", ".join(VARIANTS)


def lookup(name: str) -> Fault:
    """The fault called `name`; an unknown name raises one line naming the known ones."""
    try:
        return FAULTS[name]
    except KeyError:
        raise ClusterError(f"unknown fault {name!r}; {known()}") from None


def lookup_variant(name: str) -> Variant:
    """The variant called `name`; an unknown name raises one line naming the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ClusterError(f"unknown variant {name!r}; {known_variants()}") from None


def _lookup_any(name: str) -> Change:
    found: Change | None = FAULTS.get(name) or VARIANTS.get(name)
    if found is None:
        raise ClusterError(f"unknown fault or variant {name!r}; {known()}; {known_variants()}")
    return found


def active(paths: config.Paths) -> Change | None:
    """The applied fault or variant, if any (an unreadable or unknown record counts as a fault
    of no component, so `clear` still removes it and any admission policy left behind)."""
    marker = _marker(paths)
    if not marker.exists():
        return None
    try:
        name = str(json.loads(marker.read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError):
        name = ""
    found: Change | None = FAULTS.get(name) or VARIANTS.get(name)
    return found or Fault(name or "unknown", "", "unknown", broken="an unrecorded fault")


def excused(paths: config.Paths) -> set[str]:
    """Components a healthy-check should not expect running: the one an applied fault stopped."""
    change = active(paths)
    return {change.component} if change is not None and change.stops else set()


#: A stopped process's listening sockets close a moment after its pid looks gone (the kernel
#: drops the process's memory, which `/proc/<pid>/exe` reads, before its files).
PORTS_FREE_S = 15.0


def _stop(paths: config.Paths, component: str) -> None:
    """Stop `component` and wait until its ports are free, so it (or `up`) can start again."""
    if not processes.stop(paths, component):
        return
    ports = [port for port, who in config.PORTS.items() if who.split(" ", 1)[0] == component]

    def free() -> str | None:
        listening = run(["ss", "-Hltnu"], check=False).stdout
        held = [p for p in ports if re.search(rf":{p}\s", listening)]
        return f"port(s) {held} still held" if held else None

    if ports:
        poll(free, what=f"{component} ports", seconds=PORTS_FREE_S, interval=0.2)


def _spec(paths: config.Paths, component: str) -> components.Spec:
    return next(spec for spec in components.specs(paths) if spec.name == component)


def _start(
    paths: config.Paths,
    spec: components.Spec,
    argv: list[str],
    log: Log,
    deadline_s: float | None = None,
) -> None:
    processes.start(paths, spec.name, argv)
    waited = poll(
        spec.ready,
        what=spec.name,
        seconds=deadline_s or spec.deadline_s,
        alive=lambda: processes.death_note(paths, spec.name),
    )
    log(f"{spec.name} ready ({waited:.1f}s)")


def _kubectl(paths: config.Paths, *args: str, input_text: str | None = None) -> str:
    """The cluster's own kubectl as admin (one line of stderr on failure)."""
    argv = [str(build.binary(paths, "kubectl")), f"--kubeconfig={paths.admin_kubeconfig}", *args]
    done = run(argv, input_text=input_text, timeout=60, check=False)
    if done.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args[:3])}: {done.stderr.strip()[-300:]}")
    return done.stdout


def _admission_served(paths: config.Paths) -> bool:
    """True when the API server serves MutatingAdmissionPolicy objects (and so enforces them)."""
    status, body = components.api(paths, f"/apis/{ADMISSION_API}")
    if status != 200:
        return False
    try:
        names = {resource.get("name") for resource in json.loads(body).get("resources") or []}
    except ValueError:
        return False
    return "mutatingadmissionpolicies" in names


def _running_argv(paths: config.Paths, component: str) -> list[str] | None:
    pid = processes.pid_of(paths, component)
    if pid is None:
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _serve_admission_policies(paths: config.Paths, log: Log) -> None:
    """Make sure the API server enforces MutatingAdmissionPolicy: one started before its flags
    were added (localcluster/components.py) is restarted once with its normal argv (~5 s without
    an API server; every watch of the suite relists)."""
    if _admission_served(paths):
        return
    spec = _spec(paths, "kube-apiserver")
    if _running_argv(paths, "kube-apiserver") != spec.argv:
        log("kube-apiserver runs without MutatingAdmissionPolicy: restarting it with its flags")
        restart(paths, "kube-apiserver", log)
    if not _admission_served(paths):
        raise FaultNotApplicable(
            f"kube-apiserver does not serve {ADMISSION_API} mutatingadmissionpolicies "
            "(its argv: --feature-gates=MutatingAdmissionPolicy=true and --runtime-config)"
        )


def _dry_run_shows(paths: config.Paths, admission: Admission) -> str | None:
    sample = json.dumps(admission.sample)
    try:
        answer = _kubectl(
            paths,
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-n",
            CHECK_NAMESPACE,
            "-f",
            "-",
            input_text=sample,
        )
        return admission.seen(json.loads(answer))
    except (ClusterError, ValueError) as error:
        return f"dry-run create failed: {error}"


def _create_admission(paths: config.Paths, change: Change, admission: Admission) -> None:
    documents = [_check_namespace(), *policy_objects(change.name, admission)]
    text = "\n---\n".join(json.dumps(document) for document in documents)
    _kubectl(paths, "apply", "--server-side", "--force-conflicts", "-f", "-", input_text=text)


def _delete_admission(paths: config.Paths, log: Log) -> None:
    """Delete every object an admission change made (found by label), and wait until the API
    server no longer has the policies (it stops enforcing them as its informers see that)."""
    if not _admission_served(paths):
        return
    selector = f"-l={CHANGE_LABEL}"
    _kubectl(paths, "delete", ",".join(ADMISSION_RESOURCES), selector, "--ignore-not-found")
    # Waited for, so an admission fault applied next finds no terminating check namespace.
    _kubectl(paths, "delete", "namespace", selector, "--ignore-not-found", "--timeout=60s")

    def gone() -> str | None:
        left = _kubectl(paths, "get", ",".join(ADMISSION_RESOURCES), selector, "-o", "name")
        return f"still there: {left.split()}" if left.strip() else None

    poll(gone, what="admission policies deleted", seconds=POLICY_ACTS_S)
    log("admission policies and the check namespace deleted")


def _apply(paths: config.Paths, change: Change, log: Log, healthy: Callable[[], bool]) -> None:
    current = active(paths)
    if current is not None:
        if current.name == change.name:
            log(f"{change.kind} {change.name} is already applied")
            return
        raise FaultNotApplicable(
            f"cannot apply {change.name}: {current.kind} {current.name} is applied; "
            f"`python -m localcluster {current.kind} clear` first"
        )
    if not healthy():
        raise FaultNotApplicable(
            f"cannot apply {change.name}: the local cluster is not running healthy "
            "(`python -m localcluster up`, then `status`)"
        )
    admission = change.admission
    spec = _spec(paths, change.component)
    if admission is not None:
        _serve_admission_policies(paths, log)
    else:
        binary = Path(spec.argv[0])
        if not binary.exists():
            raise FaultNotApplicable(f"cannot apply {change.name}: {binary} is missing")
    # The record comes first: whatever happens next, `clear` and `up` know what to restore.
    _marker(paths).write_text(
        json.dumps({"name": change.name, "kind": change.kind, "applied": time.time()})
    )
    prefix = "" if change.kind == "fault" else f"{change.kind} "
    lock_path().write_text(f"{prefix}{change.name}\n")
    if admission is not None:
        _create_admission(paths, change, admission)
        poll(
            lambda: _dry_run_shows(paths, admission),
            what=f"{change.kind} {change.name}",
            seconds=POLICY_ACTS_S,
        )
    else:
        _stop(paths, spec.name)
        if change.after_stop is not None:
            change.after_stop(paths)
        if change.argv is not None:
            _start(paths, spec, change.argv(paths, list(spec.argv)), log, change.ready_within_s)
    if change.shows is not None:
        shows = change.shows
        poll(
            lambda: shows(paths),
            what=f"{change.kind} {change.name}",
            seconds=change.shows_within_s,
        )
    log(f"{change.kind} {change.name} applied: {change.how}")


def apply(paths: config.Paths, name: str, log: Log, *, healthy: Callable[[], bool]) -> Fault:
    """Break the cluster as `name` says; `healthy` tells whether the cluster runs normally first."""
    fault = lookup(name)
    _apply(paths, fault, log, healthy)
    return fault


def apply_variant(
    paths: config.Paths, name: str, log: Log, *, healthy: Callable[[], bool]
) -> Variant:
    """Switch the healthy cluster to the variant `name` (as `apply` does for a fault)."""
    variant = lookup_variant(name)
    _apply(paths, variant, log, healthy)
    return variant


def clear(paths: config.Paths, log: Log, name: str | None = None, *, restart: bool = True) -> bool:
    """Undo the applied fault or variant (or check it is `name`); False when none was applied.

    With `restart=False` (what `up` uses, since it starts every stopped component itself), the
    changed component is only stopped, and the record removed. An admission change needs the API
    server: when it does not answer, its record stays, for `up` to clear once the API server runs.
    """
    change = active(paths)
    if name is not None:
        _lookup_any(name)
    if change is None:
        lock_path().unlink(missing_ok=True)
        log("no fault or variant applied")
        return False
    if name is not None and name != change.name:
        raise ClusterError(f"{change.kind} {change.name} is applied, not {name}")
    if change.admission is not None or not change.component:
        if components.api(paths, "/readyz")[0] == 200:
            _delete_admission(paths, log)
        elif change.admission is not None:
            log(
                f"{change.kind} {change.name}: the API server does not answer; its policies go "
                "once it runs (`python -m localcluster up --restore`)"
            )
            return True
    else:
        _stop(paths, change.component)
        if restart and processes.pid_of(paths, "kube-apiserver") is not None:
            spec = _spec(paths, change.component)
            _start(paths, spec, list(spec.argv), log)
            if change.component == "kube-proxy":
                poll(lambda: _iptables_rules_back(paths), what="kube-proxy rules", seconds=30)
    _marker(paths).unlink(missing_ok=True)
    lock_path().unlink(missing_ok=True)
    stopped = not restart and change.admission is None and bool(change.component)
    log(
        f"{change.kind} {change.name} cleared"
        + (f"; {change.component} stopped" if stopped else "")
    )
    return True


def restart(
    paths: config.Paths,
    component: str,
    log: Log,
    *,
    while_stopped: Callable[[], None] | None = None,
) -> float:
    """Stop `component`, run `while_stopped`, start it again with its normal argv and wait until
    it is ready; returns the seconds it was gone. A restart, not a fault: nothing is left changed,
    and the lock file names it meanwhile. A run that dies half-way leaves the component stopped,
    which `up` starts again."""
    current = active(paths)
    if current is not None:
        raise FaultNotApplicable(
            f"cannot restart {component}: {current.kind} {current.name} is applied; "
            f"`python -m localcluster {current.kind} clear` first"
        )
    spec = _spec(paths, component)
    lock_path().write_text(f"restart {component}\n")
    stopped = time.monotonic()
    try:
        _stop(paths, component)
        log(f"{component} stopped")
        if while_stopped is not None:
            while_stopped()
    finally:
        _start(paths, spec, list(spec.argv), log)
        lock_path().unlink(missing_ok=True)
    return time.monotonic() - stopped


def describe() -> list[str]:
    """One line per known fault: name, what is broken, how."""
    width = max(len(name) for name in FAULTS)
    return [f"{f.name:<{width}}  {f.broken}: {f.how}" for f in FAULTS.values()]


def describe_variants() -> list[str]:
    """One line per known variant: name, how, why it is a healthy cluster."""
    width = max(len(name) for name in VARIANTS)
    return [f"{v.name:<{width}}  {v.how}; valid: {v.valid}" for v in VARIANTS.values()]

"""The cluster's own timing settings that the scenarios' deadlines, bounds and floors build on.

Service routing: kube-proxy applies an EndpointSlice change to a node's rules at its next sync
(iptables.minSyncPeriod, 1 s by default) and the rules then take a restore to load. One bound,
PROXY_LAG_S, is what every behaviour that judges routing allows for it, joining or leaving.

The HorizontalPodAutoscaler acts at kube-controller-manager's sync period and reads CPU that
metrics-server refreshes at its resolution. Neither is in the API, so each is read where the
cluster shows it: the running process's flags on the local cluster, the static pod's command of
a kubeadm-made control plane (kind, most home labs) and the metrics-server Deployment's args, all
through the API. When a setting is not visible (a managed control plane, no rights to kube-system),
the upstream default is assumed and the report says so, so a deadline that fails says which value
it was built on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from suite.kube import DEPLOYMENTS, PODS, Kube, KubeError, list_objects

#: kube-proxy's iptables.minSyncPeriod default (since v1.27): endpoint changes that come faster
#: are batched into one sync a second.
PROXY_SYNC_S = 1.0
#: EndpointSlice changed -> the prober node's rules follow (a pod that left gets its last request,
#: a pod that joined its first): one minSyncPeriod, the rules restore and the watch deliveries.
#: The restore is what grows with load: on a 3-node kind cluster sharing 2 cores with the suite,
#: healthy clusters have been seen at 1.52 s (a pod leaving, in CI) and 1.61 s (one joining), so
#: a bound of 1.5 s failed a healthy cluster. 3 s has room; a proxy that follows 20 s late (the
#: service-routing-late fault) or not at all (service-routing-stopped) stays far outside it.
PROXY_LAG_S = 3.0
#: manifests/incver's preStop drain (`/drain?seconds=4`): readiness fails at once and serving goes
#: on this long, so a request routed late (PROXY_LAG_S) a second after the EndpointSlice
#: controller marked the pod terminating is still answered. The rolling update, graceful
#: termination and the disruption budget read it back from the admitted pods.
INCVER_DRAIN_S = 4

#: kube-controller-manager's --horizontal-pod-autoscaler-sync-period default.
HPA_SYNC_DEFAULT_S = 15.0
#: metrics-server's resolution in its upstream manifests, assumed when it is not visible...
METRICS_RESOLUTION_DEFAULT_S = 15.0
#: ... and its binary's own default, when it runs without the flag.
METRICS_RESOLUTION_BINARY_DEFAULT_S = 60.0
HPA_SYNC_FLAG = "--horizontal-pod-autoscaler-sync-period"
METRICS_RESOLUTION_FLAG = "--metric-resolution"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration ("15s", "1m30s", "500ms") in seconds; ValueError if it is not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a Go duration: {text!r}")
    return total


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of `--flag=value` or `--flag value` in an argument list (the last one wins)."""
    found = None
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            found = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(argv):
            found = argv[i + 1]
    return found


@dataclass(frozen=True)
class Setting:
    """One setting in seconds, and where it was read (or that it was assumed)."""

    seconds: float
    source: str
    assumed: bool = False

    def describe(self) -> str:
        """'5 s (kube-controller-manager's flag, ...)'."""
        return f"{self.seconds:g} s ({self.source})"


@dataclass(frozen=True)
class ClusterTiming:
    """The settings the autoscaling scenario builds on."""

    hpa_sync: Setting
    metrics_resolution: Setting

    def describe(self) -> str:
        """One line for the terminal and the report header."""
        return (
            f"HPA sync {self.hpa_sync.describe()}, metrics resolution "
            f"{self.metrics_resolution.describe()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterTiming:
        """Inverse of to_dict."""
        return cls(Setting(**data["hpa_sync"]), Setting(**data["metrics_resolution"]))


#: What a provider found: the argument list of a component and where it was read, or None.
Found = tuple[list[str], str] | None


def setting_from(
    found: Found, flag: str, default_s: float, component: str, flag_default_s: float | None = None
) -> Setting:
    """The flag's value from a component's arguments; without the flag, the binary's default
    (`flag_default_s`, else `default_s`); not visible at all, `default_s` marked as assumed."""
    if found is None:
        return Setting(default_s, f"{component} not visible: upstream default assumed", True)
    argv, where = found
    value = flag_value(argv, flag)
    if value is None:
        fallback = default_s if flag_default_s is None else flag_default_s
        return Setting(fallback, f"{where}: no {flag}, so its default", False)
    try:
        return Setting(parse_duration(value), f"{where}: {flag}={value}")
    except ValueError:
        return Setting(default_s, f"{where}: unreadable {flag}={value}: default assumed", True)


def _container_argv(spec: Mapping[str, Any], name_part: str) -> list[str] | None:
    for container in spec.get("containers") or []:
        if name_part in str(container.get("name", "")):
            return [
                str(a) for a in (container.get("command") or []) + (container.get("args") or [])
            ]
    return None


def controller_manager_from_api(kube: Kube) -> Found:
    """The command of a kubeadm-style static kube-controller-manager pod in kube-system."""
    try:
        pods, _ = list_objects(
            kube, PODS, "kube-system", label_selector="component=kube-controller-manager"
        )
    except KubeError:
        return None
    for pod in pods:
        argv = _container_argv(pod.get("spec") or {}, "kube-controller-manager")
        if argv is not None:
            return argv, f"pod kube-system/{pod['metadata']['name']}"
    return None


def metrics_server_from_api(kube: Kube) -> Found:
    """The args of the metrics-server Deployment in kube-system."""
    try:
        deployments, _ = list_objects(kube, DEPLOYMENTS, "kube-system")
    except KubeError:
        return None
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        if "metrics-server" not in name:
            continue
        spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        argv = _container_argv(spec, "metrics-server")
        if argv is not None:
            return argv, f"deployment kube-system/{name}"
    return None


def read(controller_manager: Found, metrics_server: Found) -> ClusterTiming:
    """The timing from what the provider found of the two components."""
    return ClusterTiming(
        hpa_sync=setting_from(
            controller_manager, HPA_SYNC_FLAG, HPA_SYNC_DEFAULT_S, "kube-controller-manager"
        ),
        metrics_resolution=setting_from(
            metrics_server,
            METRICS_RESOLUTION_FLAG,
            METRICS_RESOLUTION_DEFAULT_S,
            "metrics-server",
            METRICS_RESOLUTION_BINARY_DEFAULT_S,
        ),
    )

"""Every number and path that defines the local cluster, in one place.

The addresses are chosen so that all traffic stays on this machine: the node address lives on an
interface of its own (`kalive0`, a bridge without ports: this kernel has no dummy driver), the
service range is routed to that same interface (a packet kube-proxy has not rewritten goes nowhere
there instead of leaving through the default route), and pods sit on a bridge of their own whose
traffic may not be forwarded anywhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
METRICS_SERVER_VERSION = "v0.8.0"
COREDNS_VERSION = "v1.13.1"
PAUSE_VERSION = "3.10.1"
DEBIAN_SUITE = "bookworm"

NODE_NAME = "kube-alive"
NODE_IP = "10.240.0.1"
NODE_IFACE = "kalive0"
BRIDGE_IFACE = "ka-cni0"
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
# The filter chain that keeps pod traffic on this machine, and the NAT chain prefix kube-proxy uses.
EGRESS_CHAIN = "KUBE-ALIVE-EGRESS"

# Faster than the upstream defaults (metrics-server 60 s, its manifests 15 s; HPA sync 15 s;
# kubelet housekeeping 10 s) so the autoscaling scenario runs near its floor here. The scenario
# reads these from the running processes and derives its deadlines from them, so the same test
# holds on kind and on a Pi with the defaults. 10 s is metrics-server's smallest resolution; its
# kubelet request timeout must stay under 9/10 of it. Housekeeping is how often the kubelet's
# cAdvisor refreshes container CPU: at 5 s every scrape finds a fresh sample.
METRICS_RESOLUTION_S = 10
METRICS_KUBELET_TIMEOUT_S = 5
HPA_SYNC_S = 2
KUBELET_HOUSEKEEPING_S = 5

PAUSE_IMAGE = f"localhost/kube-alive/pause:{PAUSE_VERSION}"
BASE_IMAGE = f"localhost/kube-alive/python-base:{DEBIAN_SUITE}"
WORKLOAD_IMAGE_REPO = "localhost/kube-alive/workloads"

# Ports the host processes listen on, with the component that needs each.
PORTS: dict[int, str] = {
    2379: "etcd (client)",
    2380: "etcd (peer)",
    6443: "kube-apiserver",
    10257: "kube-controller-manager",
    10259: "kube-scheduler",
    10248: "kubelet (healthz)",
    10250: "kubelet",
    10256: "kube-proxy (healthz)",
    10249: "kube-proxy (metrics)",
    4443: "metrics-server",
    53: "CoreDNS",
    8181: "CoreDNS (ready)",
}

REPO_DIR = Path(__file__).resolve().parents[1]
GOMOD_DIR = Path(__file__).resolve().parent / "gomod"


@dataclass(frozen=True)
class Paths:
    """Where the cluster keeps its state (wiped by `down`) and its caches (kept)."""

    state: Path
    cache: Path

    @classmethod
    def default(cls) -> Paths:
        """Paths from KUBE_ALIVE_STATE_DIR / KUBE_ALIVE_CACHE_DIR, else under /var."""
        return cls(
            state=Path(os.environ.get("KUBE_ALIVE_STATE_DIR", "/var/lib/kube-alive")),
            cache=Path(os.environ.get("KUBE_ALIVE_CACHE_DIR", "/var/cache/kube-alive")),
        )

    @property
    def run(self) -> Path:
        """Sockets and pid files."""
        return self.state / "run"

    @property
    def logs(self) -> Path:
        """One log file per component."""
        return self.state / "logs"

    @property
    def pki(self) -> Path:
        """Generated certificates and keys (never in the repo)."""
        return self.state / "pki"

    @property
    def kubeconfigs(self) -> Path:
        """One kubeconfig per identity."""
        return self.state / "kubeconfig"

    @property
    def admin_kubeconfig(self) -> Path:
        """The kubeconfig users and the suite use."""
        return self.kubeconfigs / "admin.kubeconfig"

    @property
    def bin(self) -> Path:
        """Built binaries, one folder per component version and source hash."""
        return self.cache / "bin"

    @property
    def images(self) -> Path:
        """Built OCI archives, kept between clusters."""
        return self.cache / "images"

    @property
    def containerd_sock(self) -> Path:
        """The cluster's own containerd (it never touches a system containerd)."""
        return self.run / "containerd" / "containerd.sock"

"""How each component is configured and started, in start order, with its readiness check."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from localcluster import build, config


@dataclass(frozen=True)
class Spec:
    """A host process of the cluster: its argv, its readiness probe and how long it may take."""

    name: str
    argv: list[str]
    ready: Callable[[], str | None]
    deadline_s: float


def _get(
    url: str, paths: config.Paths, *, client: str | None = None, timeout: float = 3
) -> tuple[int, str]:
    try:
        ctx = ssl.create_default_context(cafile=str(paths.pki / "ca.crt"))
        if client:
            ctx.load_cert_chain(paths.pki / f"{client}.crt", paths.pki / f"{client}.key")
    except (OSError, ssl.SSLError) as exc:
        # The state directory lost its certificates (or is not this cluster's).
        return 0, (
            f"cannot use the certificates in {paths.pki} ({type(exc).__name__}: {exc}); "
            "restart the cluster: python3 -m localcluster down && python3 -m localcluster up"
        )
    if url.startswith("https://127.0.0.1:1025"):
        # The controller-manager and scheduler serve /healthz with a self-signed certificate.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:  # noqa: S310
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:300]
    except (OSError, ssl.SSLError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"


def _http_ok(url: str, paths: config.Paths, client: str | None = None) -> Callable[[], str | None]:
    def check() -> str | None:
        status, body = _get(url, paths, client=client)
        return None if status == 200 else f"GET {url} -> {status or 'no answer'} {body[:400]}"

    return check


def api(paths: config.Paths, path: str) -> tuple[int, str]:
    """GET an API server path as the admin identity."""
    return _get(f"https://{config.NODE_IP}:6443{path}", paths, client="admin")


def node_ready(paths: config.Paths) -> str | None:
    """None when the node is registered and Ready, else what was seen."""
    status, body = api(paths, f"/api/v1/nodes/{config.NODE_NAME}")
    if status != 200:
        return f"node {config.NODE_NAME}: GET -> {status} {body[:150]}"
    conditions = {c["type"]: c for c in json.loads(body)["status"].get("conditions", [])}
    ready = conditions.get("Ready", {})
    if ready.get("status") == "True":
        return None
    return f"node {config.NODE_NAME} Ready={ready.get('status')} ({ready.get('message', '')})"


def metrics_ready(paths: config.Paths) -> str | None:
    """None when the metrics API serves this node's CPU usage."""
    status, body = api(paths, f"/apis/metrics.k8s.io/v1beta1/nodes/{config.NODE_NAME}")
    if status == 200 and "cpu" in json.loads(body).get("usage", {}):
        return None
    return f"GET /apis/metrics.k8s.io/v1beta1/nodes/{config.NODE_NAME} -> {status} {body[:200]}"


def _bin(paths: config.Paths, name: str) -> str:
    return str(build.binary(paths, name))


def _cannot_lower_oom_score() -> bool:
    # CAP_SYS_RESOURCE is capability 24; without it in the bounding set even root cannot lower
    # an oom_score_adj.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not int(line.split()[1], 16) & (1 << 24)
    return False


def write_configs(paths: config.Paths) -> None:
    """Render the config files the components read (kubelet, kube-proxy, containerd, CNI, DNS)."""
    cfg = paths.state / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    pki = paths.pki
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": config.NODE_IP,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        # The VM is cgroup v1 without systemd as init: cgroupfs is the driver that works.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_sock}",
        "clusterDNS": [config.DNS_SERVICE_IP],
        "clusterDomain": config.CLUSTER_DOMAIN,
        "resolvConf": str(cfg / "resolv.conf"),
        "failSwapOn": False,
        "podCIDR": config.NODE_POD_CIDR,
        "maxPods": 60,
        "serializeImagePulls": False,
        # Small disks are common on CI machines; evicting test pods for disk pressure would make
        # scenarios fail for reasons unrelated to what they prove.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusReportFrequency": "10s",
        "staticPodPath": "",
    }
    (cfg / "kubelet.yaml").write_text(yaml.safe_dump(kubelet))
    # Pods with dnsPolicy Default get this file: the node's CoreDNS, which answers only the cluster
    # domain and forwards nothing, so no test traffic leaves the machine through DNS.
    (cfg / "resolv.conf").write_text(f"nameserver {config.NODE_IP}\n")
    proxy = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(paths.kubeconfigs / "kube-proxy.kubeconfig")},
        "mode": "iptables",
        "clusterCIDR": config.POD_CIDR,
        "hostnameOverride": config.NODE_NAME,
        "bindAddress": config.NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{config.NODE_IP}/32"],
        # 0 leaves the host's conntrack table size alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }
    (cfg / "kube-proxy.yaml").write_text(yaml.safe_dump(proxy))
    sock = paths.containerd_sock
    (cfg / "containerd.toml").write_text(
        f"""version = 2
root = "{paths.state / "containerd"}"
state = "{paths.run / "containerd-state"}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.state / "containerd-opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{config.PAUSE_IMAGE}"
  # This VM's capability bounding set lacks CAP_SYS_RESOURCE, so no process may lower its
  # oom_score_adj: the kubelet asks -998 for sandboxes and runc init fails with EPERM. Clamping to
  # containerd's own score (what rootless setups do) keeps every other OOM ordering intact.
  restrict_oom_score_adj = {"true" if _cannot_lower_oom_score() else "false"}
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cfg / "cni"}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"""
    )
    (cfg / "cni").mkdir(exist_ok=True)
    cni = {
        "cniVersion": "1.0.0",
        "name": "kube-alive",
        "plugins": [
            {
                "type": "bridge",
                "bridge": config.BRIDGE_IFACE,
                "isGateway": True,
                # No masquerading: pod traffic has nowhere to go but this machine.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": config.NODE_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.state / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (cfg / "cni" / "10-kube-alive.conflist").write_text(json.dumps(cni, indent=2))
    (cfg / "Corefile").write_text(
        f"""{config.CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {config.NODE_IP}
    errors
    health 127.0.0.1:8180
    ready 127.0.0.1:8181
    kubernetes {config.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {paths.kubeconfigs / "coredns.kubeconfig"} kube-alive-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
.:53 {{
    bind {config.NODE_IP}
    errors
    # Nothing outside the cluster domain is resolved: test traffic never leaves the machine.
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""
    )


def specs(paths: config.Paths) -> list[Spec]:
    """Every host process in start order."""
    pki = paths.pki
    kc = paths.kubeconfigs
    cfg = paths.state / "config"
    api_url = f"https://{config.NODE_IP}:6443"
    etcd = Spec(
        "etcd",
        [
            _bin(paths, "etcd"),
            "--name=kube-alive",
            f"--data-dir={paths.state / 'etcd'}",
            "--listen-client-urls=http://127.0.0.1:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls=http://127.0.0.1:2380",
            "--initial-cluster=kube-alive=http://127.0.0.1:2380",
            "--listen-metrics-urls=http://127.0.0.1:2381",
            "--log-level=warn",
        ],
        _http_ok("http://127.0.0.1:2379/health", paths),
        30,
    )
    apiserver = Spec(
        "kube-apiserver",
        [
            _bin(paths, "kube-apiserver"),
            "--etcd-servers=http://127.0.0.1:2379",
            f"--advertise-address={config.NODE_IP}",
            f"--bind-address={config.NODE_IP}",
            "--secure-port=6443",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--service-account-issuer=https://kubernetes.default.svc.{config.CLUSTER_DOMAIN}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={config.SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            # MutatingAdmissionPolicy (beta in v1.34, off by default; its admission plugin is on
            # by default): the admission faults (localcluster/faults.py) rewrite what the suite
            # submits with such policies. With no policy it changes nothing.
            "--feature-gates=MutatingAdmissionPolicy=true",
            "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
            "--allow-privileged=false",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--profiling=false",
        ],
        _http_ok(f"{api_url}/readyz", paths, client="admin"),
        90,
    )
    controller_manager = Spec(
        "kube-controller-manager",
        [
            _bin(paths, "kube-controller-manager"),
            f"--kubeconfig={kc / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={kc / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={kc / 'controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            "--use-service-account-credentials=true",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={config.POD_CIDR}",
            "--node-cidr-mask-size=24",
            f"--service-cluster-ip-range={config.SERVICE_CIDR}",
            # Faster than the upstream 15 s (see config.HPA_SYNC_S); the scenario reads it back.
            f"--horizontal-pod-autoscaler-sync-period={config.HPA_SYNC_S}s",
            "--profiling=false",
        ],
        _http_ok("https://127.0.0.1:10257/healthz", paths),
        60,
    )
    scheduler = Spec(
        "kube-scheduler",
        [
            _bin(paths, "kube-scheduler"),
            f"--kubeconfig={kc / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={kc / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={kc / 'scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--profiling=false",
        ],
        _http_ok("https://127.0.0.1:10259/healthz", paths),
        60,
    )
    containerd = Spec(
        "containerd",
        ["/usr/bin/containerd", f"--config={cfg / 'containerd.toml'}"],
        lambda: None if paths.containerd_sock.is_socket() else "no socket yet",
        30,
    )
    kubelet = Spec(
        "kubelet",
        [
            _bin(paths, "kubelet"),
            f"--config={cfg / 'kubelet.yaml'}",
            f"--kubeconfig={kc / 'kubelet.kubeconfig'}",
            f"--root-dir={paths.state / 'kubelet'}",
            f"--node-ip={config.NODE_IP}",
            f"--hostname-override={config.NODE_NAME}",
            f"--housekeeping-interval={config.KUBELET_HOUSEKEEPING_S}s",
            "--v=1",
        ],
        lambda: _http_ok("http://127.0.0.1:10248/healthz", paths)() or node_ready(paths),
        120,
    )
    kube_proxy = Spec(
        "kube-proxy",
        [_bin(paths, "kube-proxy"), f"--config={cfg / 'kube-proxy.yaml'}"],
        _http_ok("http://127.0.0.1:10256/healthz", paths),
        60,
    )
    coredns = Spec(
        "coredns",
        [_bin(paths, "coredns"), "-conf", str(cfg / "Corefile")],
        _http_ok("http://127.0.0.1:8181/ready", paths),
        60,
    )
    metrics_server = Spec(
        "metrics-server",
        [
            _bin(paths, "metrics-server"),
            f"--kubeconfig={kc / 'metrics-server.kubeconfig'}",
            f"--authentication-kubeconfig={kc / 'metrics-server.kubeconfig'}",
            f"--authorization-kubeconfig={kc / 'metrics-server.kubeconfig'}",
            f"--bind-address={config.NODE_IP}",
            "--secure-port=4443",
            f"--tls-cert-file={pki / 'metrics-server-serving.crt'}",
            f"--tls-private-key-file={pki / 'metrics-server-serving.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--kubelet-use-node-status-port",
            f"--metric-resolution={config.METRICS_RESOLUTION_S}s",
            f"--kubelet-request-timeout={config.METRICS_KUBELET_TIMEOUT_S}s",
        ],
        lambda: metrics_ready(paths),
        # Two scrapes are needed before the first CPU rate exists: 2 x resolution + start-up.
        2 * config.METRICS_RESOLUTION_S + 60,
    )
    return [
        etcd,
        apiserver,
        controller_manager,
        scheduler,
        containerd,
        kubelet,
        kube_proxy,
        coredns,
        metrics_server,
    ]

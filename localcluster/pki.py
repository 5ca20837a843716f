"""Certificates, keys and kubeconfigs for the local cluster, made with openssl into its state.

Nothing here is ever written into the repository. Keys are EC P-256 (fast to make, accepted by every
component). The cluster CA signs the serving and client certificates; a separate front-proxy CA
signs the identity the API server presents to aggregated APIs (metrics-server).
"""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from localcluster import config
from localcluster.util import run

DAYS = "3650"


@dataclass(frozen=True)
class Cert:
    """One leaf certificate: subject, signing CA, usage, SANs."""

    name: str
    cn: str
    org: str | None = None
    ca: str = "ca"
    server: bool = False
    client: bool = True
    sans: tuple[str, ...] = field(default=())


APISERVER_SANS = (
    f"IP:{config.NODE_IP}",
    f"IP:{config.KUBERNETES_SERVICE_IP}",
    "IP:127.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    f"DNS:kubernetes.default.svc.{config.CLUSTER_DOMAIN}",
)

CERTS: tuple[Cert, ...] = (
    Cert("apiserver", "kube-apiserver", server=True, client=False, sans=APISERVER_SANS),
    Cert("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
    Cert("front-proxy-client", "front-proxy-client", ca="front-proxy-ca"),
    Cert("admin", "kube-alive-admin", "system:masters"),
    Cert("controller-manager", "system:kube-controller-manager"),
    Cert("scheduler", "system:kube-scheduler"),
    Cert("kubelet", f"system:node:{config.NODE_NAME}", "system:nodes"),
    Cert(
        "kubelet-serving",
        f"system:node:{config.NODE_NAME}",
        "system:nodes",
        server=True,
        client=False,
        sans=(f"IP:{config.NODE_IP}", f"DNS:{config.NODE_NAME}"),
    ),
    Cert("kube-proxy", "system:kube-proxy"),
    Cert("coredns", "kube-alive:coredns"),
    Cert("metrics-server", "kube-alive:metrics-server"),
    Cert(
        "metrics-server-serving",
        "metrics-server",
        server=True,
        client=False,
        sans=(
            "DNS:metrics-server.kube-system.svc",
            f"DNS:metrics-server.kube-system.svc.{config.CLUSTER_DOMAIN}",
            f"IP:{config.NODE_IP}",
        ),
    ),
)

# Identities that talk to the API server, and the kubeconfig each gets.
KUBECONFIGS = (
    "admin",
    "controller-manager",
    "scheduler",
    "kubelet",
    "kube-proxy",
    "coredns",
    "metrics-server",
)


def _key(path: Path) -> None:
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path])
    path.chmod(0o600)


def _ca(pki: Path, name: str, cn: str) -> None:
    if (pki / f"{name}.crt").exists():
        return
    _key(pki / f"{name}.key")
    run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            "-key",
            pki / f"{name}.key",
            "-days",
            DAYS,
            "-subj",
            f"/CN={cn}",
            "-out",
            pki / f"{name}.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ]
    )


def _leaf(pki: Path, cert: Cert) -> None:
    if (pki / f"{cert.name}.crt").exists():
        return
    _key(pki / f"{cert.name}.key")
    subject = f"/CN={cert.cn}" + (f"/O={cert.org}" if cert.org else "")
    usages = [u for u, on in (("serverAuth", cert.server), ("clientAuth", cert.client)) if on]
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    if cert.sans:
        ext.append(f"subjectAltName={','.join(cert.sans)}")
    with tempfile.TemporaryDirectory() as tmp:
        csr = Path(tmp) / "req.csr"
        extfile = Path(tmp) / "ext.cnf"
        extfile.write_text("\n".join(ext) + "\n")
        run(
            [
                "openssl",
                "req",
                "-new",
                "-key",
                pki / f"{cert.name}.key",
                "-subj",
                subject,
                "-out",
                csr,
            ]
        )
        run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                pki / f"{cert.ca}.crt",
                "-CAkey",
                pki / f"{cert.ca}.key",
                "-CAcreateserial",
                "-days",
                DAYS,
                "-extfile",
                extfile,
                "-out",
                pki / f"{cert.name}.crt",
            ]
        )


def ensure_pki(paths: config.Paths) -> None:
    """Create the CAs, certificates, service-account key pair and kubeconfigs (idempotent)."""
    pki = paths.pki
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    _ca(pki, "ca", "kube-alive-ca")
    _ca(pki, "front-proxy-ca", "kube-alive-front-proxy-ca")
    for cert in CERTS:
        _leaf(pki, cert)
    if not (pki / "sa.key").exists():
        _key(pki / "sa.key")
        run(["openssl", "ec", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub"])
    paths.kubeconfigs.mkdir(parents=True, exist_ok=True)
    for name in KUBECONFIGS:
        write_kubeconfig(paths, name)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(paths: config.Paths, name: str) -> Path:
    """A kubeconfig with embedded credentials for one identity, pointing at the API server."""
    pki = paths.pki
    cluster = "kube-alive-local"
    user = f"kube-alive-{name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": f"https://{config.NODE_IP}:6443",
                    "certificate-authority-data": _b64(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki / f"{name}.crt"),
                    "client-key-data": _b64(pki / f"{name}.key"),
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }
    path = paths.kubeconfigs / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path

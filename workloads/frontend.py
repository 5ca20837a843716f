"""frontend: a demo page, a proxy to the other workloads, and a read-only list of the pods.

Every proxied request opens a new upstream connection (as nginx did in the original), so kube-proxy
spreads them over the pods. The pod list uses the pod's own ServiceAccount token against the
in-cluster API; its Role allows get/list/watch on pods and nothing else.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import flask
from werkzeug.exceptions import BadGateway

from workloads.common import answer, identity, int_param, new_app

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBERNETES_API = "https://kubernetes.default.svc"
UPSTREAM_TIMEOUT_S = 5.0
API_TIMEOUT_S = 5.0
MAX_UPSTREAM_BYTES = 256 * 1024
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Settings:
    """Where the upstreams and the API are; each can be changed through the environment."""

    getip: str = "http://getip"
    healthcheck: str = "http://healthcheck"
    cpuhog: str = "http://cpuhog"
    incver: str = "http://incver"
    api: str = KUBERNETES_API
    service_account_dir: str = SERVICE_ACCOUNT_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read {GETIP,HEALTHCHECK,CPUHOG,INCVER}_URL, KUBERNETES_API and SERVICE_ACCOUNT_DIR."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            getip=env.get("GETIP_URL", default.getip),
            healthcheck=env.get("HEALTHCHECK_URL", default.healthcheck),
            cpuhog=env.get("CPUHOG_URL", default.cpuhog),
            incver=env.get("INCVER_URL", default.incver),
            api=env.get("KUBERNETES_API", default.api),
            service_account_dir=env.get("SERVICE_ACCOUNT_DIR", default.service_account_dir),
        )


class UpstreamError(Exception):
    """An upstream could not be reached or did not answer JSON."""


def _settings() -> Settings:
    settings: Settings = flask.current_app.extensions["kube_alive_frontend"]
    return settings


def fetch(base_url: str, method: str, path: str, timeout_s: float) -> tuple[int, dict[str, Any]]:
    """One request over a new connection to ``base_url`` + ``path``; (status, JSON object)."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise UpstreamError(f"upstream URL must be http://host[:port], got {base_url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout_s)
    try:
        conn.request(
            method,
            parts.path.rstrip("/") + path,
            headers={"Connection": "close", "Accept": "application/json"},
        )
        response = conn.getresponse()
        body = response.read(MAX_UPSTREAM_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, TimeoutError):
            raise UpstreamError(f"{base_url} did not answer within {timeout_s:g}s") from exc
        raise UpstreamError(f"{base_url}: {type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(f"{base_url} answered {status} without a JSON object")
    return status, data


def _proxy(name: str, base_url: str, method: str, path: str, timeout_s: float) -> flask.Response:
    try:
        status, data = fetch(base_url, method, path, timeout_s)
    except UpstreamError as exc:
        raise BadGateway(description=f"{name}: {exc}") from exc
    response = flask.jsonify(data)
    response.status_code = status
    response.headers["X-Kube-Alive-Frontend-Pod"] = identity().pod
    return response


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise BadGateway(
            description=f"no ServiceAccount credentials at {path.parent}: {exc.strerror}"
        ) from exc


def api_get(settings: Settings, path: str) -> dict[str, Any]:
    """GET ``path`` from the in-cluster API with the pod's ServiceAccount token."""
    sa_dir = Path(settings.service_account_dir)
    token = _read(sa_dir / "token")  # read each time: kubelet rotates projected tokens
    context = ssl.create_default_context(cafile=str(sa_dir / "ca.crt"))
    request = urllib.request.Request(  # noqa: S310 (the URL is our API server, https only)
        settings.api.rstrip("/") + path,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    if not request.full_url.startswith("https://"):
        raise BadGateway(description="the Kubernetes API URL must be https://")
    try:
        with urllib.request.urlopen(  # noqa: S310 (checked above)
            request, timeout=API_TIMEOUT_S, context=context
        ) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise BadGateway(description=f"the Kubernetes API answered {exc.code} for {path}") from exc
    except (OSError, ValueError) as exc:
        raise BadGateway(description=f"the Kubernetes API failed: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise BadGateway(description="the Kubernetes API did not answer a JSON object")
    return data


def _image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def summarize_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The few facts the demo shows about one pod."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    conditions = status.get("conditions") or []
    containers = status.get("containerStatuses") or []
    images = [c.get("image", "") for c in spec.get("containers") or []]
    version = labels.get("app.kubernetes.io/version")
    if version is None and images:
        version = _image_tag(images[0])
    return {
        "name": meta.get("name"),
        "app": labels.get("app.kubernetes.io/name"),
        "phase": status.get("phase"),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        "restarts": sum(int(c.get("restartCount", 0)) for c in containers),
        "node": spec.get("nodeName"),
        "ip": status.get("podIP"),
        "version": version,
        "deleting": meta.get("deletionTimestamp") is not None,
    }


def create_app() -> flask.Flask:
    """The demo page, the proxies to the other workloads, and ``GET /api/pods``."""
    app = new_app("frontend")
    app.extensions["kube_alive_frontend"] = Settings.from_env()
    page = resources.files("workloads").joinpath("frontend.html").read_text()

    @app.get("/")
    def index() -> flask.Response:
        nonce = secrets.token_urlsafe(16)
        ident = identity()
        html = flask.render_template_string(page, nonce=nonce, pod=ident.pod, version=ident.version)
        response = flask.Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/getip")
    def getip() -> flask.Response:
        return _proxy("getip", _settings().getip, "GET", "/", UPSTREAM_TIMEOUT_S)

    @app.get("/healthcheck/")
    @app.get("/healthcheck/<any(healthz, readyz):probe>")
    def healthcheck_get(probe: str = "") -> flask.Response:
        return _proxy(
            "healthcheck", _settings().healthcheck, "GET", f"/{probe}", UPSTREAM_TIMEOUT_S
        )

    @app.post("/healthcheck/<any(infect, cure, kill):action>")
    def healthcheck_post(action: str) -> flask.Response:
        return _proxy(
            "healthcheck", _settings().healthcheck, "POST", f"/{action}", UPSTREAM_TIMEOUT_S
        )

    @app.get("/cpuhog")
    def cpuhog() -> flask.Response:
        ms = int_param("ms", 1000, 1, 10_000)
        # The upstream takes at least ms to answer; allow that on top of the usual timeout.
        timeout_s = UPSTREAM_TIMEOUT_S + ms / 1000
        return _proxy("cpuhog", _settings().cpuhog, "GET", f"/?ms={ms}", timeout_s)

    @app.get("/incver/version")
    def incver() -> flask.Response:
        return _proxy("incver", _settings().incver, "GET", "/version", UPSTREAM_TIMEOUT_S)

    @app.get("/api/pods")
    def pods() -> flask.Response:
        settings = _settings()
        namespace = _read(Path(settings.service_account_dir) / "namespace")
        if not _DNS_LABEL.fullmatch(namespace):
            raise BadGateway(description=f"not a namespace name: {namespace[:80]!r}")
        data = api_get(settings, f"/api/v1/namespaces/{namespace}/pods")
        items = data.get("items") or []
        listed = sorted(
            (summarize_pod(p) for p in items if isinstance(p, dict)),
            key=lambda p: (p["app"] or "", p["name"] or ""),
        )
        return answer({"namespace": namespace, "pods": listed})

    return app

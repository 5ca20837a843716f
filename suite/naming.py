"""Run ids, test namespace names and the labels that let a sweep find them."""

from __future__ import annotations

import hashlib
import os
import re
import secrets

#: Namespace names are DNS labels (RFC 1123): at most 63 characters of [a-z0-9-].
MAX_NAME = 63
PREFIX = "ka"
HASH_LENGTH = 6

PART_OF_LABEL = "app.kubernetes.io/part-of"
PART_OF = "kube-alive"
RUN_ID_LABEL = "kube-alive/run-id"
WORKER_LABEL = "kube-alive/worker"
NODEID_ANNOTATION = "kube-alive/test"

RUN_ID_ENV = "KUBE_ALIVE_RUN_ID"
_RUN_ID = re.compile(r"^[a-z0-9]{1,12}$")


class RunIdError(ValueError):
    """`$KUBE_ALIVE_RUN_ID` cannot name a run's namespaces."""


def new_run_id() -> str:
    """A fresh run id: 6 hex digits, or `$KUBE_ALIVE_RUN_ID` when set (e.g. by a test that
    needs to know the run's namespaces in advance)."""
    configured = os.environ.get(RUN_ID_ENV, "").strip()
    if configured:
        if not _RUN_ID.match(configured):
            raise RunIdError(
                f"{RUN_ID_ENV}={configured!r}: expected 1-12 characters of [a-z0-9] (it goes "
                "into namespace names, which are lower-case DNS labels)"
            )
        return configured
    return secrets.token_hex(3)


def slug(text: str) -> str:
    """Lower-case DNS-label characters only: `test_Foo[a-b]` -> `foo-a-b`."""
    text = text.lower()
    if text.startswith("test_"):
        text = text[len("test_") :]
    text = re.sub(r"[^a-z0-9]+", "-", text)
    return text.strip("-") or "test"


def short_hash(text: str) -> str:
    """A short, stable hash of `text` (to keep truncated names unique)."""
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def namespace_name(run_id: str, test_name: str, nodeid: str, *, hashed: bool = False) -> str:
    """`ka-<runid>-<test-name-slug>`, at most 63 characters.

    When the slug does not fit (or `hashed` is asked for, e.g. because two tests share a name),
    it is truncated and a hash of the full node id is appended, so names stay unique.
    """
    head = f"{PREFIX}-{run_id}-"
    body = slug(test_name)
    if not hashed and len(head) + len(body) <= MAX_NAME:
        return head + body
    tail = "-" + short_hash(nodeid)
    room = MAX_NAME - len(head) - len(tail)
    return head + body[:room].rstrip("-") + tail


def namespace_labels(run_id: str, worker: str) -> dict[str, str]:
    """Labels of every test namespace: what it is part of, which run made it, and the Pod
    Security level its workloads must meet (restricted: enforced, and warned/audited too)."""
    labels = {
        PART_OF_LABEL: PART_OF,
        RUN_ID_LABEL: run_id,
        WORKER_LABEL: worker,
    }
    for mode in ("enforce", "warn", "audit"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return labels


def run_selector(run_id: str, worker: str | None = None) -> str:
    """Label selector for the namespaces of one run (optionally of one xdist worker)."""
    selector = f"{PART_OF_LABEL}={PART_OF},{RUN_ID_LABEL}={run_id}"
    if worker:
        selector += f",{WORKER_LABEL}={worker}"
    return selector

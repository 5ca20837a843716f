"""The report's title and verdict lines: what ran, on which cluster, what did not run and why.

Written from the report.json document alone, like the rest of the page. A reader of the title (a
browser tab, a CI artifact list) must never take a run that proved nothing for one that passed:
"passed" is said only of behaviours that ran and passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suite import behaviours
from suite.behaviours.base import Behaviour

#: Why a run whose behaviours did not fail still failed (pytest's exit statuses).
EXIT_WORDS = {
    1: "other tests failed",
    2: "the run was interrupted",
    3: "pytest hit an internal error",
    4: "pytest was used wrongly",
}


@dataclass(frozen=True)
class Verdict:
    """The page's `<title>` and the lines under the heading."""

    title: str
    ran: str
    not_run: list[str]
    cluster: str
    failed: bool


def _tests_of(document: Mapping[str, Any], behaviour: Behaviour) -> list[Mapping[str, Any]]:
    return [
        test
        for test in document.get("tests") or []
        if str(test.get("nodeid", "")).split("::", 1)[0].rsplit("/", 1)[-1] == behaviour.module
    ]


def _state(tests: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(`passed` | `failed` | `skipped` | `missing`, why it did not run)."""
    outcomes = [str(test.get("outcome")) for test in tests]
    if not outcomes:
        return "missing", "not selected in this run"
    if any(outcome in ("failed", "error") for outcome in outcomes):
        return "failed", ""
    if all(outcome == "skipped" for outcome in outcomes):
        reasons = sorted({str(test.get("skip_reason") or "no reason given") for test in tests})
        return "skipped", "skipped: " + "; ".join(reasons)
    if all(outcome == "passed" for outcome in outcomes):
        return "passed", ""
    if "passed" in outcomes:
        return "passed", ""
    return "missing", f"outcome {', '.join(sorted(set(outcomes)))}"


def _cluster_words(document: Mapping[str, Any]) -> tuple[str, str]:
    """(short name for the title, one line for the page)."""
    cluster = document.get("cluster") or {}
    error = document.get("cluster_error") or {}
    if error:
        provider = error.get("provider") or "?"
        return (
            f"--cluster={provider} could not be used",
            f"--cluster={provider} could not be used: {error.get('error') or 'no reason recorded'}",
        )
    if not cluster:
        return "no cluster", "no cluster was used (the behaviours need --cluster)"
    facts = cluster.get("facts") or {}
    name = str(cluster.get("provider") or facts.get("provider") or "?")
    version = facts.get("server_version")
    short = f"{name} ({version})" if version else name
    return short, str(cluster.get("describe") or name) + (
        f", Kubernetes {version}" if version else ""
    )


def where_it_runs(behaviour: Behaviour) -> str:
    """Why a behaviour is not in a run on a cluster it does not run on."""
    return f"runs only on --cluster={' or '.join(behaviour.clusters)}"


def provider(document: Mapping[str, Any]) -> str:
    """The --cluster choice the run used ("" when none is recorded)."""
    cluster = document.get("cluster") or {}
    facts = cluster.get("facts") or {}
    return str(cluster.get("provider") or facts.get("provider") or "")


def _lower(title: str) -> str:
    """ "Self-healing" -> "self-healing"; an acronym keeps its case ("CPU autoscaling")."""
    first = title.split(" ", 1)[0]
    return title if first.isupper() else title[0].lower() + title[1:]


def summarize(document: Mapping[str, Any]) -> Verdict:
    """The title and verdict lines of a report.json document."""
    short, cluster_line = _cluster_words(document)
    passed: list[str] = []
    failed: list[str] = []
    not_run: list[str] = []
    elsewhere = 0
    for behaviour in behaviours.ALL:
        state, why = _state(_tests_of(document, behaviour))
        used = provider(document)
        if state == "missing" and used and not behaviour.runs_on(used):
            why = where_it_runs(behaviour)
            elsewhere += 1
        name = _lower(behaviour.title)
        if state == "passed":
            passed.append(name)
        elif state == "failed":
            failed.append(name)
        else:
            not_run.append(f"{behaviour.title}: {why}")
    exitstatus = int(document.get("exitstatus") or 0)
    exit_failed = exitstatus != 0
    # A behaviour that cannot run on this cluster (it needs several nodes) is not counted
    # against it: the title says how many were left to other clusters.
    total = len(behaviours.ALL) - elsewhere
    not_here = f" ({elsewhere} more only on other clusters)" if elsewhere else ""
    if document.get("cluster_error"):
        title = f"kube-alive FAILED: {short}; no behaviour was tried"
    elif failed:
        title = f"kube-alive FAILED on {short}: {', '.join(failed)} failed"
    else:
        body = (
            f"{len(passed)} of {total} behaviours proven{not_here}"
            if passed
            else "no behaviour ran"
        )
        if exit_failed:
            why = EXIT_WORDS.get(exitstatus, f"pytest exit status {exitstatus}")
            title = f"kube-alive FAILED on {short}: {body}, {why}"
        else:
            title = f"kube-alive on {short}: {body}"
    parts = [f"{name} failed" for name in failed] + [f"{name} proven" for name in passed]
    ran = (
        f"Ran on {cluster_line}: " + (", ".join(parts) if parts else "no behaviour") + "."
        if not document.get("cluster_error")
        else f"Nothing ran: {cluster_line}."
    )
    return Verdict(
        title=title,
        ran=ran,
        not_run=not_run,
        cluster=cluster_line,
        failed=exit_failed or bool(failed) or bool(document.get("cluster_error")),
    )

"""The fault matrix: proof that the scenarios catch broken clusters, for the right reason, and do
not cry wolf on healthy clusters that differ from ours.

`python -m suite.tools.faultmatrix` (root, with the local cluster up) runs, for each named fault of
`localcluster.faults`: apply it (`python -m localcluster fault apply NAME`), run only the scenarios
that target it (`pytest --cluster=local ...`), judge each from the structured `failure` its
report.json records, and clear the fault again (also on errors and Ctrl-C). A fault is caught by a
scenario only when the scenario failed in its behaviour assertion (`claims.behaviour()`) and that
assertion's own message names the broken part; never from a traceback or the test's source text.
A failure before the behaviour was looked at (a precondition or a fixture) is "stopped by a
precondition", which is not a catch.

Then each healthy variant (`python -m localcluster variant apply NAME`: a cluster that differs
from ours in a valid way) runs the scenarios it targets, which must all pass. Last, with every
fault and variant cleared, the faults' scenarios run once more on the restored cluster and must
pass (`--healthy=skip` leaves that to a full `pytest --cluster=local` that follows).

The matrix is a run of its own: it has a run id, start and end times, the cluster its pytest runs
reported, and the run ids of those pytest runs. It writes `reports/fault-matrix.json` and its own
page, `reports/fault-matrix.html`; it never touches another run's report. Exit status 0 only when
every fault was applied and caught by every scenario it targets, every variant's scenarios passed,
and the restored cluster passed (unless skipped). A fault that cannot be applied here is "not
run", never caught.

The targets are chosen to keep the matrix short on 2 cores: each fault runs the scenarios that
prove the broken part's behaviour, not every scenario.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite import behaviours, claims, evidence
from suite.files import write_atomic
from suite.report import catches
from suite.tools.reading import failure_line

#: Exit status of `python -m localcluster fault|variant apply` when it cannot be applied here.
NOT_APPLICABLE = 3
#: Bounds of the subprocesses: a fault is applied or cleared in seconds (metrics-server needs two
#: scrapes, 15 s each, to be ready again); one targeted scenario fails within its own deadlines.
FAULT_TIMEOUT_S = 240
PYTEST_TIMEOUT_S = 900
#: The part of a failure message the matrix shows as the line it judged (report.json has it all).
LINE_CHARS = 300
#: Around a match found past LINE_CHARS, this much of the message is shown too, so the words
#: that made the catch are always on the line.
MATCH_CONTEXT_CHARS = 60


@dataclass(frozen=True)
class Target:
    """A fault, the scenarios that must each catch it, and the words (a regular expression) their
    behaviour assertion's message must contain. Made from the behaviours' declared catches."""

    fault: str
    tests: tuple[str, ...]
    names: str
    #: Where it runs: "local" (`localcluster fault`) or "kind" (`localcluster kind-fault`: one
    #: worker of the 3-node kind cluster broken, the others healthy).
    cluster: str = "local"


def _matrix() -> tuple[Target, ...]:
    """One Target per fault (and the words and cluster its catches name), its tests those of every
    behaviour that declares it must break it, in the registry's order (suite/behaviours/)."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for behaviour in behaviours.ALL:
        for catch in behaviour.catches:
            key = (catch.fault, catch.names, catch.cluster)
            found.setdefault(key, []).append(behaviour.matrix_nodeid)
    return tuple(
        Target(fault, tuple(tests), names, cluster)
        for (fault, names, cluster), tests in found.items()
    )


#: Every fault a behaviour declares (its `catches`), with the tests that must each catch it.
MATRIX: tuple[Target, ...] = _matrix()


@dataclass(frozen=True)
class Variant:
    """A healthy cluster that differs from ours in a valid way (`python -m localcluster variant
    apply NAME`), and the scenarios that must all pass on it. Made from the behaviours' declared
    variants."""

    name: str
    tests: tuple[str, ...]


def _variants() -> tuple[Variant, ...]:
    """One Variant per healthy variant a behaviour declares it must pass on (its `variants`)."""
    found: dict[str, list[str]] = {}
    for behaviour in behaviours.ALL:
        for name in behaviour.variants:
            found.setdefault(name, []).append(behaviour.matrix_nodeid)
    return tuple(Variant(name, tuple(tests)) for name, tests in found.items())


#: Every variant, NAME as `python -m localcluster variant list` has it. Empty: the matrix runs
#: no variant, and its page says so.
VARIANTS: tuple[Variant, ...] = _variants()


def _shown(message: str, match: re.Match[str] | None = None) -> str:
    """The first LINE_CHARS of a message on one line; with the words that matched when they
    come later."""
    flat = " ".join(message.split())
    line = flat[:LINE_CHARS] + ("…" if len(flat) > LINE_CHARS else "")
    if match is not None:
        found = re.search(re.escape(" ".join(match.group(0).split())), flat)
        if found and found.end() > LINE_CHARS:
            start = max(LINE_CHARS, found.start() - MATCH_CONTEXT_CHARS)
            line += " " + flat[start : found.end() + MATCH_CONTEXT_CHARS] + "…"
    return line


def judge(
    outcome: str, failure: Mapping[str, Any] | None, names: str, text: str = ""
) -> tuple[str, str]:
    """(status, line) of one targeted scenario under a fault, from its report.json entry.

    Caught only when it failed in its behaviour assertion and that assertion's own message
    names the broken part. A failure of a precondition or of the setup is "stopped by a
    precondition", whatever it names. A failure without a structured record (a report of an
    older suite) is never caught: the matrix cannot tell where it came from. `text` (the test's
    long failure text) is only shown then, never searched.
    """
    if outcome not in ("failed", "error"):
        return catches.MISSED, f"{outcome}: the scenario did not fail under the fault"
    record = claims.Failure.from_dict(failure)
    if record is None:
        shown = failure_line(text)
        return catches.MISSED, (
            "failed without a failure record in report.json (kind and message unknown)"
            + (f": {shown}" if shown else "")
        )
    if record.kind != claims.BEHAVIOUR:
        return catches.STOPPED, _shown(record.message) or record.exception
    match = re.search(names, record.message, re.IGNORECASE)
    if match:
        return catches.CAUGHT, _shown(record.message, match)
    return catches.MISSED, _shown(record.message) or record.exception


@dataclass(frozen=True)
class Result:
    """One test of one pytest run, as its report.json has it."""

    outcome: str
    failure: dict[str, Any] | None
    message: str  # the long text (traceback): only for a line when there is no failure record
    #: The folder its evidence was kept in, relative to its run's report directory.
    evidence_dir: str | None = None

    def line(self) -> str:
        """The failure's own message (first LINE_CHARS), else the first line of the text."""
        record = claims.Failure.from_dict(self.failure)
        if record is not None:
            return _shown(record.message) or record.exception
        return failure_line(self.message)


Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {error.timeout}s")


def new_run_id(now: float | None = None) -> str:
    """The matrix's own run id: its start time (UTC) and a few random characters."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"fm-{stamp}-{secrets.token_hex(2)}"


class Matrix:
    """Runs the matrix; `run` is the subprocess runner (replaced in unit tests). Remembers the
    pytest runs it made and the cluster they reported."""

    def __init__(
        self,
        report_dir: Path,
        log: Callable[[str], None],
        run: Runner = _run,
        run_id: str | None = None,
        cluster: str = "local",
    ) -> None:
        self.report_dir = report_dir
        self.log = log
        self.run = run
        self.run_id = run_id or new_run_id()
        self.cluster_kind = cluster
        self.pytest_runs: list[dict[str, Any]] = []
        self.cluster: dict[str, Any] | None = None
        #: report.json's cluster_logs of each pytest run, by its folder (kind: after a failure).
        self.cluster_logs: dict[str, object] = {}

    def _localcluster(self, *args: str) -> subprocess.CompletedProcess[str]:
        if self.cluster_kind == "kind" and args[:1] == ("fault",):
            args = ("kind-fault", *args[1:])
        return self.run([sys.executable, "-m", "localcluster", *args], FAULT_TIMEOUT_S)

    def _pytest(self, tests: Sequence[str], where: str, purpose: str) -> dict[str, Result]:
        directory = self.report_dir / where
        argv = [
            sys.executable,
            "-m",
            "pytest",
            f"--cluster={self.cluster_kind}",
            # kind: the cluster the matrix was given stays for the steps after it.
            *(["--keep-cluster"] if self.cluster_kind == "kind" else []),
            "--fail-on-skip",
            f"--report-dir={directory}",
            "-p",
            "no:cacheprovider",
            "-q",
            *tests,
        ]
        # Removed first: a report left by an earlier matrix must never be read as this one's.
        (directory / "report.json").unlink(missing_ok=True)
        done = self.run(argv, PYTEST_TIMEOUT_S)
        try:
            document = json.loads((directory / "report.json").read_text())
        except (OSError, ValueError):
            document = None
        if not isinstance(document, dict):
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            self.pytest_runs.append(
                {"purpose": purpose, "run_id": None, "report": None, "exit": done.returncode}
            )
            return {
                test: Result("error", None, f"no report (exit {done.returncode}): {tail}")
                for test in tests
            }
        self.pytest_runs.append(
            {
                "purpose": purpose,
                "run_id": document.get("run_id"),
                "report": f"{where}/report.html",
                "exit": done.returncode,
            }
        )
        if self.cluster is None and isinstance(document.get("cluster"), dict):
            self.cluster = document["cluster"]
        self.cluster_logs[where] = document.get("cluster_logs")
        found = {
            str(test.get("nodeid")): Result(
                str(test.get("outcome")),
                test.get("failure") if isinstance(test.get("failure"), dict) else None,
                str(test.get("message") or ""),
                test.get("evidence_dir") if isinstance(test.get("evidence_dir"), str) else None,
            )
            for test in document.get("tests") or []
        }
        return {test: found.get(test, Result("error", None, "not in the report")) for test in tests}

    def one(self, target: Target, describe: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        """Apply one fault, run its scenarios, clear it; the fault's entry of the JSON."""
        broken, how = describe.get(target.fault, ("", ""))
        entry: dict[str, Any] = {
            "fault": target.fault,
            "broken": broken,
            "how": how,
            "names": target.names,
        }
        started = time.monotonic()
        applied = self._localcluster("fault", "apply", target.fault)
        try:
            if applied.returncode != 0:
                why = failure_line(applied.stderr or applied.stdout) or "no output"
                entry.update(
                    status=catches.NOT_RUN,
                    note=why,
                    results=[
                        {"nodeid": t, "status": catches.NOT_RUN, "line": why} for t in target.tests
                    ],
                )
                self.log(f"{target.fault}: NOT RUN ({why})")
                return entry
            self.log(f"{target.fault}: applied; running {len(target.tests)} scenario(s)")
            results = []
            where = f"faults/{target.fault}"
            found = self._pytest(target.tests, where, f"fault {target.fault}")
            for test, result in found.items():
                status, line = judge(result.outcome, result.failure, target.names, result.message)
                record = claims.Failure.from_dict(result.failure)
                results.append(
                    {
                        "nodeid": test,
                        "outcome": result.outcome,
                        "kind": record.kind if record else None,
                        "exception": record.exception if record else None,
                        "status": status,
                        "line": line,
                        "report": f"{where}/report.html",
                        "evidence": (
                            f"{where}/{result.evidence_dir}" if result.evidence_dir else None
                        ),
                    }
                )
                self.log(f"{target.fault}: {status.upper()}: {test.rsplit('::', 1)[-1]}: {line}")
                if status == catches.CAUGHT:
                    # A catch must leave what a person needs to see why (suite/evidence.py).
                    problem = evidence.missing(self.report_dir / where, result.evidence_dir)
                    results[-1]["evidence_problem"] = problem
                    self.log(
                        f"{target.fault}: evidence of {test.rsplit('::', 1)[-1]}: "
                        + (f"MISSING: {problem}" if problem else str(results[-1]["evidence"]))
                    )
            if any(result["status"] == catches.CAUGHT for result in results):
                # kind: a failed run exports the cluster's logs; they must be whole.
                problem = evidence.cluster_logs_missing(
                    self.report_dir / where, self.cluster_logs.get(where)
                )
                if problem:
                    entry["cluster_logs_problem"] = problem
                    self.log(f"{target.fault}: cluster logs MISSING: {problem}")
            entry.update(status="ran", results=results)
        finally:
            cleared = self._localcluster("fault", "clear", target.fault)
            if cleared.returncode != 0:
                entry["clear_error"] = failure_line(cleared.stderr or cleared.stdout)
                self.log(f"{target.fault}: could not be cleared: {entry['clear_error']}")
            entry["duration_s"] = round(time.monotonic() - started, 1)
        return entry

    def variant(self, variant: Variant, describe: Mapping[str, str]) -> dict[str, Any]:
        """Apply one healthy variant, run its scenarios (each must pass), clear it."""
        entry: dict[str, Any] = {"variant": variant.name, "differs": describe.get(variant.name, "")}
        started = time.monotonic()
        applied = self._localcluster("variant", "apply", variant.name)
        try:
            if applied.returncode != 0:
                why = failure_line(applied.stderr or applied.stdout) or "no output"
                entry.update(
                    status=catches.NOT_RUN,
                    note=why,
                    results=[
                        {"nodeid": t, "outcome": catches.NOT_RUN, "line": why}
                        for t in variant.tests
                    ],
                )
                self.log(f"variant {variant.name}: NOT RUN ({why})")
                return entry
            self.log(f"variant {variant.name}: applied; running {len(variant.tests)} scenario(s)")
            found = self._pytest(
                variant.tests, f"variants/{variant.name}", f"variant {variant.name}"
            )
            results = []
            for test, result in found.items():
                line = "" if result.outcome == "passed" else result.line()
                results.append(
                    {
                        "nodeid": test,
                        "outcome": result.outcome,
                        "line": line,
                        "report": f"variants/{variant.name}/report.html",
                    }
                )
                extra = f": {line}" if line else ""
                self.log(
                    f"variant {variant.name}: {result.outcome.upper()}: "
                    f"{test.rsplit('::', 1)[-1]}{extra}"
                )
            every = results and all(r["outcome"] == "passed" for r in results)
            entry.update(status="passed" if every else "failed", results=results)
        finally:
            cleared = self._localcluster("variant", "clear", variant.name)
            if cleared.returncode != 0:
                entry["clear_error"] = failure_line(cleared.stderr or cleared.stdout)
                self.log(f"variant {variant.name}: could not be cleared: {entry['clear_error']}")
            entry["duration_s"] = round(time.monotonic() - started, 1)
        return entry

    def healthy(self, tests: Sequence[str]) -> dict[str, dict[str, str]]:
        """The faults' scenarios on the restored cluster: nodeid -> outcome and failure line."""
        found = self._pytest(tests, "faults/healthy", "restored cluster")
        outcomes = {}
        for test, result in found.items():
            line = "" if result.outcome == "passed" else result.line()
            outcomes[test] = {"outcome": result.outcome, "line": line}
            extra = f": {line}" if line else ""
            self.log(
                f"restored cluster: {result.outcome.upper()}: {test.rsplit('::', 1)[-1]}{extra}"
            )
        return outcomes


def _describe() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """What each fault breaks and how, and how each variant differs (and why it is valid), in
    localcluster's words."""
    from localcluster import faults, kindfaults  # late: only the runner needs them

    broken = {name: (fault.broken, fault.how) for name, fault in faults.FAULTS.items()}
    broken |= {name: (fault.broken, fault.how) for name, fault in kindfaults.FAULTS.items()}
    variants: Mapping[str, Any] = getattr(faults, "VARIANTS", None) or {}
    differs = {}
    for name, variant in variants.items():
        valid = str(getattr(variant, "valid", "") or "")
        differs[str(name)] = str(variant.how) + (f" (valid: {valid})" if valid else "")
    return broken, differs


def verdict(matrix: Mapping[str, Any], *, healthy_required: bool) -> list[str]:
    """What keeps the matrix from passing (empty: every fault caught, every variant passed, the
    restored cluster passed)."""
    problems = []
    for fault in matrix.get("faults") or []:
        if fault.get("clear_error"):
            problems.append(f"{fault['fault']} was not cleared: {fault['clear_error']}")
        if fault.get("cluster_logs_problem"):
            problems.append(
                f"{fault['fault']}: caught, but the cluster's logs were not kept "
                f"({fault['cluster_logs_problem']})"
            )
        for result in fault.get("results") or []:
            if result["status"] != catches.CAUGHT:
                problems.append(f"{fault['fault']} x {result['nodeid']}: {result['status']}")
            elif result.get("evidence_problem"):
                problems.append(
                    f"{fault['fault']} x {result['nodeid']}: caught, but its evidence is "
                    f"missing ({result['evidence_problem']})"
                )
    for variant in matrix.get("variants") or []:
        if variant.get("clear_error"):
            problems.append(
                f"variant {variant['variant']} was not cleared: {variant['clear_error']}"
            )
        if not variant.get("results"):
            problems.append(f"variant {variant['variant']}: no scenario ran")
        for result in variant.get("results") or []:
            if result["outcome"] != "passed":
                problems.append(
                    f"variant {variant['variant']} x {result['nodeid']}: {result['outcome']}"
                )
    if not matrix.get("faults") and not matrix.get("variants"):
        problems.append("no fault or variant ran")
    if healthy_required:
        problems += [
            f"restored cluster: {test} {result['outcome']}"
            for test, result in (matrix.get("healthy") or {}).items()
            if result["outcome"] != "passed"
        ]
    return problems


def write(report_dir: Path, matrix: Mapping[str, Any]) -> tuple[Path, Path]:
    """fault-matrix.json and its page, fault-matrix.html, into report_dir."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / catches.FILE
    write_atomic(json_path, json.dumps(matrix, indent=1, default=str))
    html_path = report_dir / catches.PAGE
    write_atomic(html_path, catches.render(matrix))
    return json_path, html_path


def redraw(path: Path) -> int:
    """Draw fault-matrix.html again from a saved fault-matrix.json (beside it)."""
    matrix = catches.load(path)
    if matrix is None:
        print(f"{path}: not a fault-matrix.json (missing, unreadable or not a matrix)")
        return 2
    page = path.with_name(catches.PAGE)
    write_atomic(page, catches.render(matrix))
    print(page)
    return 0


def main(argv: list[str] | None = None, run: Runner = _run) -> int:
    """Run the matrix, write fault-matrix.json and fault-matrix.html, say what was caught."""
    parser = argparse.ArgumentParser(prog="python -m suite.tools.faultmatrix", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this fault or healthy variant (repeatable); default: all of them",
    )
    parser.add_argument(
        "--healthy",
        choices=["run", "skip"],
        default="run",
        help="run: the faults' scenarios must pass on the restored cluster (default); skip: a "
        "full `pytest --cluster=local` that follows proves that",
    )
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    parser.add_argument(
        "--cluster",
        choices=["local", "kind"],
        default="local",
        help="local: the local cluster's faults and variants (default); kind: the faults that "
        "break one worker of the 3-node kind cluster `pytest --cluster=kind` uses (run after it)",
    )
    parser.add_argument(
        "--redraw",
        type=Path,
        metavar="JSON",
        help="run nothing: draw fault-matrix.html again from this fault-matrix.json",
    )
    args = parser.parse_args(argv)
    if args.redraw:
        return redraw(args.redraw)
    known = {t.fault for t in MATRIX} | {v.name for v in VARIANTS}
    unknown = sorted(set(args.only or []) - known)
    if unknown:
        print(
            f"unknown fault or variant {', '.join(unknown)}; the matrix has: "
            f"{', '.join(sorted(known))}"
        )
        return 2
    targets = [
        t for t in MATRIX if t.cluster == args.cluster and (not args.only or t.fault in args.only)
    ]
    variants = [
        v for v in VARIANTS if args.cluster == "local" and (not args.only or v.name in args.only)
    ]

    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[faultmatrix {time.monotonic() - started:6.0f}s] {text}", flush=True)

    runner = Matrix(args.report_dir, log, run, cluster=args.cluster)
    broken, differs = _describe()
    matrix: dict[str, Any] = {
        "run_id": runner.run_id,
        "provider": args.cluster,
        "started": time.time(),
        "ended": None,
        "healthy_checked": args.healthy == "run",
        "faults": [],
        "variants": [],
        "healthy": {},
    }
    log(f"run {runner.run_id}: {len(targets)} fault(s), {len(variants)} healthy variant(s)")
    finished = False
    try:
        for target in targets:
            matrix["faults"].append(runner.one(target, broken))
        for variant in variants:
            matrix["variants"].append(runner.variant(variant, differs))
        tests = sorted({test for target in targets for test in target.tests})
        if args.healthy == "run" and tests:
            matrix["healthy"] = runner.healthy(tests)
        finished = True
    finally:
        matrix.update(
            ended=time.time(),
            duration_s=round(time.monotonic() - started, 1),
            cluster=runner.cluster,
            pytest_runs=runner.pytest_runs,
        )
        matrix["problems"] = verdict(matrix, healthy_required=args.healthy == "run")
        if not finished:
            matrix["problems"].append("the matrix stopped before its end (see its log)")
        json_path, html_path = write(args.report_dir, matrix)
        log(f"wrote {json_path} and {html_path}")
    for problem in matrix["problems"]:
        log(f"NOT PROVEN: {problem}")
    outcome = (
        f"{len(matrix['problems'])} problem(s)"
        if matrix["problems"]
        else "every fault caught, every variant passed"
    )
    log(f"run {runner.run_id}: {outcome} in {matrix['duration_s']:.0f}s")
    return 1 if matrix["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

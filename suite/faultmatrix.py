"""The fault matrix: proof that the scenarios catch broken clusters, for the right reason.

`python -m suite.faultmatrix` (root, with the local cluster up) runs, for each named fault of
`localcluster.faults`: apply it (`python -m localcluster fault apply NAME`), run only the scenarios
that target it (`pytest --cluster=local ...`), require each to FAIL with a message naming the broken
part, and clear the fault again (also on errors and Ctrl-C). Then, with every fault cleared, the
targeted scenarios run once more on the restored cluster and must pass (`--healthy=skip` leaves
that to a full `pytest --cluster=local` run that follows, as `.ci/run` does).

It writes `reports/fault-matrix.json`; a report written afterwards in the same directory shows it
as "what this suite catches", and an existing report.json/report.html there is redrawn with it.
Exit status 0 only when every fault was applied and caught by every scenario it targets (and the
restored cluster passed them, unless skipped). A fault that cannot be applied here is reported as
"not run", never as caught.

The targets are chosen to keep the matrix near 10 minutes on 2 cores: each fault runs the one
scenario that proves the broken part's behaviour, not every scenario.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.report import catches

SCENARIOS = "suite/scenarios"
LOAD_BALANCING = (
    f"{SCENARIOS}/test_load_balancing.py::test_service_spreads_new_connections_over_every_replica"
)
SELF_HEALING = (
    f"{SCENARIOS}/test_self_healing.py::"
    "test_infected_pod_is_restarted_while_the_service_keeps_answering"
)
AUTOSCALING = (
    f"{SCENARIOS}/test_autoscaling.py::test_cpu_load_scales_the_deployment_out_and_back_in"
)
ROLLING_UPDATE = (
    f"{SCENARIOS}/test_rolling_update.py::"
    "test_rolling_update_replaces_every_pod_without_a_failed_request"
)

#: Exit status of `python -m localcluster fault apply` for a fault that cannot be applied here.
NOT_APPLICABLE = 3
#: Bounds of the subprocesses: a fault is applied or cleared in seconds (metrics-server needs two
#: scrapes, 15 s each, to be ready again); one targeted scenario fails within its own deadlines.
FAULT_TIMEOUT_S = 240
PYTEST_TIMEOUT_S = 900


@dataclass(frozen=True)
class Target:
    """A fault, the scenarios that must catch it, and the words their failure must contain."""

    fault: str
    tests: tuple[str, ...]
    names: str  # a regular expression naming the broken part


MATRIX: tuple[Target, ...] = (
    Target("service-routing-stopped", (LOAD_BALANCING,), r"kube-proxy|service proxy"),
    Target("service-routing-late", (SELF_HEALING,), r"kube-proxy|service proxy"),
    Target(
        "hpa-controller-off",
        (AUTOSCALING,),
        r"horizontal-pod-autoscaler|HorizontalPodAutoscaler controller|HPA controller",
    ),
    Target("deployment-controller-off", (ROLLING_UPDATE,), r"deployment controller"),
    Target("metrics-api-gone", (AUTOSCALING,), r"metrics API|metrics-server"),
)


CHAIN_MARKERS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)


def failure_line(message: str) -> str:
    """The line a failure is known by: the first `E   ...` lines of a traceback (the exception and
    its message; of the last exception of a chain), else the first non-empty line."""
    # With chained exceptions the traceback shows the cause first: the last one raised counts.
    for marker in CHAIN_MARKERS:
        message = message.rsplit(marker, 1)[-1]
    lines = [line.rstrip() for line in message.splitlines()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    if errors:
        return " ".join(errors[:3])[:600]
    return next((line.strip() for line in lines if line.strip()), "")[:600]


def judge(outcome: str, message: str, names: str) -> tuple[str, str]:
    """(status, line) of one targeted scenario under a fault: caught only when it did not pass
    AND its failure names the broken part."""
    line = failure_line(message)
    if outcome in ("failed", "error") and re.search(names, message, re.IGNORECASE):
        return "caught", line
    if outcome in ("failed", "error"):
        return "missed", f"failed without naming the broken part ({names}): {line}"
    return "missed", f"{outcome}: the scenario did not fail under the fault"


def _outcomes(report: Path) -> dict[str, tuple[str, str]]:
    try:
        document = json.loads(report.read_text())
    except (OSError, ValueError):
        return {}
    return {
        str(test["nodeid"]): (str(test.get("outcome")), str(test.get("message") or ""))
        for test in document.get("tests") or []
    }


Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {error.timeout}s")


class Matrix:
    """Runs the matrix; `run` is the subprocess runner (replaced in unit tests)."""

    def __init__(self, report_dir: Path, log: Callable[[str], None], run: Runner = _run) -> None:
        self.report_dir = report_dir
        self.log = log
        self.run = run

    def _localcluster(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "localcluster", "fault", *args], FAULT_TIMEOUT_S)

    def _pytest(self, tests: Sequence[str], name: str) -> dict[str, tuple[str, str]]:
        directory = self.report_dir / "faults" / name
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "--cluster=local",
            "--fail-on-skip",
            f"--report-dir={directory}",
            "-p",
            "no:cacheprovider",
            "-q",
            *tests,
        ]
        (directory / "report.json").unlink(missing_ok=True)
        done = self.run(argv, PYTEST_TIMEOUT_S)
        found = _outcomes(directory / "report.json")
        if not found:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            return {test: ("error", "no report: " + " | ".join(tail)) for test in tests}
        return {test: found.get(test, ("error", "not in the report")) for test in tests}

    def one(self, target: Target, describe: dict[str, tuple[str, str]]) -> dict[str, Any]:
        """Apply one fault, run its scenarios, clear it; the fault's entry of the JSON."""
        broken, how = describe.get(target.fault, ("", ""))
        entry: dict[str, Any] = {"fault": target.fault, "broken": broken, "how": how}
        started = time.monotonic()
        applied = self._localcluster("apply", target.fault)
        try:
            if applied.returncode != 0:
                why = failure_line(applied.stderr or applied.stdout) or "no output"
                entry.update(
                    status="not run",
                    note=why,
                    results=[{"nodeid": t, "status": "not run", "line": why} for t in target.tests],
                )
                self.log(f"{target.fault}: NOT RUN ({why})")
                return entry
            self.log(f"{target.fault}: applied; running {len(target.tests)} scenario(s)")
            results = []
            for test, (outcome, message) in self._pytest(target.tests, target.fault).items():
                status, line = judge(outcome, message, target.names)
                results.append({"nodeid": test, "outcome": outcome, "status": status, "line": line})
                self.log(f"{target.fault}: {status.upper()}: {test.rsplit('::', 1)[-1]}: {line}")
            entry.update(status="ran", results=results)
        finally:
            cleared = self._localcluster("clear", target.fault)
            if cleared.returncode != 0:
                entry["clear_error"] = failure_line(cleared.stderr or cleared.stdout)
                self.log(f"{target.fault}: could not be cleared: {entry['clear_error']}")
            entry["duration_s"] = round(time.monotonic() - started, 1)
        return entry

    def healthy(self, tests: Sequence[str]) -> dict[str, str]:
        """The targeted scenarios on the restored cluster: nodeid -> outcome."""
        found = self._pytest(tests, "healthy")
        for test, (outcome, message) in found.items():
            extra = "" if outcome == "passed" else f": {failure_line(message)}"
            self.log(f"restored cluster: {outcome.upper()}: {test.rsplit('::', 1)[-1]}{extra}")
        return {test: outcome for test, (outcome, _) in found.items()}


def _describe_faults() -> dict[str, tuple[str, str]]:
    from localcluster import faults  # late: only the runner needs the local cluster package

    return {name: (fault.broken, fault.how) for name, fault in faults.FAULTS.items()}


def verdict(matrix: dict[str, Any], *, healthy_required: bool) -> list[str]:
    """What keeps the matrix from passing (empty: every fault caught, restored cluster passed)."""
    problems = []
    for fault in matrix["faults"]:
        if fault.get("clear_error"):
            problems.append(f"{fault['fault']} was not cleared: {fault['clear_error']}")
        for result in fault.get("results") or []:
            if result["status"] != "caught":
                problems.append(f"{fault['fault']} x {result['nodeid']}: {result['status']}")
    if not matrix["faults"]:
        problems.append("no fault ran")
    if healthy_required:
        problems += [
            f"restored cluster: {t} {o}" for t, o in matrix["healthy"].items() if o != "passed"
        ]
    return problems


def redraw_report(report_dir: Path, matrix: dict[str, Any]) -> Path | None:
    """Put the matrix into an existing report.json there, and draw report.html again."""
    path = report_dir / "report.json"
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    from suite.report import render_html_or_fallback

    document["catches"] = matrix
    path.write_text(json.dumps(document, default=str, indent=1))
    html = report_dir / "report.html"
    html.write_text(render_html_or_fallback(document))
    return html


def main(argv: list[str] | None = None) -> int:
    """Run the matrix, write fault-matrix.json, and say what was caught."""
    parser = argparse.ArgumentParser(prog="python -m suite.faultmatrix", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        metavar="FAULT",
        help="run only this fault (repeatable); default: every fault of the matrix",
    )
    parser.add_argument(
        "--healthy",
        choices=["run", "skip"],
        default="run",
        help="run: the targeted scenarios must pass on the restored cluster (default); skip: a "
        "full `pytest --cluster=local` that follows proves that",
    )
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    known = {target.fault for target in MATRIX}
    unknown = sorted(set(args.only or []) - known)
    if unknown:
        print(f"unknown fault(s) {', '.join(unknown)}; the matrix has: {', '.join(sorted(known))}")
        return 2
    targets = [t for t in MATRIX if not args.only or t.fault in args.only]

    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[faultmatrix {time.monotonic() - started:6.0f}s] {text}", flush=True)

    runner = Matrix(args.report_dir, log)
    describe = _describe_faults()
    matrix: dict[str, Any] = {"started": time.time(), "faults": [], "healthy": {}}
    try:
        for target in targets:
            matrix["faults"].append(runner.one(target, describe))
        if args.healthy == "run":
            tests = sorted({test for target in targets for test in target.tests})
            matrix["healthy"] = runner.healthy(tests)
    finally:
        matrix["duration_s"] = round(time.monotonic() - started, 1)
        args.report_dir.mkdir(parents=True, exist_ok=True)
        (args.report_dir / catches.FILE).write_text(json.dumps(matrix, indent=1))
        redrawn = redraw_report(args.report_dir, matrix)
        log(
            f"wrote {args.report_dir / catches.FILE}"
            + (f" and redrew {redrawn}" if redrawn else "")
        )
    problems = verdict(matrix, healthy_required=args.healthy == "run")
    for problem in problems:
        log(f"NOT PROVEN: {problem}")
    outcome = f"{len(problems)} problem(s)" if problems else "every fault caught"
    log(f"{outcome} in {matrix['duration_s']:.0f}s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

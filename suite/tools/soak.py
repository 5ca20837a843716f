"""The soak: the scenario set N times in a row on a warm cluster, and a table of how steady it was.

`scripts/soak N` (or `python -m suite.tools.soak N`) runs `pytest --cluster=local <the set>` N
times, one run after the other, each as its own pytest process with its own run id and report
directory, and writes after every run (so the table of the runs so far is always on disk):

- `soak.md`: pass/fail per test per run, each failure's line, and the spread (min-max across
  runs) of every figure each test records and of its duration;
- `soak.json`: the same, for tools (each run's full report.json stays in its run directory).

Which tests (`--set`): `behaviours` (default) is every behaviour's scenario (`suite.behaviours`):
the claims whose figures vary run to run and could flake. The other e2e tests, in
suite/scenarios, are left out: the preflight and RBAC checks and
the demo's manifests ask the API server questions whose answers do not vary between runs, the
interrupt test starts its own pytest and Ctrl-Cs it (a soak inside the soak), and the browser
tests need Chromium and prove the page, not the cluster. `--set e2e` runs those too.
Arguments after `--` go to pytest; a path or node id among them replaces the set.

Ctrl-C (or SIGTERM): the running pytest gets one SIGINT (it runs in its own process group, so
a terminal's Ctrl-C reaches it only through the soak, exactly once), which makes it delete its
test namespaces and write its report; the soak waits for that (bounded, else it kills it),
marks the run interrupted, writes the table of the runs so far, and stops. Further Ctrl-Cs
while it stops are ignored, so the table and the namespace check always happen.

At the end, interrupted or not, the soak checks the cluster itself: every namespace of its
runs (labelled with their run ids, see suite/naming.py) must be gone; any still alive is
deleted, and the soak waits until none is left and says so. Exit status: 0 when every test of
every run passed and no namespace was left; 2 when interrupted; 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from suite import behaviours, naming
from suite.files import write_atomic
from suite.providers import provider_classes
from suite.settings import report_dir_problem
from suite.tools.reading import failure_line, scalar_figures

#: The other e2e tests: preflight, the frontend and its RBAC, the demo's manifests, interrupts.
SCENARIOS = "suite/scenarios"
SETS: dict[str, tuple[str, ...]] = {
    "behaviours": tuple(behaviour.path for behaviour in behaviours.ALL),
    "e2e": (*(behaviour.path for behaviour in behaviours.ALL), SCENARIOS),
}
REPO = Path(__file__).resolve().parents[2]
#: One run of the behaviour set takes about 3 minutes on 2 cores (autoscaling alone 1.5); the
#: whole e2e set about 6. A run that is still going after this is stopped like a Ctrl-C.
RUN_TIMEOUT_S = 1800.0
#: After SIGINT pytest tears the test's fixtures down, deletes its namespaces (an API call each)
#: and writes its report: seconds; its own backstops bound the teardown.
EXIT_DEADLINE_S = 90.0
#: Namespace deletion: pods get their grace period (10 s for getip and the prober), then the
#: namespace controller removes the rest (suite/scenarios/test_interrupt.py waits as long).
GONE_DEADLINE_S = 120.0
#: pytest's exit status for an interrupted session.
INTERRUPTED = 2


# ---------------------------------------------------------------------------------------------
# The table: plain data in, markdown and JSON out (no processes, no cluster)


#: A figure's name: snake_case with at least one underscore (`total_s`, `p_value`). Keys of
#: nested maps that are not (pod, node or version names: `getip-54cf8-x2`, `kube-alive`, `v1`)
#: change from run to run or say nothing across runs.
def run_entry(
    *,
    number: int,
    run_id: str,
    report: Mapping[str, Any] | None,
    exitstatus: int | None,
    interrupted: bool,
    duration_s: float,
    report_dir: str,
    note: str = "",
) -> dict[str, Any]:
    """One run of the soak, from its pytest's report.json (None: it wrote none)."""
    tests: dict[str, dict[str, Any]] = {}
    for test in (report or {}).get("tests") or []:
        outcome = str(test.get("outcome") or "unknown")
        message = str(test.get("message") or test.get("skip_reason") or "")
        tests[str(test["nodeid"])] = {
            "outcome": outcome,
            "duration_s": test.get("duration_s"),
            "figures": scalar_figures(test.get("figures")),
            "line": failure_line(message) if outcome != "passed" else "",
        }
    return {
        "run": number,
        "run_id": run_id,
        "exitstatus": exitstatus,
        "interrupted": interrupted,
        "duration_s": round(duration_s, 1),
        "report_dir": report_dir,
        "note": note,
        "tests": tests,
    }


def counts(runs: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Test outcomes over all runs: passed, failed (failed or error), other."""
    total = {"passed": 0, "failed": 0, "other": 0}
    for run in runs:
        for test in run["tests"].values():
            outcome = test["outcome"]
            key = (
                outcome
                if outcome == "passed"
                else "failed"
                if outcome in ("failed", "error")
                else "other"
            )
            total[key] += 1
    return total


def spread(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per test and figure (and its duration): min, max and in how many runs it was recorded.
    A failed run's figures count too: they are what was measured; a test cut short by Ctrl-C
    (outcome unknown) measured nothing whole."""
    values: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for nodeid, test in run["tests"].items():
            if test["outcome"] == "unknown":
                continue
            measured = dict(test["figures"])
            if test.get("duration_s") is not None:
                measured["duration_s"] = float(test["duration_s"])
            for figure, value in measured.items():
                values.setdefault((nodeid, figure), []).append(value)
    return [
        {"nodeid": nodeid, "figure": figure, "min": min(v), "max": max(v), "runs": len(v)}
        for (nodeid, figure), v in sorted(values.items())
    ]


def _short(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1] + (
        "::" + nodeid.split("::", 1)[1] if "::" in nodeid else ""
    )


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def _cell(outcome: str | None) -> str:
    return {
        None: "-",
        "passed": "pass",
        "failed": "**FAIL**",
        "error": "**ERROR**",
        "skipped": "skip",
    }.get(outcome, outcome or "-")


def markdown(soak: Mapping[str, Any]) -> str:
    """soak.md: what ran, pass/fail per test per run, failures, figures' spread, namespaces."""
    runs: list[Mapping[str, Any]] = soak["runs"]
    total = counts(runs)
    done = sum(1 for run in runs if not run["interrupted"])
    lines = [
        f"# Soak {soak['soak_id']}: {soak['planned']} run(s) of `{' '.join(soak['pytest_args'])}`",
        "",
        f"- started {soak['started_utc']}, {soak['elapsed_s']:.0f} s so far; "
        f"{done} of {soak['planned']} run(s) complete"
        + (", then interrupted (Ctrl-C)" if soak.get("interrupted") else ""),
        f"- tests: {total['passed']} passed, {total['failed']} failed, {total['other']} other "
        "(skipped, or cut short by Ctrl-C)",
        "- namespaces of this soak left on the cluster: "
        + (soak.get("namespaces") or "not checked yet"),
        "",
        "## Pass/fail per test per run",
        "",
    ]
    header = [f"{run['run']}" + (" (interrupted)" if run["interrupted"] else "") for run in runs]
    lines.append("| test | " + " | ".join(header) + " | passed |")
    lines.append("| --- |" + " --- |" * len(runs) + " --- |")
    nodeids = sorted({nodeid for run in runs for nodeid in run["tests"]})
    for nodeid in nodeids:
        cells = []
        for run in runs:
            test = run["tests"].get(nodeid)
            outcome = test["outcome"] if test else None
            if run["interrupted"] and outcome in (None, "unknown"):
                cells.append("interrupted")
            else:
                cells.append(_cell(outcome))
        passed = sum(
            1 for run in runs if (run["tests"].get(nodeid) or {}).get("outcome") == "passed"
        )
        lines.append(f"| {_short(nodeid)} | " + " | ".join(cells) + f" | {passed}/{len(runs)} |")
    lines.append(
        "| *pytest exit status* | "
        + " | ".join("-" if run["exitstatus"] is None else str(run["exitstatus"]) for run in runs)
        + " | |"
    )
    lines.append(
        "| *run wall s* | " + " | ".join(f"{run['duration_s']:.0f}" for run in runs) + " | |"
    )
    problems = [
        f"- run {run['run']}, {_short(nodeid)}: {test['outcome']}: {test['line']}"
        for run in runs
        for nodeid, test in sorted(run["tests"].items())
        if test["outcome"] not in ("passed", "unknown")
    ] + [f"- run {run['run']}: {run['note']}" for run in runs if run["note"]]
    if problems:
        lines += ["", "## Failures and notes", "", *problems]
    rows = spread(runs)
    if rows:
        lines += [
            "",
            "## Spread of each test's figures (min-max across runs)",
            "",
            "| test | figure | min | max | runs |",
            "| --- | --- | --- | --- | --- |",
        ]
        previous = ""
        for row in rows:
            name = _short(row["nodeid"]) if row["nodeid"] != previous else ""
            previous = row["nodeid"]
            lines.append(
                f"| {name} | {row['figure']} | {_number(row['min'])} | {_number(row['max'])} "
                f"| {row['runs']} |"
            )
    return "\n".join(lines) + "\n"


def write(directory: Path, soak: dict[str, Any]) -> tuple[Path, Path]:
    """soak.json and soak.md in `directory`; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    document = dict(soak, counts=counts(soak["runs"]), spread=spread(soak["runs"]))
    json_path = directory / "soak.json"
    write_atomic(json_path, json.dumps(document, indent=1, default=str))
    md_path = directory / "soak.md"
    write_atomic(md_path, markdown(soak))
    return json_path, md_path


# ---------------------------------------------------------------------------------------------
# Running: pytest processes, Ctrl-C, the namespace check


def pytest_args(chosen: str, extra: Sequence[str]) -> list[str]:
    """What follows `pytest --cluster=...`: the set's files, unless `extra` names a path or
    node id (then `extra` alone chooses the tests)."""
    names_tests = any(
        "::" in arg or (not arg.startswith("-") and (REPO / arg).exists()) for arg in extra
    )
    return list(extra) if names_tests else [*SETS[chosen], *extra]


def soak_selector(run_ids: Iterable[str]) -> str:
    """The label selector of every namespace of these runs."""
    return (
        f"{naming.PART_OF_LABEL}={naming.PART_OF},"
        f"{naming.RUN_ID_LABEL} in ({','.join(sorted(run_ids))})"
    )


class Child(Protocol):
    """The part of `subprocess.Popen` the soak uses (replaced in unit tests)."""

    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


Launch = Callable[[list[str], dict[str, str], Path], Child]
#: Given the run ids, make sure none of their namespaces is left; one line saying what was found.
CheckNamespaces = Callable[[list[str], list[Mapping[str, Any]]], tuple[bool, str]]


def _launch(argv: list[str], env: dict[str, str], log_path: Path) -> Child:
    with log_path.open("w") as sink:
        # Its own process group: a terminal's Ctrl-C reaches the soak only, which passes exactly
        # one SIGINT on (a second one would cut pytest's namespace sweep short).
        return subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, process_group=0
        )


@dataclass
class Soak:
    """N runs of pytest; `launch` and `check_namespaces` are replaced in unit tests."""

    planned: int
    argv: list[str]  # pytest's arguments after `python -m pytest`, without --report-dir
    directory: Path
    log: Callable[[str], None]
    launch: Launch = _launch
    check_namespaces: CheckNamespaces | None = None
    run_timeout_s: float = RUN_TIMEOUT_S
    exit_deadline_s: float = EXIT_DEADLINE_S
    soak_id: str = field(default_factory=lambda: secrets.token_hex(2))

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        #: Every run id handed to a pytest, also one whose entry a Ctrl-C cut short: the check
        #: covers them all.
        self.run_ids: list[str] = []
        self.running: Child | None = None
        self.document: dict[str, Any] = {
            "soak_id": self.soak_id,
            "planned": self.planned,
            "pytest_args": self.argv,
            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "elapsed_s": 0.0,
            "interrupted": False,
            "namespaces": "",
            "runs": [],
        }

    def run_id(self, number: int) -> str:
        """The pytest run id of run `number` (namespaces ka-<run id>-...)."""
        return f"{self.soak_id}r{number}"

    def save(self) -> Path:
        """Write the table of the runs so far; the markdown's path."""
        self.document["elapsed_s"] = round(time.monotonic() - self.started, 1)
        return write(self.directory, self.document)[1]

    def _stop(self, child: Child, why: str) -> tuple[int | None, str]:
        """SIGINT to the running pytest, wait for its sweep, else kill it."""
        self.log(
            f"{why}: SIGINT to pytest, waiting up to {self.exit_deadline_s:.0f}s for it to "
            "delete its namespaces and write its report"
        )
        child.send_signal(signal.SIGINT)
        try:
            return child.wait(timeout=self.exit_deadline_s), ""
        except subprocess.TimeoutExpired:
            child.kill()
            status = child.wait(timeout=30)
            return (
                status,
                f"pytest did not exit within {self.exit_deadline_s:.0f}s of SIGINT: killed",
            )

    def one(self, number: int) -> bool:
        """Run pytest once; add its entry; False when interrupted."""
        run_dir = self.directory / f"run-{number:02d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        run_id = self.run_id(number)
        env = dict(os.environ)
        env[naming.RUN_ID_ENV] = run_id
        argv = [
            sys.executable,
            "-m",
            "pytest",
            *self.argv,
            f"--report-dir={run_dir}",
            "-p",
            "no:cacheprovider",
        ]
        self.log(f"run {number}/{self.planned} started (run id {run_id}, log {run_dir}/pytest.log)")
        began = time.monotonic()
        self.run_ids.append(run_id)
        child = self.running = self.launch(argv, env, run_dir / "pytest.log")
        interrupted = False
        note = ""
        try:
            status: int | None = child.wait(timeout=self.run_timeout_s)
        except KeyboardInterrupt:
            interrupted = True
            _ignore_interrupts(self.log)
            status, note = self._stop(child, f"run {number}: Ctrl-C (further Ctrl-C ignored)")
        except subprocess.TimeoutExpired:
            status, note = self._stop(child, f"run {number}: over {self.run_timeout_s:.0f}s")
            note = f"still running after {self.run_timeout_s:.0f}s: stopped; {note}".rstrip("; ")
        self.running = None
        report = _read_json(run_dir / "report.json")
        if report is None:
            tail = " | ".join(_tail(run_dir / "pytest.log", 4))
            note = (note + "; " if note else "") + f"no report.json; pytest said: {tail}"
        entry = run_entry(
            number=number,
            run_id=run_id,
            report=report,
            exitstatus=status,
            interrupted=interrupted,
            duration_s=time.monotonic() - began,
            report_dir=str(run_dir),
            note=note,
        )
        self.document["runs"].append(entry)
        self.document["interrupted"] = interrupted
        self.save()
        self.log(self._progress(entry))
        return not interrupted

    def _progress(self, entry: Mapping[str, Any]) -> str:
        mine = counts([entry])
        total = counts(self.document["runs"])
        state = "INTERRUPTED" if entry["interrupted"] else "done"
        line = (
            f"run {entry['run']}/{self.planned} {state} in {entry['duration_s']:.0f}s "
            f"(pytest exit {entry['exitstatus']}): {mine['passed']} passed, {mine['failed']} failed"
            f"; so far {total['passed']} passed, {total['failed']} failed, "
            f"{total['other']} other over {len(self.document['runs'])} run(s)"
        )
        failing = [
            f"\n    {test['outcome'].upper()} {_short(nodeid)}: {test['line'][:200]}"
            for nodeid, test in sorted(entry["tests"].items())
            if test["outcome"] in ("failed", "error")
        ]
        return line + "".join(failing) + (f"\n    note: {entry['note']}" if entry["note"] else "")

    def all(self) -> int:
        """Every run (or until Ctrl-C), then the namespace check; the exit status."""
        completed = True
        try:
            for number in range(1, self.planned + 1):
                if not self.one(number):
                    completed = False
                    break
        except KeyboardInterrupt:  # outside a run's wait: between runs, or while reading one
            _ignore_interrupts(self.log)
            completed = False
            self.document["interrupted"] = True
            if self.running is not None:
                self._stop(self.running, "Ctrl-C while a pytest was starting")
            else:
                self.log("Ctrl-C between runs: no pytest was running")
        ok_namespaces = self._namespaces()
        path = self.save()
        total = counts(self.document["runs"])
        self.log(f"table: {path} (and {path.with_suffix('.json').name})")
        self.log(
            f"{len(self.document['runs'])} run(s), {total['passed']} passed, {total['failed']} "
            f"failed, {total['other']} other; namespaces: {self.document['namespaces']}"
        )
        if not completed:
            return INTERRUPTED
        return 0 if ok_namespaces and total["failed"] == total["other"] == 0 else 1

    def _namespaces(self) -> bool:
        run_ids = self.run_ids
        if not run_ids:
            self.document["namespaces"] = "none: no run started"
            return True
        if self.check_namespaces is None:
            self.document["namespaces"] = "not checked"
            return True
        self.log(f"checking that no namespace of run(s) {', '.join(run_ids)} is left ...")
        try:
            ok, line = self.check_namespaces(run_ids, self.document["runs"])
        except Exception as error:  # the table must still be written; say why it is unknown
            ok, line = False, f"could not check: {type(error).__name__}: {error}"
        self.document["namespaces"] = line
        self.log(f"namespaces: {line}")
        return ok


def _ignore_interrupts(log: Callable[[str], None]) -> None:
    def ignored(signum: int, frame: FrameType | None) -> None:
        log(f"signal {signum} ignored: stopping already (bounded), then the table and the check")

    signal.signal(signal.SIGINT, ignored)
    signal.signal(signal.SIGTERM, ignored)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _tail(path: Path, count: int) -> list[str]:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ["(no output)"]
    return [line for line in lines if line][-count:] or ["(no output)"]


def _kubeconfig(cluster: str, runs: Sequence[Mapping[str, Any]]) -> tuple[Path | None, str | None]:
    """The cluster the runs used, as their reports name it; for --cluster=local, its own."""
    for run in runs:
        report = _read_json(Path(run["report_dir"]) / "report.json") or {}
        info = report.get("cluster") or {}
        if info.get("kubeconfig"):
            return Path(info["kubeconfig"]), info.get("context")
    if cluster == "local":
        from suite.providers.local import localcluster_api

        return localcluster_api().kubeconfig_path(), None
    return None, None


def cluster_check(cluster: str) -> CheckNamespaces:
    """The real check: list the runs' namespaces, delete any still alive, wait until none is
    left (GONE_DEADLINE_S)."""

    def check(run_ids: list[str], runs: list[Mapping[str, Any]]) -> tuple[bool, str]:
        from suite import namespaces
        from suite.kube import NAMESPACES, ApiKube, is_terminating, list_objects, name_of
        from suite.waiting import WaitFailed
        from suite.waits import wait_namespaces_gone

        kubeconfig, context = _kubeconfig(cluster, runs)
        selector = soak_selector(run_ids)
        kube = ApiKube.from_kubeconfig(kubeconfig, context, pool_size=4)
        found, _ = list_objects(kube, NAMESPACES, label_selector=selector)
        alive = sorted(name_of(ns) for ns in found if not is_terminating(ns))
        swept = namespaces.sweep(kube, selector) if alive else []
        try:
            wait_namespaces_gone(kube, selector, timeout_s=GONE_DEADLINE_S)
        except WaitFailed as error:
            return False, f"STILL THERE after {GONE_DEADLINE_S:.0f}s: {str(error)[:400]}"
        how = f"`kubectl get namespaces -l '{selector}'` finds none"
        if swept:
            left = f"pytest had left {len(swept)} alive ({', '.join(swept)}), deleted by the soak"
            return True, f"none now ({left}); {how}"
        waited = f" ({len(found)} still terminating, waited until gone)" if found else ""
        return True, f"none{waited}; {how}"

    return check


def main(argv: list[str] | None = None) -> int:
    """Parse, run the soak, write the table; the exit status."""
    parser = argparse.ArgumentParser(
        prog="scripts/soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples: scripts/soak 20; "
        "scripts/soak 2 -- suite/behaviours/load_balancing/test_load_balancing.py; "
        "scripts/soak 3 --set e2e",
    )
    parser.add_argument("runs", type=int, metavar="N", help="how many runs, one after the other")
    parser.add_argument(
        "--set",
        dest="chosen",
        choices=list(SETS),
        default="behaviours",
        help="behaviours: the four behaviour scenarios (default); e2e: all of suite/scenarios "
        "(adds preflight, RBAC, demo manifests, the interrupt test and the browser tests)",
    )
    parser.add_argument(
        "--cluster",
        choices=list(provider_classes()),
        default="local",
        help="pytest's --cluster (default local; the cluster should "
        "be up already: the soak measures a warm cluster)",
    )
    parser.add_argument(
        "--report-dir",
        dest="report_dir_given",
        default=str(REPO / "reports" / "soak"),
        help="the soak's directory goes in here (default reports/soak/)",
    )
    parser.add_argument(
        "pytest_extra",
        nargs="*",
        metavar="-- PYTEST-ARGS",
        help="passed to pytest; a path or node id among them replaces the set",
    )
    given = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is pytest's, wherever the soak's own options stand (argparse alone
    # refuses `N --cluster=kind -- PATH`: it fills the positionals before it sees the options).
    after: list[str] = []
    if "--" in given:
        cut = given.index("--")
        given, after = given[:cut], given[cut + 1 :]
    args = parser.parse_args(given)
    args.pytest_extra = [*args.pytest_extra, *after]
    if args.runs < 1:
        parser.error("N must be at least 1")
    if not args.report_dir_given.strip():
        parser.error(
            "--report-dir= is empty: give a directory, or leave the option out for reports/soak/"
        )
    args.report_dir = Path(args.report_dir_given).expanduser()
    problem = report_dir_problem(args.report_dir)
    if problem:
        parser.error(problem)
    chosen = [f"--cluster={args.cluster}", *pytest_args(args.chosen, args.pytest_extra)]

    began = time.monotonic()

    def log(text: str) -> None:
        elapsed = int(time.monotonic() - began)
        print(f"[soak {elapsed // 60:3d}m{elapsed % 60:02d}s] {text}", flush=True)

    soak_id = secrets.token_hex(2)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    directory = args.report_dir / f"{stamp}-{soak_id}"
    soak = Soak(
        args.runs,
        chosen,
        directory,
        log,
        check_namespaces=cluster_check(args.cluster),
        soak_id=soak_id,
    )
    # Ctrl-C and SIGTERM alike; installed explicitly, so a soak started in the background of a
    # script (where SIGINT is inherited as ignored) still stops cleanly on `kill -INT`.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    log(
        f"soak {soak.soak_id}: {args.runs} run(s) of pytest {' '.join(chosen)}; "
        f"into {soak.directory}"
    )
    return soak.all()


if __name__ == "__main__":
    sys.exit(main())

"""Side by side: do scenarios keep their figures while the autoscaling load runs beside them?

Under `pytest -n 2` the autoscaling scenario's CPU load can share the machine with any other
scenario. `python -m suite.tools.sidebyside TEST...` proves that it does not distort their timing:

1. it runs the given tests alone (one pytest, serially): their figures *alone*;
2. for each test, it starts the autoscaling scenario and, `--delay` seconds later (when the load
   is about to begin), that test in a second pytest: its figures *beside the load*;
3. it reads the load's window ("load start" to "load stopped") from the autoscaling run's
   recording and each test's window from its own, and prints one table: every timing figure
   alone and beside, with how many seconds of the test overlapped the load.

A pairing whose test did not overlap the load proves nothing and is marked so. It writes
`<out>/side-by-side.md` and `.json`; the exit status is 0 when every run passed and every test
overlapped the load. It needs a running cluster (`--cluster`, default local) and takes about a
minute per test.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from suite import floors
from suite.behaviours.autoscaling import BEHAVIOUR as AUTOSCALING
from suite.files import write_atomic
from suite.providers import provider_classes
from suite.settings import report_dir_problem
from suite.tools.reading import scalar_figures

#: The autoscaling run starts its load about this long after pytest starts on a warm local
#: cluster (session start, namespace, prober, cpuhog Ready, first CPU reading); the test beside
#: it needs a few seconds to deploy before its own traffic begins.
DEFAULT_DELAY_S = 15.0
#: Figures that are bounds the scenario states, not measurements: left out of the comparison.
STATED_SUFFIXES = ("_deadline_s", "_bound_s", "_earliest_s", "floor.total_s")
STATED = {"replicas", "max_surge", "max_unavailable", "requests", "share_bound_pp"}
PYTEST_TIMEOUT_S = 900


def _pytest(cluster: str, tests: Sequence[str], report_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        f"--cluster={cluster}",
        *tests,
        f"--report-dir={report_dir}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]


def _report(directory: Path) -> dict[str, Any]:
    try:
        document = json.loads((directory / "report.json").read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"side-by-side: no report.json in {directory}: {error}") from error
    return document if isinstance(document, dict) else {}


def window(
    test: Mapping[str, Any], first: str | None = None, last: str | None = None
) -> tuple[float, float] | None:
    """Wall-clock window of a test from its recording's marks: from the mark labelled `first`
    (else the first mark) to the one labelled `last` (else the last mark)."""
    marks = ((test.get("recording") or {}).get("marks")) or []
    if not marks:
        return None

    def at(label: str | None, default: Mapping[str, Any]) -> float | None:
        if label is None:
            return float(default["wall"])
        found = [m for m in marks if m.get("label") == label]
        return float(found[-1]["wall"]) if found else None

    start, end = at(first, marks[0]), at(last, marks[-1])
    return None if start is None or end is None else (start, end)


def overlap_s(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float:
    """Seconds two windows share (0 when either is missing)."""
    if a is None or b is None:
        return 0.0
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def measured(test: Mapping[str, Any]) -> dict[str, float]:
    """The timing figures of a test worth comparing: its duration, its multiple of its floor,
    and every scalar figure that is a measurement (not a bound it states)."""
    found = {
        key: value
        for key, value in scalar_figures(test.get("figures")).items()
        if key not in STATED and not key.endswith(STATED_SUFFIXES)
    }
    duration = float(test.get("duration_s") or 0.0)
    found["duration_s"] = round(duration, 1)
    body = test.get("call_s")
    body_s = float(body) if body is not None else duration
    floor = floors.floor_of(test.get("figures") or {})
    times = floors.multiple(body_s, floor) if floor else None
    if times is not None:
        found["x_floor"] = times
    return found


def _by_id(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(t["nodeid"]): t for t in report.get("tests") or []}


def compare(
    alone: Mapping[str, Any], pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
) -> dict[str, Any]:
    """The comparison from the alone report and (load report, beside report) pairs."""
    alone_tests = _by_id(alone)
    rows = []
    for load_report, beside_report in pairs:
        load_test = next(iter(_by_id(load_report).values()), {})
        load_window = window(load_test, "load start", "load stopped")
        for nodeid, test in _by_id(beside_report).items():
            before = measured(alone_tests.get(nodeid, {}))
            after = measured(test)
            rows.append(
                {
                    "test": nodeid,
                    "outcome_alone": (alone_tests.get(nodeid) or {}).get("outcome", "missing"),
                    "outcome_beside": test.get("outcome", "unknown"),
                    "load_outcome": load_test.get("outcome", "missing"),
                    "load_s": round(load_window[1] - load_window[0], 1) if load_window else 0.0,
                    "overlap_s": round(overlap_s(window(test), load_window), 1),
                    "figures": {
                        key: [before.get(key), after.get(key)]
                        for key in sorted(set(before) | set(after))
                    },
                }
            )
    return {"rows": rows}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def markdown(result: Mapping[str, Any]) -> str:
    """The table: per test, its overlap with the load, then each figure alone and beside."""
    lines = ["# Side by side: figures alone and beside the autoscaling load", ""]
    for row in result["rows"]:
        name = row["test"].rsplit("::", 1)[-1]
        proof = (
            f"overlapped the load for {row['overlap_s']:g} s of its {row['load_s']:g} s"
            if row["overlap_s"] > 0
            else "did NOT overlap the load: proves nothing"
        )
        lines += [
            f"## {name}",
            "",
            f"alone: {row['outcome_alone']}; beside: {row['outcome_beside']} "
            f"(autoscaling beside it: {row['load_outcome']}); {proof}",
            "",
            "| figure | alone | beside |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {key} | {_cell(a)} | {_cell(b)} |" for key, (a, b) in row["figures"].items()]
        lines.append("")
    return "\n".join(lines)


def ok(result: Mapping[str, Any]) -> bool:
    """Every run passed and every test overlapped the load."""
    return bool(result["rows"]) and all(
        row["outcome_alone"] == row["outcome_beside"] == row["load_outcome"] == "passed"
        and row["overlap_s"] > 0
        for row in result["rows"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suite.tools.sidebyside", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("tests", nargs="+", help="pytest node ids or files to run beside the load")
    parser.add_argument(
        "--cluster",
        choices=list(provider_classes()),
        default="local",
        help="pytest's --cluster (default local)",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=DEFAULT_DELAY_S,
        help=f"seconds from the autoscaling run's start to the test's ({DEFAULT_DELAY_S:g})",
    )
    parser.add_argument(
        "--out",
        dest="out_given",
        default="reports/side-by-side",
        help="the directory the runs and the table go in (default reports/side-by-side)",
    )
    args = parser.parse_args(argv)
    if not math.isfinite(args.delay) or args.delay < 0:
        parser.error(f"--delay={args.delay:g}: give a number of seconds, 0 or more")
    if args.delay >= PYTEST_TIMEOUT_S:
        # The load run is given at most PYTEST_TIMEOUT_S: a test started later cannot overlap it.
        parser.error(
            f"--delay={args.delay:g}: the autoscaling run is given at most "
            f"{PYTEST_TIMEOUT_S} s, so a test started later overlaps no load; give less "
            f"(default {DEFAULT_DELAY_S:g})"
        )
    if not str(args.out_given).strip():
        parser.error(
            "--out= is empty: give a directory, or leave the option out for reports/side-by-side"
        )
    out = Path(args.out_given).expanduser()
    problem = report_dir_problem(out, flag="--out")
    if problem:
        parser.error(problem)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[side-by-side {time.monotonic() - started:5.0f}s] {text}", flush=True)

    say(f"alone: {' '.join(args.tests)}")
    subprocess.run(
        _pytest(args.cluster, args.tests, out / "alone"), check=False, timeout=PYTEST_TIMEOUT_S
    )
    pairs = []
    for number, test in enumerate(args.tests, 1):
        load_dir, beside_dir = out / f"load-{number}", out / f"beside-{number}"
        say(f"pair {number}: autoscaling, then {test} {args.delay:g} s later")
        with (
            (out / f"load-{number}.log").open("w") as load_log,
            (out / f"beside-{number}.log").open("w") as beside_log,
        ):
            load = subprocess.Popen(
                _pytest(args.cluster, [AUTOSCALING.matrix_nodeid], load_dir),
                stdout=load_log,
                stderr=load_log,
            )
            try:
                time.sleep(args.delay)  # the offset between the two runs, not a wait for state
                subprocess.run(
                    _pytest(args.cluster, [test], beside_dir),
                    stdout=beside_log,
                    stderr=beside_log,
                    check=False,
                    timeout=PYTEST_TIMEOUT_S,
                )
            finally:
                load.wait(timeout=PYTEST_TIMEOUT_S)
        pairs.append((_report(load_dir), _report(beside_dir)))
    result = compare(_report(out / "alone"), pairs)
    text = markdown(result)
    write_atomic(out / "side-by-side.md", text + "\n")
    write_atomic(out / "side-by-side.json", json.dumps(result, indent=1) + "\n")
    print(text)
    say(f"written: {out / 'side-by-side.md'}")
    return 0 if ok(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Draw report.html again from a saved report.json (after changing the report, or to look at a
CI run's data): `python -m suite.report reports/report.json [-o report.html]`.

Input that is missing, unreadable, not JSON or not a kube-alive report is one line on stderr and
exit status 2, never a traceback or a page that looks like a passed run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite.report import SCHEMA_VERSION, render_html

USAGE_EXIT_STATUS = 2
PROG = "python -m suite.report"


class BadInput(Exception):
    """The input is not a report.json this version can draw."""


def schema_problem(document: object) -> str | None:
    """Why `document` is not a report.json of this schema; None when it is."""
    if not isinstance(document, Mapping):
        return f"not a kube-alive report.json (a JSON {type(document).__name__}, not an object)"
    if "schema" not in document:
        return "not a kube-alive report.json (no 'schema' field)"
    if document["schema"] != SCHEMA_VERSION:
        return (
            f"report.json schema {document['schema']!r}, this version draws schema "
            f"{SCHEMA_VERSION} only"
        )
    expected: dict[str, type | tuple[type, ...]] = {
        "run_id": str,
        "started": (int, float),
        "tests": list,
        "exitstatus": int,
    }
    for key, kind in expected.items():
        if not isinstance(document.get(key), kind):
            return f"not a kube-alive report.json ('{key}' missing or of the wrong type)"
    if not all(isinstance(test, Mapping) and "nodeid" in test for test in document["tests"]):
        return "not a kube-alive report.json (a test without a 'nodeid')"
    return None


def load(path: Path) -> dict[str, Any]:
    """Read and check a report.json; raises BadInput with one line saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file (a run writes reports/report.json)") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory; give the report.json inside it") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: cannot read it: {error}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise BadInput(f"{path}: not JSON ({error})") from None
    problem = schema_problem(document)
    if problem:
        raise BadInput(f"{path}: {problem}")
    result: dict[str, Any] = document
    return result


def main(argv: list[str] | None = None) -> int:
    """Read report.json, write report.html (by default beside it)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("json", type=Path, help="a report.json written by a kube-alive run")
    parser.add_argument("-o", "--output", type=Path, help="default: report.html beside the json")
    args = parser.parse_args(argv)
    output = args.output or args.json.with_name("report.html")
    try:
        document = load(args.json)
        output.write_text(render_html(document))
    except BadInput as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    except OSError as error:
        print(f"{PROG}: cannot write {output}: {error}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    print(f"{output} ({output.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

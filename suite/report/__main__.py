"""Draw report.html again from a saved report.json (after changing the report, or to look at a
CI run's data): `python -m suite.report reports/report.json [-o report.html]`.

Input that is missing, unreadable, not JSON or not a kube-alive report is one line on stderr and
exit status 2, never a traceback or a page that looks like a passed run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from suite import evidence
from suite.files import write_atomic
from suite.report import SCHEMA_VERSION, render_html
from suite.report.views import VERDICT_WORDS

USAGE_EXIT_STATUS = 2
PROG = "python -m suite.report"


class BadInput(Exception):
    """The input is not a report.json this version can draw."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: object) -> bool:
    """A finite epoch the page can print as a date."""
    if not _is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        return False
    try:
        time.gmtime(float(value))  # type: ignore[arg-type]
    except (OverflowError, OSError, ValueError):
        return False
    return True


def _is_optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _is_pairs(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(pair, list | tuple) and len(pair) == 2 for pair in value
    )


def _is_mapping_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value)


def _is_finite(value: object) -> bool:
    return _is_number(value) and math.isfinite(float(value))  # type: ignore[arg-type]


#: report.json's top-level fields: how each must look, and the words for it.
REQUIRED: dict[str, tuple[Callable[[object], bool], str]] = {
    "run_id": (lambda value: isinstance(value, str), "a string"),
    "started": (_is_time, "a time in seconds since 1970"),
    "tests": (lambda value: isinstance(value, list), "a list"),
    "exitstatus": (_is_int, "an integer"),
}
OPTIONAL: dict[str, tuple[Callable[[object], bool], str]] = {
    "duration_s": (_is_optional(_is_finite), "a number"),
    "cluster": (_is_optional(lambda value: isinstance(value, Mapping)), "an object"),
    "cluster_logs": (
        _is_optional(lambda value: value == f"{evidence.DIR}/{evidence.CLUSTER_LOGS_DIR}"),
        f'"{evidence.DIR}/{evidence.CLUSTER_LOGS_DIR}"',
    ),
}
#: Fields of one test (each may be left out or null).
TEST_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "outcome": (
        _is_optional(lambda value: isinstance(value, str) and value in VERDICT_WORDS),
        f"one of {', '.join(VERDICT_WORDS)}",
    ),
    "figures": (_is_optional(lambda value: isinstance(value, Mapping)), "an object"),
    "duration_s": (_is_optional(_is_finite), "a number"),
    "call_s": (_is_optional(_is_finite), "a number"),
    "recording": (_is_optional(lambda value: isinstance(value, Mapping)), "an object"),
    "probes": (_is_optional(_is_mapping_list), "a list of objects"),
    "evidence": (_is_optional(_is_pairs), "a list of [title, text] pairs"),
    "evidence_dir": (
        _is_optional(evidence.is_evidence_path),
        f"a folder under {evidence.DIR}/ (lower-case letters, digits, '.', '_', '-')",
    ),
}


def schema_problem(document: object) -> str | None:
    """Why `document` is not a report.json of this schema; None when it is."""
    if not isinstance(document, Mapping):
        return f"not a kube-alive report.json (a JSON {type(document).__name__}, not an object)"
    if "schema" not in document:
        return "not a kube-alive report.json (no 'schema' field)"
    schema = document["schema"]
    if not _is_int(schema) or schema != SCHEMA_VERSION:
        return (
            f"report.json schema {json.dumps(schema)}, this version draws schema "
            f"{SCHEMA_VERSION} only"
        )
    for key, (check, words) in REQUIRED.items():
        if key not in document:
            return f"not a kube-alive report.json ('{key}' missing or of the wrong type)"
        if not check(document[key]):
            return f"{key!r} is {_shown(document[key])}, expected {words}"
    for key, (check, words) in OPTIONAL.items():
        if not check(document.get(key)):
            return f"{key!r} is {_shown(document[key])}, expected {words}"
    for index, test in enumerate(document["tests"]):
        if not isinstance(test, Mapping) or "nodeid" not in test:
            return "not a kube-alive report.json (a test without a 'nodeid')"
        for key, (check, words) in TEST_FIELDS.items():
            if not check(test.get(key)):
                return (
                    f"tests[{index}] ({test['nodeid']}): {key!r} is {_shown(test[key])}, "
                    f"expected {words}"
                )
    return None


def _shown(value: object, limit: int = 40) -> str:
    """A wrong value as JSON, cut short."""
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    except BadInput as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    if output.exists() and output.samefile(args.json):
        print(
            f"{PROG}: -o {output} is the report.json it reads: writing the page there would "
            "overwrite the data; name another file",
            file=sys.stderr,
        )
        return USAGE_EXIT_STATUS
    try:
        html = render_html(document)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as error:
        # A value deeper in than schema_problem looks (a figure, a recording's entry).
        print(
            f"{PROG}: {args.json}: cannot draw it, a value has a shape no kube-alive run writes "
            f"({type(error).__name__}: {error})",
            file=sys.stderr,
        )
        return USAGE_EXIT_STATUS
    try:
        write_atomic(output, html)
    except OSError as error:
        print(f"{PROG}: cannot write {output}: {error}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    print(f"{output} ({output.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

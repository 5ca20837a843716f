"""Draw report.html again from a saved report.json (after changing the report, or to look at a
CI run's data): `python -m suite.report reports/report.json [-o report.html]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from suite.report import render_html


def main(argv: list[str] | None = None) -> int:
    """Read report.json, write report.html (by default beside it)."""
    parser = argparse.ArgumentParser(prog="python -m suite.report", description=__doc__)
    parser.add_argument("json", type=Path, help="a report.json written by a kube-alive run")
    parser.add_argument("-o", "--output", type=Path, help="default: report.html beside the json")
    args = parser.parse_args(argv)
    document = json.loads(args.json.read_text())
    output = args.output or args.json.with_name("report.html")
    output.write_text(render_html(document))
    print(f"{output} ({output.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

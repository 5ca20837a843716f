"""`python -m suite.behaviours [--registry-path]`: the scenarios' paths, one per line, for
scripts (`.ci/run`) that must not spell a behaviour's name.

--registry-path: only those that run in CI's existing-cluster step (the Raspberry Pi path).
"""

from __future__ import annotations

import argparse

from suite import behaviours


def main(argv: list[str] | None = None) -> int:
    """Print the paths; exit 0."""
    parser = argparse.ArgumentParser(prog="python -m suite.behaviours", description=__doc__)
    parser.add_argument(
        "--registry-path",
        action="store_true",
        help="only the behaviours CI runs on an existing cluster whose nodes pull from a registry",
    )
    args = parser.parse_args(argv)
    for behaviour in behaviours.ALL:
        if behaviour.on_registry_path or not args.registry_path:
            print(behaviour.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

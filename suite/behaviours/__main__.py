"""`python -m suite.behaviours [--registry-path]`: the scenarios' paths, one per line, for
scripts (`.ci/run`) that must not spell a behaviour's name.

--registry-path: only those that run in CI's existing-cluster step (the Raspberry Pi path).
--cluster NAME: only those whose scenario runs on --cluster=NAME (node failure needs several
nodes: not on `local`).
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
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        default=None,
        help="only the behaviours whose scenario runs on --cluster=NAME",
    )
    args = parser.parse_args(argv)
    for behaviour in behaviours.ALL:
        if args.registry_path and not behaviour.on_registry_path:
            continue
        if args.cluster is None or behaviour.runs_on(args.cluster):
            print(behaviour.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line of the local cluster: `python -m localcluster COMMAND`."""

from __future__ import annotations

import argparse
import sys

from localcluster import api
from localcluster.util import ClusterError, stderr_log


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; errors print one line and exit 1."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster",
        description="A real single-node Kubernetes cluster from pinned upstream components.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or find cached) every component and the pause image")
    sub.add_parser("up", help="start the cluster (reuses a healthy running one)")
    sub.add_parser("down", help="stop everything `up` started and remove the cluster's state")
    sub.add_parser("status", help="each component's state; exit 0 only when healthy")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig's path")
    load = sub.add_parser("load-images", help="build the workload images and import them")
    load.add_argument("refs", nargs="*", help="image references (default: every workload image)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            api.build(stderr_log)
        elif args.command == "up":
            api.up(stderr_log)
        elif args.command == "down":
            api.down(stderr_log)
        elif args.command == "status":
            return 0 if api.status(print) else 1
        elif args.command == "kubeconfig":
            print(api.kubeconfig_path())
        elif args.command == "load-images":
            api.load_images(args.refs, stderr_log)
    except ClusterError as exc:
        print(f"localcluster {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

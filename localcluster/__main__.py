"""Command line of the local cluster: `python -m localcluster COMMAND`."""

from __future__ import annotations

import argparse
import sys

from localcluster import api, faults, kindcli
from localcluster.util import ClusterError, stderr_log

#: Exit status of `fault apply` when the fault cannot be applied here (a caller reports it as not
#: run, never as caught).
NOT_APPLICABLE = 3


def _fault(action: str, name: str | None) -> int:
    if action == "list":
        for line in faults.describe():
            print(line)
    elif action == "status":
        current = api.fault_active()
        print(current or "no fault applied")
        return 0 if current else 1
    elif action == "apply":
        assert name is not None
        api.fault_apply(name, stderr_log)
    else:
        if name is not None:
            faults.lookup(name)
        api.fault_clear(name, stderr_log)
    return 0


def _variant(action: str, name: str | None) -> int:
    if action == "list":
        for line in faults.describe_variants():
            print(line)
    elif action == "status":
        current = api.variant_active()
        print(current or "no variant applied")
        return 0 if current else 1
    elif action == "apply":
        assert name is not None
        api.variant_apply(name, stderr_log)
    else:
        if name is not None:
            faults.lookup_variant(name)
        api.variant_clear(name, stderr_log)
    return 0


NEEDS_ROOT_HINT = "the local cluster is root's: run it with sudo"


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; errors print one line and exit 1."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster",
        description="A real single-node Kubernetes cluster from pinned upstream components.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or find cached) every component and the pause image")
    up = sub.add_parser(
        "up",
        help="start the cluster (reuses a healthy running one); an applied fault or variant is "
        "left as it is and `up` fails naming it, unless --restore",
    )
    up.add_argument(
        "--restore",
        action="store_true",
        help="clear an applied fault or variant (or a crashed run's record of one) and start the "
        "normal cluster",
    )
    sub.add_parser("down", help="stop everything `up` started and remove the cluster's state")
    sub.add_parser("status", help="each component's state; exit 0 only when healthy")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig's path")
    load = sub.add_parser("load-images", help="build the workload images and import them")
    load.add_argument("refs", nargs="*", help="image references (default: every workload image)")
    fault = sub.add_parser(
        "fault",
        help="switch the running cluster to a named fault and back (`fault list` names them)",
    )
    fault_sub = fault.add_subparsers(dest="action", required=True)
    apply = fault_sub.add_parser("apply", help="break the cluster as NAME says")
    apply.add_argument("name", metavar="NAME")
    clear = fault_sub.add_parser("clear", help="undo the applied fault (checked to be NAME)")
    clear.add_argument("name", metavar="NAME", nargs="?")
    fault_sub.add_parser("list", help="each fault: what it breaks and how")
    fault_sub.add_parser("status", help="print the applied fault; exit 0 if one is applied")
    variant = sub.add_parser(
        "variant",
        help="switch the running cluster to a named healthy variant and back (`variant list`)",
    )
    variant_sub = variant.add_subparsers(dest="action", required=True)
    variant_apply = variant_sub.add_parser("apply", help="reconfigure the cluster as NAME says")
    variant_apply.add_argument("name", metavar="NAME")
    variant_clear = variant_sub.add_parser(
        "clear", help="undo the applied variant (checked to be NAME)"
    )
    variant_clear.add_argument("name", metavar="NAME", nargs="?")
    variant_sub.add_parser("list", help="each variant: how it differs, why it is valid")
    variant_sub.add_parser("status", help="print the applied variant; exit 0 if one is applied")
    kindcli.add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        if args.command in ("kind-node-image", "engine", "kind-fault"):
            return kindcli.run_command(args, stderr_log)
        if args.command == "build":
            api.build(stderr_log)
        elif args.command == "up":
            api.up(stderr_log, restore=args.restore)
        elif args.command == "down":
            api.down(stderr_log)
        elif args.command == "status":
            return 0 if api.status(print) else 1
        elif args.command == "kubeconfig":
            print(_existing_kubeconfig())
        elif args.command == "load-images":
            api.load_images(args.refs, stderr_log)
        elif args.command == "fault":
            return _fault(args.action, args.name if "name" in args else None)
        elif args.command == "variant":
            return _variant(args.action, args.name if "name" in args else None)
    except faults.FaultNotApplicable as exc:
        print(f"localcluster {args.command}: {exc}", file=sys.stderr)
        return NOT_APPLICABLE
    except ClusterError as exc:
        print(f"localcluster {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # A file or directory of the cluster that this user may not read, or that is gone.
        print(f"localcluster {args.command}: {exc}; {NEEDS_ROOT_HINT}", file=sys.stderr)
        return 1
    return 0


def _existing_kubeconfig() -> str:
    """The admin kubeconfig's path, once a cluster has written it; else why not, in one line."""
    path = api.kubeconfig_path()
    try:
        present = path.is_file()
    except PermissionError:
        raise ClusterError(f"cannot see {path} as this user; {NEEDS_ROOT_HINT}") from None
    if not present:
        raise ClusterError(
            f"no kubeconfig at {path}: no local cluster has been started with this state "
            "directory (KUBE_ALIVE_STATE_DIR); start one: sudo python3 -m localcluster up"
        )
    return str(path)


if __name__ == "__main__":
    sys.exit(main())

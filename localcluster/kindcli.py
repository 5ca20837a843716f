"""`python -m localcluster kind-node-image` and `python -m localcluster engine ...`: what a kind
cluster needs on a machine without Docker or a registry (CI): the offline node image and a
private Docker engine to run it."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from localcluster import build, config, engine, kindfaults, kindnode
from localcluster.util import ClusterError, Log, run


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the kind-related commands on the main parser."""
    node = sub.add_parser(
        "kind-node-image",
        help="build (or find cached) the offline kind node image; print its archive's path",
    )
    node.add_argument(
        "--load", action="store_true", help="also `docker load` it into the running engine"
    )
    node.add_argument(
        "--prepare",
        action="store_true",
        help=(
            "only fetch what needs the network and little CPU (root filesystems, Debian's "
            "docker.io), to overlap with other builds"
        ),
    )
    eng = sub.add_parser(
        "engine", help="a private Docker engine for kind (CI has none): up, down, status, env"
    )
    eng_sub = eng.add_subparsers(dest="action", required=True)
    eng_sub.add_parser(
        "up", help="start it (or reuse it); print DOCKER_HOST and PATH lines for `eval`"
    )
    eng_sub.add_parser("down", help="remove every container, network and mount; stop it")
    eng_sub.add_parser("status", help="exit 0 when it answers")
    eng_sub.add_parser("env", help="print DOCKER_HOST and PATH lines for `eval`")
    reg = eng_sub.add_parser(
        "registry",
        help=(
            "start a registry on the kind network (built from its Go module), let the nodes of "
            "a kind cluster pull from it; print its address"
        ),
    )
    reg.add_argument("--kind-cluster", default="kube-alive", help="default: %(default)s")
    reg.add_argument(
        "--push-workloads",
        action="store_true",
        help="also push the workload images (built as on the local cluster) with buildah",
    )
    eng_sub.add_parser(
        "load-base",
        help="the workloads' Debian Python base image (built offline), into the engine; print it",
    )
    eng_sub.add_parser(
        "registry-pulls", help="print the registry's log lines of node pulls; exit 1 if none"
    )
    eng_sub.add_parser(
        "load-workloads",
        help="build the workload images (cached) and `docker load` them into the engine",
    )
    kind_fault = sub.add_parser(
        "kind-fault", help="break one worker of a kind cluster on purpose, and undo it"
    )
    kind_fault.add_argument("action", choices=["apply", "clear", "list"])
    kind_fault.add_argument("name", nargs="?", help="the fault (apply)")
    kind_fault.add_argument("--kind-cluster", default="kube-alive", help="default: %(default)s")


def run_command(args: argparse.Namespace, log: Log) -> int:
    """Run one of the commands registered by add_parsers."""
    paths = config.Paths.default()
    if args.command == "kind-fault":
        return _kind_fault(args, log)
    if args.command == "kind-node-image":
        if args.prepare:
            kindnode.prepare(paths, log)
            engine.docker_root(paths, log)
            return 0
        image = kindnode.build_node_image(paths, log)
        if args.load:
            engine.load_archives(paths, [image.archive], log)
        print(image.archive)
        return 0
    if args.action == "up":
        engine.up(paths, log)
        _print_env(paths, log)
    elif args.action == "env":
        _print_env(paths, log)
    elif args.action == "down":
        engine.down(paths, log)
    elif args.action == "status":
        return 0 if engine.status(paths, print) else 1
    elif args.action == "load-workloads":
        load_workloads(paths, log)
    elif args.action == "registry":
        address = engine.registry_up(paths, log)
        engine.trust_registry_on_kind_nodes(paths, args.kind_cluster, log)
        if args.push_workloads:
            push_workloads(paths, address, log)
        print(address)
    elif args.action == "load-base":
        print(load_base(paths, log))
    elif args.action == "registry-pulls":
        pulls = engine.registry_pulls()
        for line in pulls:
            print(line)
        return 0 if pulls else 1
    return 0


def _kind_fault(args: argparse.Namespace, log: Log) -> int:
    if args.action == "list":
        for fault in kindfaults.FAULTS.values():
            print(f"{fault.name}  {fault.broken}: {fault.how}")
        return 0
    if args.action == "clear":
        kindfaults.clear(args.kind_cluster, log)
        return 0
    if not args.name:
        raise ClusterError("kind-fault apply needs a NAME; see `kind-fault list`")
    kindfaults.apply(args.kind_cluster, args.name, log)
    return 0


def load_base(paths: config.Paths, log: Log) -> str:
    """The Debian Python base image (what BASE_IMAGE names where no image can be pulled), into
    the engine's image store; returns its reference."""
    ref = build.build_base_image(paths, log)
    with tempfile.TemporaryDirectory(dir=kindnode.kind_cache(paths)) as tmp:
        archive = Path(tmp) / "base.tar"
        run(["buildah", "push", "-q", ref, f"docker-archive:{archive}:{ref}"], timeout=600)
        engine.load_archives(paths, [archive], log)
    return ref


def push_workloads(paths: config.Paths, registry: str, log: Log) -> None:
    """Push the workload images to `registry` as REGISTRY/kube-alive/workloads:TAG."""
    for ref, oci_archive in build.build_workload_images(paths, log):
        target = f"{registry}/kube-alive/workloads:{ref.rsplit(':', 1)[-1]}"
        source = ref
        if run(["buildah", "inspect", "--type", "image", ref], check=False).returncode != 0:
            source = f"oci-archive:{oci_archive}"
        run(
            ["buildah", "push", "-q", "--tls-verify=false", source, f"docker://{target}"],
            timeout=600,
        )
        log(f"registry: pushed {target}")


def _print_env(paths: config.Paths, log: Log) -> None:
    docker = engine.docker_bin(paths, log)
    kind = kindnode.build_kind_cli(paths, log).parent
    print(f"export DOCKER_HOST={engine.docker_host(engine.EnginePaths.default())}")
    print(f"export PATH={docker}:{kind}:{os.environ['PATH']}")


def load_workloads(paths: config.Paths, log: Log) -> None:
    """The workload images, built as on the local cluster, into the engine's image store (where
    `pytest --cluster=kind` finds them, as it finds images a user built with docker)."""
    with tempfile.TemporaryDirectory(dir=kindnode.kind_cache(paths)) as tmp:
        archives = []
        for ref, oci_archive in build.build_workload_images(paths, log):
            # Docker 20.10 loads only the docker-save layout: re-export through buildah.
            present = run(["buildah", "inspect", "--type", "image", ref], check=False)
            if present.returncode != 0:
                run(["buildah", "pull", "-q", f"oci-archive:{oci_archive}"], timeout=600)
            out = Path(tmp) / f"{ref.rsplit(':', 1)[-1]}.tar"
            run(["buildah", "push", "-q", ref, f"docker-archive:{out}:{ref}"], timeout=600)
            archives.append(out)
        if not archives:
            raise ClusterError("no workload images were built")
        engine.load_archives(paths, archives, log)

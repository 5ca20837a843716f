"""The plugin's command-line options, checked, in one frozen object (no cluster access here)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from suite.providers import ProviderOptions, provider_classes

CI_ENV = "CI"

#: `[tool.pytest.ini_options]` keys (the command line wins over them).
INI_REPORT_DIR = "kube_alive_report_dir"
INI_FAIL_ON_SKIP = "kube_alive_fail_on_skip"
INI_KEEP_NAMESPACES = "kube_alive_keep_namespaces"


def running_in_ci(environ: dict[str, str] | None = None) -> bool:
    """True when `CI` is set to a true value (as CI services do)."""
    value = (environ if environ is not None else dict(os.environ)).get(CI_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def cluster_choices_help() -> str:
    """`--cluster` help text listing each choice."""
    parts = [f"{name}: {cls.help}" for name, cls in provider_classes().items()]
    return (
        "which Kubernetes cluster the e2e scenarios run on. "
        + "; ".join(parts)
        + ". Without --cluster the e2e scenarios are skipped (and fail under CI=true or "
        "--fail-on-skip)."
    )


def no_cluster_reason() -> str:
    """The skip reason of e2e tests when no cluster was chosen."""
    return f"needs a cluster: pass --cluster={{{','.join(provider_classes())}}} (see pytest --help)"


@dataclass(frozen=True)
class Settings:
    """What the user asked for, validated."""

    cluster: str | None
    kubeconfig: Path | None
    context: str | None
    image_registry: str | None
    keep_namespaces: bool
    report_dir: Path
    fail_on_skip: bool
    fail_on_skip_because: str
    keep_cluster: bool = False
    kind_node_image: str | None = None

    def provider_options(self) -> ProviderOptions:
        """The subset a provider sees."""
        return ProviderOptions(
            kubeconfig=self.kubeconfig,
            context=self.context,
            image_registry=self.image_registry,
            keep_cluster=self.keep_cluster,
            kind_node_image=self.kind_node_image,
        )


def keep_cluster_choices() -> list[str]:
    """The `--cluster` choices `--keep-cluster` goes with."""
    return [name for name, cls in provider_classes().items() if cls.deletes_its_cluster]


def settings_from(config: pytest.Config, environ: dict[str, str] | None = None) -> Settings:
    """Read and check the kube-alive options; bad combinations raise pytest.UsageError."""
    option = config.option
    errors: list[str] = []
    cluster: str | None = option.kube_alive_cluster
    given_kubeconfig = _given(option.kube_alive_kubeconfig, "--kubeconfig", errors)
    kubeconfig = Path(given_kubeconfig).expanduser() if given_kubeconfig else None
    context = _given(option.kube_alive_context, "--context", errors)
    registry = _given(option.kube_alive_image_registry, "--image-registry", errors)
    keep_cluster = bool(option.kube_alive_keep_cluster)
    kind_node_image = _given(
        getattr(option, "kube_alive_kind_node_image", None), "--kind-node-image", errors
    )
    report_dir = _report_dir(config, errors)
    in_ci = running_in_ci(environ)
    explicit = bool(option.kube_alive_fail_on_skip)
    from_ini = bool(config.getini(INI_FAIL_ON_SKIP))
    because = (
        "--fail-on-skip"
        if explicit
        else (f"{CI_ENV}=true" if in_ci else (f"{INI_FAIL_ON_SKIP} = true" if from_ini else ""))
    )

    # xdist workers: the controller checked (and its probe must not race their own).
    dir_problem = report_dir_problem(report_dir, try_writing=not hasattr(config, "workerinput"))
    if dir_problem:
        errors.append(dir_problem)
    if kind_node_image and cluster != "kind":
        errors.append(
            "--kind-node-image goes with --cluster=kind only (the other providers create no "
            "kind nodes)"
        )
    if keep_cluster and cluster not in keep_cluster_choices():
        errors.append(
            f"--keep-cluster needs --cluster={'|'.join(keep_cluster_choices())} (the only "
            "provider that deletes a cluster it created; the others never delete one)"
        )
    if cluster is None:
        for flag, value in (
            ("--kubeconfig", kubeconfig),
            ("--context", context),
            ("--image-registry", registry),
        ):
            if value:
                errors.append(f"{flag} needs --cluster (one of {', '.join(provider_classes())})")
    else:
        if kubeconfig is not None:
            kubeconfig_problem = _kubeconfig_problem(kubeconfig)
            if kubeconfig_problem:
                errors.append(kubeconfig_problem)
        options = ProviderOptions(
            kubeconfig=kubeconfig,
            context=context,
            image_registry=registry,
            keep_cluster=keep_cluster,
            kind_node_image=kind_node_image,
        )
        provider_errors = provider_classes()[cluster].usage_errors(options)
        errors.extend(provider_errors)
        registry_problem = _registry_problem(registry) if registry else None
        if registry_problem and not any(e.startswith("--image-registry") for e in provider_errors):
            errors.append(registry_problem)
    if errors:
        raise pytest.UsageError("kube-alive: " + "; ".join(errors))
    return Settings(
        cluster=cluster,
        kubeconfig=kubeconfig,
        context=context,
        image_registry=registry,
        keep_namespaces=bool(option.kube_alive_keep_namespaces)
        or bool(config.getini(INI_KEEP_NAMESPACES)),
        report_dir=report_dir,
        fail_on_skip=explicit or in_ci or from_ini,
        fail_on_skip_because=because,
        keep_cluster=keep_cluster,
        kind_node_image=kind_node_image,
    )


#: What an option takes, and what leaving it out means: the one line an empty value gets.
_EMPTY_MEANS = {
    "--kubeconfig": ("a kubeconfig file", "$KUBECONFIG, then ~/.kube/config"),
    "--context": ("a context name", "the kubeconfig's current context"),
    "--image-registry": ("HOST[:PORT][/PATH]", "images the nodes have already"),
    "--kind-node-image": ("an image", "$KUBE_ALIVE_KIND_NODE_IMAGE, else kind's release image"),
    "--report-dir": ("a directory", "reports/"),
}


def _given(value: str | None, flag: str, errors: list[str]) -> str | None:
    """An option's value; None when it was left out. An empty one (`--kubeconfig=` from an unset
    shell variable) is an error, not the default it would silently fall back to."""
    if value is not None and not value.strip():
        what, default = _EMPTY_MEANS[flag]
        errors.append(f"{flag}= is empty: give {what}, or leave the option out for {default}")
        return None
    return value


def _report_dir(config: pytest.Config, errors: list[str]) -> Path:
    """`--report-dir`, else the ini value (relative to the ini file), else `<rootdir>/reports`."""
    given = _given(config.option.kube_alive_report_dir, "--report-dir", errors)
    if given:
        return Path(given).expanduser()
    ini = str(config.getini(INI_REPORT_DIR) or "").strip()
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / Path(ini).expanduser()
    return config.rootpath / "reports"


def _kubeconfig_problem(kubeconfig: Path) -> str | None:
    """Why `--kubeconfig` names no kubeconfig file; None when it names a file."""
    if kubeconfig.is_dir():
        return (
            f"--kubeconfig={kubeconfig}: is a directory; give the kubeconfig file "
            f"(e.g. {kubeconfig / 'config'})"
        )
    if not kubeconfig.exists():
        return f"--kubeconfig={kubeconfig}: no such file"
    if not kubeconfig.is_file():
        return f"--kubeconfig={kubeconfig}: not a regular file; give the kubeconfig file"
    return None


#: A registry as an image reference starts with it (the distribution reference grammar): a host
#: of DNS labels (or an [IPv6] address), an optional port, optional lower-case path components.
_REGISTRY = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[a-fA-F0-9:]+\])"
    r"(?::[0-9]{1,5})?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)


def _registry_problem(registry: str) -> str | None:
    """Why `registry` cannot start an image reference; None when it can."""
    if _REGISTRY.fullmatch(registry):
        return None
    return (
        f"--image-registry={registry!r}: not a registry HOST[:PORT][/PATH] (DNS name or IP, "
        "numeric port, lower-case path), e.g. 192.168.1.10:5000 or registry.example/team"
    )


def report_dir_problem(
    report_dir: Path, *, try_writing: bool = True, flag: str = "--report-dir"
) -> str | None:
    """Why the reports could not be written into `report_dir` (checked at startup, so a bad
    directory fails at once, not after the whole run); None when they can. With `try_writing`
    it creates the directory and a file in it, then removes what it made (root passes every
    permission check, a read-only or virtual file system refuses only the real thing). `flag` is
    the option the messages name (the tools check their own output directory with it too)."""
    if report_dir.exists():
        if not report_dir.is_dir():
            return f"{flag}={report_dir}: exists and is not a directory; name a directory"
        if not os.access(report_dir, os.W_OK | os.X_OK):
            return f"{flag}={report_dir}: not writable by this user; name another directory"
        return _write_problem(report_dir, flag) if try_writing else None
    ancestor = report_dir.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return (
            f"{flag}={report_dir}: cannot be created, {ancestor} is not a directory; "
            "name a directory"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return (
            f"{flag}={report_dir}: cannot be created, {ancestor} is not writable by this "
            "user; name another directory"
        )
    return _write_problem(report_dir, flag) if try_writing else None


def _write_problem(report_dir: Path, flag: str) -> str | None:
    """Create `report_dir` (and its missing parents) and a file in it; remove what was made."""
    missing: list[Path] = []
    directory = report_dir.absolute()
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            try:
                directory.mkdir()
            except OSError as error:
                return (
                    f"{flag}={report_dir}: cannot create {directory}: "
                    f"{error.strerror or error}; name a directory you can write"
                )
            created.append(directory)
        try:
            with tempfile.NamedTemporaryFile(dir=report_dir, prefix=".kube-alive-probe-"):
                pass
        except OSError as error:
            return (
                f"{flag}={report_dir}: cannot write a file in it: "
                f"{error.strerror or error}; name a directory you can write"
            )
        return None
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()

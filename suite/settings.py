"""The plugin's command-line options, checked, in one frozen object (no cluster access here)."""

from __future__ import annotations

import os
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
    cluster: str | None = option.kube_alive_cluster
    kubeconfig = (
        Path(option.kube_alive_kubeconfig).expanduser() if option.kube_alive_kubeconfig else None
    )
    context: str | None = option.kube_alive_context or None
    registry: str | None = option.kube_alive_image_registry or None
    keep_cluster = bool(option.kube_alive_keep_cluster)
    kind_node_image: str | None = getattr(option, "kube_alive_kind_node_image", None) or None
    report_dir = _report_dir(config)
    in_ci = running_in_ci(environ)
    explicit = bool(option.kube_alive_fail_on_skip)
    from_ini = bool(config.getini(INI_FAIL_ON_SKIP))
    because = (
        "--fail-on-skip"
        if explicit
        else (f"{CI_ENV}=true" if in_ci else (f"{INI_FAIL_ON_SKIP} = true" if from_ini else ""))
    )

    errors: list[str] = []
    report_dir_problem = _report_dir_problem(report_dir)
    if report_dir_problem:
        errors.append(report_dir_problem)
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
        if kubeconfig is not None and not kubeconfig.is_file():
            errors.append(f"--kubeconfig={kubeconfig}: no such file")
        options = ProviderOptions(
            kubeconfig=kubeconfig,
            context=context,
            image_registry=registry,
            keep_cluster=keep_cluster,
            kind_node_image=kind_node_image,
        )
        errors.extend(provider_classes()[cluster].usage_errors(options))
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


def _report_dir(config: pytest.Config) -> Path:
    """`--report-dir`, else the ini value (relative to the ini file), else `<rootdir>/reports`."""
    given: str | None = config.option.kube_alive_report_dir
    if given:
        return Path(given).expanduser()
    ini = str(config.getini(INI_REPORT_DIR) or "").strip()
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / Path(ini).expanduser()
    return config.rootpath / "reports"


def _report_dir_problem(report_dir: Path) -> str | None:
    """Why the reports could not be written into `report_dir` (checked at startup, so a bad
    directory fails at once, not after the whole run); None when they can. Creates nothing."""
    if report_dir.exists():
        if not report_dir.is_dir():
            return f"--report-dir={report_dir}: exists and is not a directory; name a directory"
        if not os.access(report_dir, os.W_OK | os.X_OK):
            return f"--report-dir={report_dir}: not writable by this user; name another directory"
        return None
    ancestor = report_dir.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return (
            f"--report-dir={report_dir}: cannot be created, {ancestor} is not a directory; "
            "name a directory"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return (
            f"--report-dir={report_dir}: cannot be created, {ancestor} is not writable by this "
            "user; name another directory"
        )
    return None

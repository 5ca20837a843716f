"""Cluster providers, found by module: each `suite/providers/<name>.py` (other than `base`)
defines `PROVIDER`, a `Provider` subclass. Adding a provider is adding one file."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from suite.providers.base import Access, Log, Provider, ProviderError, ProviderOptions, Tool

__all__ = [
    "Access",
    "Log",
    "Provider",
    "ProviderError",
    "ProviderOptions",
    "Tool",
    "create",
    "provider_classes",
]


@cache
def provider_classes() -> dict[str, type[Provider]]:
    """Every provider, by its `--cluster` name (importing a provider never touches a cluster)."""
    found: dict[str, type[Provider]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base" or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        provider = getattr(module, "PROVIDER", None)
        if isinstance(provider, type) and issubclass(provider, Provider):
            found[provider.name] = provider
    return dict(sorted(found.items()))


def create(name: str, options: ProviderOptions, log: Log) -> Provider:
    """A provider instance for a `--cluster` choice."""
    try:
        cls = provider_classes()[name]
    except KeyError:
        raise ProviderError(
            f"unknown provider {name!r}; choose from {sorted(provider_classes())}"
        ) from None
    return cls(options, log)

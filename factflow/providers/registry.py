"""Provider name -> `ProviderSpec`: the built-ins of this package, then the
`factflow.providers` entry-point group (an entry point names a `ProviderSpec` object)."""

from __future__ import annotations

from factflow.exceptions import AdapterRegistrationError
from factflow.plugins import PluginRegistry, UnknownPluginError
from factflow.providers.spec import ProviderSpec

ENTRY_POINT_GROUP = "factflow.providers"
BUILTIN = ("memory", "file", "postgres", "rabbitmq", "stomp", "pulsar", "kafka")


class UnknownProviderError(UnknownPluginError):
    """No queue provider is registered under this name."""

    kind = "queue provider"


def check_provider(obj: object, origin: str) -> ProviderSpec:
    if not isinstance(obj, ProviderSpec):
        msg = f"{origin} is not a factflow.providers.spec.ProviderSpec"
        raise AdapterRegistrationError(msg)
    return obj


def provider_registry() -> PluginRegistry[ProviderSpec]:
    """A fresh registry of the built-in providers (imported when first named) and, lazily,
    the entry points."""
    registry = PluginRegistry(
        check=check_provider,
        entry_point_group=ENTRY_POINT_GROUP,
        unknown=UnknownProviderError,
        dotted_paths=False,
    )
    for name in BUILTIN:
        registry.add_path(name, f"factflow.providers.{name}:PROVIDER")
    return registry


PROVIDERS = provider_registry()
"""The process's providers; tests may swap it (monkeypatch) for one with other specs."""


def get_provider(name: str) -> ProviderSpec:
    """The spec of provider `name`; UnknownProviderError names close ones."""
    return PROVIDERS.resolve(name)


def provider_names() -> list[str]:
    return PROVIDERS.names()

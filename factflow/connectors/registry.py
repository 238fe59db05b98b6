"""Provider name -> its Bytewax source and sink for a queue.

The provider's spec (`factflow.providers`) names its connector module, which is imported
only when a pipeline uses it, so a file pipeline never loads a broker client and the core
installs without them: a provider whose client library is missing raises
`MissingExtraError`, naming the extra to install, before any import.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from bytewax.inputs import Source
from bytewax.outputs import DynamicSink

from factflow.compiler.plan import QueueSettings
from factflow.connectors.protocol import Connector, SourceSpec
from factflow.providers.registry import get_provider

__all__ = ["SourceSpec", "connector_module", "make_sink", "make_source"]


def make_source(spec: SourceSpec, settings: QueueSettings) -> Source[Any]:
    return connector_module(settings.provider).make_source(spec, settings)


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> DynamicSink[Any]:
    return connector_module(settings.provider).make_sink(queue, settings, raw=raw)


def connector_module(provider: str) -> Connector:
    """The connector module of `provider`, once its client library is known present."""
    spec = get_provider(provider)
    if spec.extra is not None:
        # the compiler reports this as E407; a provider set by an override reaches it here
        spec.extra.require(f"queue provider {provider!r}")
    return cast(Connector, importlib.import_module(spec.connector))

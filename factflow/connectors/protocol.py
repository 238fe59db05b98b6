"""What the runtime asks of a connector module (`ProviderSpec.connector` names one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bytewax.inputs import Source
from bytewax.outputs import DynamicSink

from factflow.compiler.plan import QueueSettings
from factflow.types import JsonDict


@dataclass(frozen=True)
class SourceSpec:
    """How one queue is read: format, consumer slots, prefetch, when to stop."""

    queue: str
    raw: bool = False
    partitions: int = 1
    subscription: str = "factflow"
    prefetch: int | None = None
    idle_timeout: float | None = None
    min_batch: int = 1
    """The most messages the reading routes run at once: a source may always hand out
    that many in one batch (connectors/batching.py)."""

    def consumers(self, options: JsonDict) -> int:
        """`options.consumers`, else one consumer per partition."""
        return int(options.get("consumers", self.partitions))

    def prefetch_or(self, options: JsonDict, default: int) -> int:
        """`options.prefetch`, else the routes' prefetch or the connector's default,
        whichever is larger."""
        return int(options.get("prefetch", max(self.prefetch or 0, default)))


class Connector(Protocol):
    """A connector module. It may also define `delete_queues(url, names) -> list[str]`,
    called once an execution completed to delete its (empty) scoped queues."""

    def make_source(self, spec: SourceSpec, settings: QueueSettings) -> Source[Any]: ...

    def make_sink(
        self, queue: str, settings: QueueSettings, *, raw: bool = False
    ) -> DynamicSink[Any]: ...

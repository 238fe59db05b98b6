"""What the runtime asks of a connector module (`ProviderSpec.connector` names one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class LagReporter(Protocol):
    """A source partition that can say how far behind it is (`factflow_source_lag_messages`,
    sampled by the runtime every few seconds, never per message)."""

    lag_covers_queue: bool
    """True where every partition sees the whole queue's backlog (competing consumers): then
    only the source's first partition reports it, so sums over processes count it once."""

    def lag(self) -> int | None:
        """Messages waiting for this partition (or its queue) now; None when unknown (not
        connected, or the broker did not answer). Must not block for long."""
        ...

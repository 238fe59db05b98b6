"""A sink wrapper that counts what each queue received, for `factflow run`'s progress."""

from __future__ import annotations

from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from factflow.connectors.drain import ledger
from factflow.dataflows.progress import progress


class _CountingPartition(StatelessSinkPartition[Any]):
    def __init__(
        self, inner: StatelessSinkPartition[Any], name: str, drain_queue: str | None
    ) -> None:
        self._inner, self._name, self._drain_queue = inner, name, drain_queue

    def write_batch(self, items: list[Any]) -> None:
        self._inner.write_batch(items)
        progress().add(self._name, len(items))
        if self._drain_queue is not None and items:
            # counted once durable: a reader can only have `got` what was `put`
            ledger().add(f"put:{self._drain_queue}", len(items))

    def close(self) -> None:
        self._inner.close()


class CountingSink(DynamicSink[Any]):
    """Counts a sink's writes for progress and, for a scoped queue (`drain_queue`), for
    drain detection."""

    def __init__(self, inner: Any, name: str, drain_queue: str | None = None) -> None:
        if not isinstance(inner, DynamicSink):
            msg = f"CountingSink wraps DynamicSinks only, got {type(inner).__name__}"
            raise TypeError(msg)
        self._inner, self._name, self._drain_queue = inner, name, drain_queue

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountingPartition:
        return _CountingPartition(
            self._inner.build(step_id, worker_index, worker_count), self._name, self._drain_queue
        )

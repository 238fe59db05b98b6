"""A `Writer` (factflow.writers) as a Bytewax sink: one writer per worker."""

from __future__ import annotations

from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from factflow.compiler.plan import WriterStep
from factflow.messages import Message
from factflow.writers.base import Writer, WriterContext
from factflow.writers.registry import default_writers


class _WriterPartition(StatelessSinkPartition[Message]):
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def write_batch(self, items: list[Message]) -> None:
        # durable when this returns: the epoch, and so the sources' acks, wait for it
        self._writer.write_batch(items)

    def close(self) -> None:
        self._writer.close()


class WriterSink(DynamicSink[Message]):
    def __init__(
        self,
        step: WriterStep,
        *,
        execution_id: str,
        route_id: str,
        storage: Any,
        database_url: str | None,
    ) -> None:
        self._step = step
        self._cls = default_writers().resolve(step.type)
        self._execution_id, self._route_id = execution_id, route_id
        self._storage, self._database_url = storage, database_url

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _WriterPartition:
        context = WriterContext(
            execution_id=self._execution_id,
            route_id=self._route_id,
            step_id=self._step.step_id,
            worker_index=worker_index,
            storage=self._storage,
            database_url=self._database_url,
        )
        return _WriterPartition(self._cls(self._step.config, context))

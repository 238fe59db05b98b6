"""A sink wrapper that counts what each queue received, for `factflow run`'s progress."""

from __future__ import annotations

from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from factflow.dataflows.progress import progress


class _CountingPartition(StatelessSinkPartition[Any]):
    def __init__(self, inner: StatelessSinkPartition[Any], name: str) -> None:
        self._inner, self._name = inner, name

    def write_batch(self, items: list[Any]) -> None:
        self._inner.write_batch(items)
        progress().add(self._name, len(items))

    def close(self) -> None:
        self._inner.close()


class CountingSink(DynamicSink[Any]):
    def __init__(self, inner: Any, name: str) -> None:
        if not isinstance(inner, DynamicSink):
            msg = f"CountingSink wraps DynamicSinks only, got {type(inner).__name__}"
            raise TypeError(msg)
        self._inner, self._name = inner, name

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountingPartition:
        return _CountingPartition(
            self._inner.build(step_id, worker_index, worker_count), self._name
        )

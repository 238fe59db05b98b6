"""A source partition that wraps another and changes one thing about it.

Pausing (pause.py), epoch timing and lag sampling (metrics.py) each wrap the connector's
partitions; `WrappedPartition` hands everything on to the wrapped one, so each wrapper
overrides only the method it is about.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from bytewax.inputs import StatefulSourcePartition

X = TypeVar("X")
S = TypeVar("S")


class WrappedPartition(StatefulSourcePartition[X, S], Generic[X, S]):
    def __init__(self, inner: StatefulSourcePartition[X, S]) -> None:
        self._inner = inner

    def next_batch(self) -> list[X]:
        # Bytewax accepts any iterable; connectors return lists, which pass as they are
        batch = self._inner.next_batch()
        return batch if isinstance(batch, list) else list(batch)

    def next_awake(self) -> datetime | None:
        return self._inner.next_awake()

    def snapshot(self) -> S:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()

"""The `memory` provider: named in-process queues, for tests and `factflow.testing`.

Sources read what the queue holds when the flow starts and then end; sinks append.
Everything is lost when the process ends, so this provider is for tests only.
"""

from __future__ import annotations

import threading
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from factflow.compiler.plan import QueueSettings
from factflow.connectors.batching import BatchSizer
from factflow.connectors.codec import item_to_data, message_from_data
from factflow.connectors.protocol import SourceSpec
from factflow.deadletter import DeadLetter
from factflow.messages import Message

BATCH_SIZE = 1000


class MemoryQueues:
    """Process-wide named queues of decoded records (envelopes or payloads)."""

    _queues: dict[str, list[Any]] = {}
    _lock = threading.Lock()

    @classmethod
    def put(cls, queue: str, records: list[Any]) -> None:
        with cls._lock:
            cls._queues.setdefault(queue, []).extend(records)

    @classmethod
    def read(cls, queue: str) -> list[Any]:
        with cls._lock:
            return list(cls._queues.get(queue, []))

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls._queues.clear()


class _MemoryPartition(StatefulSourcePartition[Message, int]):
    def __init__(
        self,
        queue: str,
        records: list[Any],
        raw: bool,
        part: int,
        parts: int,
        at: int,
        sizer: BatchSizer,
    ) -> None:
        self._queue, self._records, self._raw = queue, records, raw
        self._part, self._parts, self._next = part, parts, at
        self._sizer = sizer

    def next_batch(self) -> list[Message]:
        if self._next >= len(self._records):
            raise StopIteration
        # this partition's records are every `parts`-th one
        end = min(self._next + self._sizer.limit() * self._parts, len(self._records))
        batch = [
            message_from_data(self._records[i], raw=self._raw, queue=self._queue, position=i)
            for i in range(self._next, end)
            if i % self._parts == self._part
        ]
        self._next = end
        self._sizer.handed_out(len(batch))
        return batch

    def snapshot(self) -> int:
        return self._next


class MemorySource(FixedPartitionedSource[Message, int]):
    def __init__(
        self, queue: str, *, raw: bool = False, partitions: int = 1, min_batch: int = 1
    ) -> None:
        self.queue, self.raw, self.partitions, self.min_batch = queue, raw, partitions, min_batch

    def list_parts(self) -> list[str]:
        return [str(k) for k in range(self.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _MemoryPartition:
        records = MemoryQueues.read(self.queue)
        return _MemoryPartition(
            self.queue,
            records,
            self.raw,
            int(for_part),
            self.partitions,
            resume_state or 0,
            BatchSizer(BATCH_SIZE, minimum=self.min_batch),
        )


class _MemorySinkPartition(StatelessSinkPartition[Message | DeadLetter]):
    def __init__(self, queue: str) -> None:
        self._queue = queue

    def write_batch(self, items: list[Message | DeadLetter]) -> None:
        MemoryQueues.put(self._queue, [item_to_data(item) for item in items])


class MemorySink(DynamicSink[Message | DeadLetter]):
    def __init__(self, queue: str) -> None:
        self.queue = queue

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _MemorySinkPartition:
        return _MemorySinkPartition(self.queue)


def make_source(spec: SourceSpec, settings: QueueSettings) -> MemorySource:
    return MemorySource(
        spec.queue, raw=spec.raw, partitions=spec.partitions, min_batch=spec.min_batch
    )


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> MemorySink:
    return MemorySink(queue)

"""The init message: a one-partition source that emits it once per execution.

Its snapshot says whether it was emitted, so a resumed execution does not start over.
"""

from __future__ import annotations

from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from factflow.compiler.plan import InitMessage
from factflow.ids import record_id
from factflow.messages import Message


class _InitPartition(StatefulSourcePartition[Message, bool]):
    def __init__(self, message: Message, emitted: bool) -> None:
        self._message = message
        self._emitted = emitted

    def next_batch(self) -> list[Message]:
        if self._emitted:
            raise StopIteration
        self._emitted = True
        return [self._message]

    def snapshot(self) -> bool:
        return self._emitted


class InitSource(FixedPartitionedSource[Message, bool]):
    def __init__(self, init: InitMessage, execution_id: str) -> None:
        self._message = Message(
            payload=init.payload,
            metadata=dict(init.metadata),
            message_id=record_id(f"init:{execution_id}", 0),
            execution_id=execution_id,
        )

    def list_parts(self) -> list[str]:
        return ["init"]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _InitPartition:
        return _InitPartition(self._message, bool(resume_state))

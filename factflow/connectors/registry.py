"""Provider name -> its Bytewax source and sink for a queue.

Broker connectors are imported only when a pipeline uses them, so a file pipeline never
loads a broker client.
"""

from __future__ import annotations

from typing import Any

from bytewax.inputs import Source
from bytewax.outputs import Sink

from factflow.compiler.plan import QueueSettings
from factflow.dataflows.deadletter import DeadLetter, Undecodable
from factflow.exceptions import ConfigurationError
from factflow.messages import Message

SourceItem = Message | Undecodable
SinkItem = Message | DeadLetter


def make_source(
    queue: str, settings: QueueSettings, *, raw: bool, partitions: int, subscription: str
) -> Source[Any]:
    provider = settings.provider
    if provider == "memory":
        from factflow.connectors.memory import MemorySource

        return MemorySource(queue, raw=raw, partitions=partitions)
    if provider == "file":
        from factflow.connectors.file import FileSource, queue_path

        return FileSource(
            queue_path(_folder(settings), queue), queue, raw=raw, partitions=partitions
        )
    msg = f"queue provider '{provider}' has no source connector in this version of factflow"
    raise ConfigurationError(msg)


def make_sink(queue: str, settings: QueueSettings) -> Sink[Any]:
    provider = settings.provider
    if provider == "memory":
        from factflow.connectors.memory import MemorySink

        return MemorySink(queue)
    if provider == "file":
        from factflow.connectors.file import FileSink

        return FileSink(_folder(settings), queue, fsync=bool(settings.options.get("fsync", True)))
    msg = f"queue provider '{provider}' has no sink connector in this version of factflow"
    raise ConfigurationError(msg)


def _folder(settings: QueueSettings) -> str:
    if not settings.path:
        msg = "the file provider needs `queue.path`"
        raise ConfigurationError(msg)
    return settings.path

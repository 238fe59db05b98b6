"""The writer protocol: where a route's results go when the destination is not a queue
(a search index, an object store, a webhook)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from factflow.messages import Message
from factflow.types import JsonDict, JsonSchema

EMPTY_SCHEMA: JsonSchema = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True)
class WriterContext:
    """What a writer may use: built once per writer step and worker."""

    execution_id: str
    route_id: str
    step_id: str
    worker_index: int = 0
    storage: Any = None
    """The execution's stage storage (factflow.storage.Storage), None when stages are off."""
    database_url: str | None = None


class Writer(ABC):
    """Writes batches of messages somewhere durable.

    Subclasses set `name` (the YAML `sink: {type: ...}`) and `config_schema` (JSON Schema,
    checked at compile time like an adapter's). The runtime makes one instance per worker
    and calls `write_batch` with each batch; when it returns the batch must be durable,
    because the messages' sources are acknowledged after it. A batch may be written again
    after a crash, so writes must be idempotent by message id (upserts, keys derived from
    ids). Raising fails the epoch: the worker stops and the run resumes from its snapshot.
    """

    name: ClassVar[str]
    config_schema: ClassVar[JsonSchema] = EMPTY_SCHEMA

    def __init__(self, config: JsonDict, context: WriterContext) -> None:
        """Keep the (schema-checked) config and context; connect lazily if you can."""
        self.config: JsonDict = dict(config)
        self.context = context

    @abstractmethod
    def write_batch(self, messages: list[Message]) -> None:
        """Write `messages` durably and idempotently; raise on failure."""

    def close(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Release connections; called once when the worker stops."""

"""The adapter protocol: what a pipeline's `type:` names resolve to."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from factflow.messages import Message
from factflow.types import JsonDict, JsonSchema

EMPTY_SCHEMA: JsonSchema = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass
class Context:
    """What an adapter may use besides its message.

    Built by the runtime once per route and worker; adapters must not keep references to
    it across restarts. `storage` and `llm` are None when the pipeline configures none.
    """

    execution_id: str
    route_id: str
    worker_index: int = 0
    storage: Any = None
    llm: Any = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("factflow.adapter"))
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """A problem `Adapter.check_config` found beyond what the JSON Schema can say."""

    path: tuple[str | int, ...]
    code: str
    message: str
    suggestion: str


class Adapter(ABC):
    """One unit of work: takes one message and returns zero or more.

    Subclasses set `name` (the YAML `type:`) and `config_schema` (a JSON Schema for the
    adapter's `config:`, checked when the pipeline is compiled, never at the first message).
    `process` may be `async def` or a plain `def`; the runtime calls sync adapters without
    an event-loop hop. Returning `[]` filters the message; several messages fan out.

    Stateful adapters set `stateful = True` and implement `snapshot` / `restore`. The
    runtime then makes one instance per key of the route's `key:` and keeps the snapshot in
    Bytewax recovery, so the state survives a killed worker.
    """

    name: ClassVar[str]
    config_schema: ClassVar[JsonSchema] = EMPTY_SCHEMA
    stateful: ClassVar[bool] = False

    def __init__(self, config: JsonDict | None = None) -> None:
        """Keep the (already schema-checked) config; do no I/O here."""
        self.config: JsonDict = dict(config or {})

    @abstractmethod
    def process(
        self, message: Message, context: Context
    ) -> list[Message] | Awaitable[list[Message]]:
        """Handle one message.

        Called once per message (again on retry); may raise to signal failure, which the
        runtime retries and finally dead-letters. Must be cancel-safe when async.
        """

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        """Checks beyond `config_schema`, run at compile time on a schema-valid config."""
        return []

    def snapshot(self) -> Any:
        """State to keep for recovery; called at the end of each epoch. Must be picklable."""
        return None

    def restore(self, state: Any) -> None:  # noqa: B027 - an optional hook, empty by default
        """Load what `snapshot` returned, before the first message after a restart."""

"""The adapter protocol: what a pipeline's `type:` names resolve to."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from factflow.llm.base import EmbeddingClient, LLMClient
from factflow.messages import Message
from factflow.storage.base import StageStorage
from factflow.types import ConfigProblem, JsonDict, JsonSchema

EMPTY_SCHEMA: JsonSchema = {"type": "object", "properties": {}, "additionalProperties": False}


class Metrics(Protocol):
    """Counters an adapter adds to (`context.metrics.add("pages_fetched")`).

    In a run they are summed over workers and processes with the route's message counts,
    under `adapter:<route>:<stage>:<name>`; calls are cheap (no I/O) and never raise.
    """

    def add(self, name: str, amount: int = 1) -> None: ...


class Counts(Counter[str]):
    """`Metrics` kept in memory: what a Context outside a run (tests) counts into."""

    def add(self, name: str, amount: int = 1) -> None:
        self[name] += amount


@dataclass(frozen=True, slots=True)
class ModelCall:
    """The usage of one model call an adapter made (an embedding batch, a completion)."""

    kind: Literal["completion", "embedding"]
    provider: str
    """`local` for a model run in the worker (cost 0), else litellm's provider name."""
    model: str
    prompt_tokens: int
    completion_tokens: int = 0
    cost_usd: float | None = None
    """None when litellm has no price for the model."""
    latency_ms: float = 0.0


class UsageLog(Protocol):
    """Where an adapter reports its model calls (`context.usage.record(call)`).

    In a run each call becomes an `llm_usage` row against the execution (purpose
    `pipeline`), written before the batch's messages are acked, so execution stats and
    `GET /api/v1/usage` count it; `record` never raises.
    """

    def record(self, call: ModelCall) -> None: ...


class Calls(list[ModelCall]):
    """`UsageLog` kept in memory: what a Context outside a run (tests) records into."""

    def record(self, call: ModelCall) -> None:
        self.append(call)


@dataclass(frozen=True)
class Context:
    """What an adapter may use besides its message.

    Built by the runtime once per step and worker, on first use; adapters must not keep
    references to it across restarts. `storage` is None when stage storage is off, `llm`
    when no `FACTFLOW_LLM_MODEL` is set and `embeddings` when no
    `FACTFLOW_EMBEDDING_MODEL` is set (README, "Writing an adapter"). Making the clients costs
    nothing: litellm is loaded on the first call.
    """

    execution_id: str
    route_id: str
    stage: str = ""
    """The adapter's stage name in its route (what its stored outputs are filed under)."""
    worker_index: int = 0
    """This Bytewax worker's index across all processes of the execution (0-based)."""
    storage: StageStorage | None = None
    llm: LLMClient | None = None
    embeddings: EmbeddingClient | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("factflow.adapter"))
    metrics: Metrics = field(default_factory=Counts)
    usage: UsageLog = field(default_factory=Calls)


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

"""How a trigger starts an execution: the request, and the function the server supplies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from factflow.types import JsonDict


@dataclass(frozen=True, slots=True)
class TriggerStart:
    config_id: uuid.UUID
    trigger_context: JsonDict
    idempotency_key: str
    source: str
    """The execution's `source`: `event` or `schedule`."""
    inputs: dict[str, list[Any]] = field(default_factory=dict)
    init_payload: JsonDict | None = None
    """Merged into the pipeline's `init_message` payload (a trigger's `init_payload`)."""


class Starter(Protocol):
    def __call__(self, request: TriggerStart) -> uuid.UUID:
        """Start (or, for a used idempotency key, find) the execution; returns its id.

        Raises for a config that cannot run (missing, invalid, over the concurrency
        limit); the caller records the error on the event or schedule.
        """
        ...

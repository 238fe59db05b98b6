"""Dead letters: a message that could not be processed, with why and how often it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from factflow.messages import Message, utc_now_iso
from factflow.types import JsonDict

REASON_FAILED = "failed"
REASON_CIRCUIT_OPEN = "circuit_open"
REASON_UNDECODABLE = "undecodable"
REASON_NON_RETRYABLE = "non_retryable"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the dead-letter queue receives. `message` is the original, so it can be redriven."""

    route_id: str
    stage: str
    step_id: str
    reason: str
    error_type: str
    error: str
    attempts: int
    message: JsonDict
    failed_at: str = field(default_factory=utc_now_iso)
    lineage_id: str | None = None
    """The lineage row of the last attempt, when lineage is recorded."""

    @classmethod
    def of(
        cls,
        route_id: str,
        stage: str,
        step_id: str,
        message: Message,
        exc: BaseException,
        attempts: int,
        reason: str = REASON_FAILED,
    ) -> DeadLetter:
        return cls(
            route_id=route_id,
            stage=stage,
            step_id=step_id,
            reason=reason,
            error_type=type(exc).__name__,
            error=str(exc),
            attempts=attempts,
            message=message.to_envelope(),
        )

    def to_dict(self) -> JsonDict:
        return {
            "route_id": self.route_id,
            "stage": self.stage,
            "step_id": self.step_id,
            "reason": self.reason,
            "error_type": self.error_type,
            "error": self.error,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
            "lineage_id": self.lineage_id,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A source record that is not a message: it goes straight to the dead letters."""

    queue: str
    raw: Any
    error: str

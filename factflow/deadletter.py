"""Dead letters: a message that could not be processed, with why and how often it failed.

A record that is not a message (an `Undecodable`: not msgpack, JSON or UTF-8 text) is
kept as it arrived, body bytes and headers (`Original`), in its letter's envelope under
`original` (the body base64): a redrive publishes exactly those bytes and headers again.
The size rule: a body of up to ORIGINAL_LIMIT_BYTES (1 MiB) is kept whole; a larger one
keeps its first PREVIEW_BYTES only, the letter says `"truncated": true` with the full
`size`, and a redrive refuses it (OriginalTruncatedError) rather than publish part of it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from factflow.messages import Message, utc_now_iso
from factflow.types import JsonDict

REASON_FAILED = "failed"
REASON_CIRCUIT_OPEN = "circuit_open"
REASON_UNDECODABLE = "undecodable"
REASON_NON_RETRYABLE = "non_retryable"

ORIGINAL_LIMIT_BYTES = 1 << 20
"""Bodies up to this size are kept whole in a dead letter (and can be redriven)."""
PREVIEW_BYTES = 1000
"""What a dead letter shows as text of a body it cannot decode, and keeps of one too big."""
ORIGINAL_KEY = "original"
"""The envelope key of an `Original` in a dead letter's `message`."""


class OriginalTruncatedError(ValueError):
    """A dead letter's original body was larger than ORIGINAL_LIMIT_BYTES: not replayable."""


@dataclass(frozen=True, slots=True)
class Original:
    """A record exactly as it arrived: its body bytes and its headers."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> JsonDict:
        """The JSON form kept in a dead letter, the body cut to PREVIEW_BYTES when it is
        longer than ORIGINAL_LIMIT_BYTES."""
        truncated = len(self.body) > ORIGINAL_LIMIT_BYTES
        kept = self.body[:PREVIEW_BYTES] if truncated else self.body
        return {
            "body_base64": base64.b64encode(kept).decode("ascii"),
            "headers": dict(self.headers),
            "size": len(self.body),
            "truncated": truncated,
        }

    @classmethod
    def from_json(cls, data: Any) -> Original:
        """The original back from a letter; OriginalTruncatedError when it was cut."""
        if not isinstance(data, dict) or "body_base64" not in data:
            msg = "the dead letter keeps no original record"
            raise ValueError(msg)
        if data.get("truncated"):
            msg = (
                f"the original body ({data.get('size')} bytes) was larger than "
                f"{ORIGINAL_LIMIT_BYTES} bytes: the dead letter keeps only its first "
                f"{PREVIEW_BYTES} bytes, so it cannot be redriven"
            )
            raise OriginalTruncatedError(msg)
        headers = data.get("headers") or {}
        return cls(
            base64.b64decode(data["body_base64"]), {str(k): str(v) for k, v in headers.items()}
        )


def original_of(envelope: Any) -> Original | None:
    """The original record a dead letter's envelope keeps (undecodable records), else None
    (a message: redriven as its envelope). Raises OriginalTruncatedError for a cut one."""
    if isinstance(envelope, dict) and ORIGINAL_KEY in envelope:
        return Original.from_json(envelope[ORIGINAL_KEY])
    return None


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
    """A source record that is not a message: it goes straight to the dead letters, kept
    as it arrived (`body`, `headers`)."""

    queue: str
    body: bytes
    error: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def preview(self) -> str:
        """The start of the body as text, replacement characters where it is not UTF-8 and
        for NUL (which Postgres's jsonb refuses)."""
        return self.body[:PREVIEW_BYTES].decode("utf-8", "replace").replace("\0", "\ufffd")

    def envelope(self, execution_id: str | None = None) -> JsonDict:
        """The dead letter's `message`: a readable preview as payload, the execution that
        read it (a broker DLQ's redrive picks an execution's letters by it), the original."""
        envelope: JsonDict = {
            "payload": self.preview,
            "metadata": {"queue": self.queue},
            ORIGINAL_KEY: Original(self.body, self.headers).to_json(),
        }
        if execution_id is not None:
            envelope["execution_id"] = execution_id
        return envelope

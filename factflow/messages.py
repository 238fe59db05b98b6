"""The message that flows between adapters, and its wire envelope.

The envelope is the seed system's: `message_id`, `correlation_id` (the lineage row that
produced the message), `execution_id`, `route_id`, `stage` (the adapter that emitted it),
`timestamp` (ISO-8601 UTC, microseconds), `payload`, `metadata`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from factflow.types import JsonDict

ENVELOPE_FIELDS = (
    "message_id",
    "correlation_id",
    "execution_id",
    "route_id",
    "stage",
    "timestamp",
    "payload",
    "metadata",
)


def new_message_id() -> str:
    return str(uuid.uuid4())


# one encoder for every call: json.dumps with options builds a new one each time, which
# cost as much as the encoding (lineage hashes every input and output payload)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def canonical_json(value: Any) -> str:
    """A value's canonical JSON: sorted keys, no spaces, `str()` for other types."""
    return _CANONICAL.encode(value)


def text_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def content_hash(value: Any) -> str:
    """SHA-256 of a value's canonical JSON (sorted keys), stable across processes."""
    return text_hash(_CANONICAL.encode(value))


_second_prefix: tuple[int, str] = (-1, "")


def utc_now_iso() -> str:
    """Now in ISO-8601 UTC with microseconds: `2026-01-31T12:00:00.123456+00:00`.

    Every message gets one, so the date and time of the current second are formatted
    once per second and reused (one tuple, swapped atomically, so threads may share it).
    """
    global _second_prefix
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached, prefix = _second_prefix
    if cached != second:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_prefix = (second, prefix)
    return f"{prefix}.{micros:06d}+00:00"


@dataclass(frozen=True, slots=True)
class Message:
    """One message: a payload with its metadata and lineage identifiers.

    Messages are immutable; `derive` makes a child that points back at its parent.
    """

    payload: Any
    metadata: JsonDict = field(default_factory=dict)
    message_id: str = field(default_factory=new_message_id)
    correlation_id: str | None = None
    execution_id: str | None = None
    route_id: str | None = None
    stage: str | None = None
    timestamp: str = field(default_factory=utc_now_iso)

    def derive(self, payload: Any = None, metadata: JsonDict | None = None) -> Message:
        """A child message: new id, the parent's id as `correlation_id`, metadata merged.

        `payload=None` keeps the parent's payload; `metadata` is merged over the parent's.
        """
        merged = {**self.metadata, **(metadata or {})}
        return replace(
            self,
            payload=self.payload if payload is None else payload,
            metadata=merged,
            message_id=new_message_id(),
            correlation_id=self.message_id,
            timestamp=utc_now_iso(),
        )

    def with_changes(self, **changes: Any) -> Message:
        """A copy with the given envelope fields replaced (same message id unless given)."""
        return replace(self, **changes)

    def to_envelope(self) -> JsonDict:
        # in ENVELOPE_FIELDS order, spelled out: this runs for every message a sink writes
        return {
            "message_id": self.message_id,
            "correlation_id": self.correlation_id,
            "execution_id": self.execution_id,
            "route_id": self.route_id,
            "stage": self.stage,
            "timestamp": self.timestamp,
            "payload": self.payload,
            "metadata": self.metadata,
        }

    @classmethod
    def from_envelope(cls, data: Any) -> Message:
        """A message from an envelope dict, or from a bare payload.

        A dict with a `payload` key is an envelope; anything else is the payload itself.
        """
        if isinstance(data, dict) and "payload" in data:
            # a producer outside factflow may send nulls or numbers: keep the payload as it
            # is, ids as text, and never fail on a field's type
            known: dict[str, Any] = {
                k: str(data[k])
                for k in ("message_id", "correlation_id", "execution_id", "route_id", "stage")
                if data.get(k) is not None
            }
            if isinstance(data.get("timestamp"), str):
                known["timestamp"] = data["timestamp"]
            metadata = data.get("metadata")
            return cls(
                payload=data["payload"],
                metadata=metadata if isinstance(metadata, dict) else {},
                **known,
            )
        return cls(payload=data)

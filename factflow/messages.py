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


# the C encoder behind _CANONICAL, made once: `JSONEncoder.encode` makes a new one per
# call, a third of the time of encoding a small payload. No circular check (markers
# None): payloads come from JSON or adapters, a cycle fails with RecursionError instead.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_CANONICAL = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, str, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )
)


def canonical_json(value: Any) -> str:
    """A value's canonical JSON: sorted keys, no spaces, `str()` for other types."""
    if _C_CANONICAL is None:
        return _CANONICAL.encode(value)
    return "".join(_C_CANONICAL(value, 0))


def content_hash(value: Any) -> str:
    """SHA-256 of a value's canonical JSON (sorted keys), stable across processes."""
    return hashlib.sha256(_CANONICAL.encode(value).encode()).hexdigest()


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
        return make_message(
            self.payload if payload is None else payload,
            {**self.metadata, **metadata} if metadata else dict(self.metadata),
            new_message_id(),
            self.message_id,
            self.execution_id,
            self.route_id,
            self.stage,
            utc_now_iso(),
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
            get = data.get
            message_id, metadata, timestamp = get("message_id"), get("metadata"), get("timestamp")
            return make_message(
                data["payload"],
                metadata if isinstance(metadata, dict) else {},
                new_message_id() if message_id is None else str(message_id),
                _text(get("correlation_id")),
                _text(get("execution_id")),
                _text(get("route_id")),
                _text(get("stage")),
                timestamp if isinstance(timestamp, str) else utc_now_iso(),
            )
        return cls(payload=data)


def _text(value: object) -> str | None:
    """An envelope's id field as text (a producer outside factflow may send numbers)."""
    return None if value is None else str(value)


# the slots' own setters, in ENVELOPE_FIELDS order, for `make_message` below
(
    _set_message_id,
    _set_correlation_id,
    _set_execution_id,
    _set_route_id,
    _set_stage,
    _set_timestamp,
    _set_payload,
    _set_metadata,
) = (Message.__dict__[name].__set__ for name in ENVELOPE_FIELDS)
_new = object.__new__


def make_message(
    payload: Any,
    metadata: JsonDict,
    message_id: str,
    correlation_id: str | None,
    execution_id: str | None,
    route_id: str | None,
    stage: str | None,
    timestamp: str,
) -> Message:
    """`Message(...)` with every field given, for the per-message paths (sources, adapter
    steps): the frozen dataclass's `__init__` sets each field through
    `object.__setattr__`, which made it 2.6x slower than these slot stores."""
    m = _new(Message)
    _set_payload(m, payload)
    _set_metadata(m, metadata)
    _set_message_id(m, message_id)
    _set_correlation_id(m, correlation_id)
    _set_execution_id(m, execution_id)
    _set_route_id(m, route_id)
    _set_stage(m, stage)
    _set_timestamp(m, timestamp)
    return m

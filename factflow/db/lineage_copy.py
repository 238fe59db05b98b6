"""Lineage rows as Postgres binary COPY data, encoded by hand, one buffer per flush.

psycopg's `copy.write_row` dumps each value through its adapters (4.5 µs a lineage row
on this machine, as long as building the row); here a row is a few `struct.pack`s and
byte joins, and a flush is one `copy.write` of the whole buffer. Binary rather than text
COPY: the server parses it for less (uuids and timestamps arrive as their 16 and 8
bytes, no text to scan for escapes), and the server is what a COPY waits for.

The values a row holds, and what becomes of those Postgres cannot store:

- text columns are UTF-8; a NUL character (Postgres text cannot hold one, and one would
  fail the whole batch) and a lone surrogate (not encodable as UTF-8) each become
  U+FFFD, so that a hostile message id or error text costs its own bytes, not the batch;
- `metadata` is JSON (jsonb, version 1); NUL and lone surrogates in its strings and keys
  become U+FFFD likewise, infinite and NaN floats become null, and values JSON has no
  type for are written as their `str()`;
- timestamps are aware datetimes (naive ones are taken as UTC) or, on the per-message
  path, integers of microseconds since the Unix epoch; ids are `uuid.UUID`s, 16 bytes or
  UUID strings.
"""

from __future__ import annotations

import json
import math
import re
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from factflow.types import JsonDict

# the order rows are encoded in: the columns every row of one adapter step shares first,
# so that they are encoded once per step (`StepRowEncoder.head`)
COPY_COLUMNS = (
    "execution_id",
    "route_id",
    "adapter_name",
    "adapter_index",
    "stage_name",
    "status",
    "attempts",
    "id",
    "message_id",
    "parent_id",
    "input_hash",
    "output_hash",
    "error",
    "started_at",
    "completed_at",
    "duration_ms",
    "batch_id",
    "storage_key",
    "metadata",
)

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
"""The binary COPY signature, flags (none) and header extension length (none)."""
TRAILER = b"\xff\xff"
"""The end of binary COPY data (a field count of -1)."""

NULL = b"\xff\xff\xff\xff"
_FIELD_COUNT = struct.pack(">h", len(COPY_COLUMNS))
_pack_length = struct.Struct(">i").pack
_pack_int4 = struct.Struct(">ii").pack
_pack_uuid = struct.Struct(">i16s").pack
_pack_id = struct.Struct(">i16si").pack
_pack_times = struct.Struct(">iqiqid").pack  # started_at, completed_at, duration_ms
_pack_times_open = struct.Struct(">iq").pack  # started_at only
_pack_float8 = struct.Struct(">id").pack
_pack_int8 = struct.Struct(">iq").pack

_POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
_POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
EMPTY_METADATA = b"\x00\x00\x00\x03\x01{}"
"""`{}` as a jsonb field: what almost every row's metadata is."""


def utf8(value: str) -> bytes:
    """`value` as UTF-8 Postgres accepts: NUL and lone surrogates become U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", _REPLACEMENT)
    try:
        return value.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub(_REPLACEMENT, value).encode()


def text_field(value: str | None) -> bytes:
    """A text column's field: its length and UTF-8 bytes, or NULL."""
    if value is None:
        return NULL
    data = utf8(value)
    return _pack_length(len(data)) + data


def int4_field(value: int) -> bytes:
    return _pack_int4(4, value)


def uuid_field(value: uuid.UUID | str | bytes | None) -> bytes:
    """A uuid column's field; `value` as a UUID, its 16 bytes or its string."""
    if value is None:
        return NULL
    if isinstance(value, uuid.UUID):
        return _pack_uuid(16, value.bytes)
    if isinstance(value, str):
        return _pack_uuid(16, uuid.UUID(value).bytes)
    if len(value) != 16:
        msg = f"a uuid is 16 bytes, got {len(value)}"
        raise ValueError(msg)
    return _pack_uuid(16, value)


def parent_field(correlation_id: str | None) -> bytes:
    """A message's `correlation_id` as the `parent_id` field; NULL when it is no UUID
    (producers outside factflow may send any correlation id: theirs start a new tree)."""
    if correlation_id is None:
        return NULL
    if len(correlation_id) == 36 and correlation_id[8] == correlation_id[13] == "-":
        # the canonical spelling: 16 bytes of hex in 8-4-4-4-12 groups
        try:
            data = bytes.fromhex(correlation_id.replace("-", ""))
        except ValueError:
            data = b""
        if len(data) == 16 and correlation_id[18] == correlation_id[23] == "-":
            return _pack_uuid(16, data)
    try:
        return _pack_uuid(16, uuid.UUID(correlation_id).bytes)
    except ValueError:
        return NULL


def micros(value: datetime) -> int:
    """A datetime as microseconds since the Unix epoch (naive: taken as UTC)."""
    global _last_micros
    last = _last_micros
    # rows of one batch often share their datetimes (a started_at, a completed_at)
    if value is last[0]:
        return last[1]
    if value is last[2]:
        return last[3]
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    found = (aware - _POSTGRES_EPOCH) // _MICROSECOND + _POSTGRES_EPOCH_US
    _last_micros = (value, found, last[0], last[1])  # swapped at once: threads share it
    return found


_last_micros: tuple[datetime | None, int, datetime | None, int] = (None, 0, None, 0)


def times_field(started_us: int, completed_us: int | None, duration_ms: float | None) -> bytes:
    """The started_at, completed_at and duration_ms fields (microseconds since 1970)."""
    if completed_us is not None and duration_ms is not None:
        return _pack_times(
            8, started_us - _POSTGRES_EPOCH_US, 8, completed_us - _POSTGRES_EPOCH_US, 8, duration_ms
        )
    head = _pack_times_open(8, started_us - _POSTGRES_EPOCH_US)
    done = NULL if completed_us is None else _pack_int8(8, completed_us - _POSTGRES_EPOCH_US)
    return head + done + (NULL if duration_ms is None else _pack_float8(8, duration_ms))


def jsonb_field(value: JsonDict | None) -> bytes:
    """A jsonb column's field (format version 1, then the JSON text)."""
    if not value:
        return EMPTY_METADATA
    try:
        # orjson: a tenth of the stdlib's time; it refuses lone surrogates, keys that are
        # no strings and integers beyond 64 bits, which the slow path below takes
        data = orjson.dumps(value, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except (TypeError, orjson.JSONEncodeError):
        data = b"\\u0000"
    if b"\\u0000" in data:
        # NUL is escaped in JSON, and jsonb rejects the escape: replaced, as in text
        data = utf8(_JSON(_without_nul(value)))
    return _pack_length(len(data) + 1) + b"\x01" + data


def _without_nul(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        # the stdlib writes Infinity and NaN, which jsonb rejects (the whole batch, each
        # retry): null, as orjson writes them on the fast path
        return None
    if isinstance(value, str):
        return value.replace("\x00", _REPLACEMENT)
    if isinstance(value, dict):
        return {_without_nul(str(k)): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


class StepRowEncoder:
    """Encodes the rows of one adapter step; the columns they share are encoded once.

    Thread-safe: two threads may both fill the same `head` entry, with equal bytes.
    """

    __slots__ = ("_heads", "_shared")

    def __init__(
        self,
        execution_id: uuid.UUID,
        route_id: str,
        adapter_name: str,
        adapter_index: int,
        stage_name: str,
    ) -> None:
        self._shared = b"".join(
            (
                _FIELD_COUNT,
                uuid_field(execution_id),
                text_field(route_id),
                text_field(adapter_name),
                int4_field(adapter_index),
                text_field(stage_name),
            )
        )
        self._heads: dict[tuple[str, int], bytes] = {}

    def head(self, status: str, attempts: int) -> bytes:
        """The row's first fields: the step's, its status and attempts."""
        key = (status, attempts)
        head = self._heads.get(key)
        if head is None:
            head = self._shared + text_field(status) + int4_field(attempts)
            if len(self._heads) < 64:
                self._heads[key] = head
        return head

    def row(
        self,
        row_id: uuid.UUID,
        message_id: str,
        parent: bytes,
        status: str,
        attempts: int,
        input_hash: str | None,
        output_hash: str | None,
        error: str | None,
        started_us: int,
        completed_us: int | None,
        duration_ms: float | None,
        batch_id: str | None,
        storage_key: str | None,
        metadata: JsonDict | None,
    ) -> bytes:
        """One row; `parent` is already a field (`uuid_field`, `parent_field`)."""
        # the strings every row has, inline: a function call per field cost as much as
        # the rest of the row; NUL or a lone surrogate in any of them takes the slow path
        key = storage_key or ""
        if "\x00" in f"{message_id}{input_hash}{output_hash}{key}":
            return self._checked_row(locals())
        try:
            mid = message_id.encode()
            stored = NULL if storage_key is None else _pack_length(len(b := key.encode())) + b
            into = NULL if input_hash is None else _pack_length(len(b := input_hash.encode())) + b
            out = NULL if output_hash is None else _pack_length(len(b := output_hash.encode())) + b
        except UnicodeEncodeError:
            return self._checked_row(locals())
        if completed_us is None or duration_ms is None:
            times = times_field(started_us, completed_us, duration_ms)
        else:
            started, completed = started_us - _POSTGRES_EPOCH_US, completed_us - _POSTGRES_EPOCH_US
            times = _pack_times(8, started, 8, completed, 8, duration_ms)
        return b"".join(
            (
                self._heads.get((status, attempts)) or self.head(status, attempts),
                _pack_id(16, row_id.bytes, len(mid)),  # id, then message_id's length
                mid,
                parent,
                into,
                out,
                NULL if error is None else text_field(error),
                times,
                NULL if batch_id is None else text_field(batch_id),
                stored,
                EMPTY_METADATA if not metadata else jsonb_field(metadata),
            )
        )

    def _checked_row(self, values: dict[str, Any]) -> bytes:
        """`row` for strings that need `utf8`'s replacements (NUL, lone surrogates)."""
        return b"".join(
            (
                self.head(values["status"], values["attempts"]),
                _pack_uuid(16, values["row_id"].bytes),
                text_field(values["message_id"]),
                values["parent"],
                text_field(values["input_hash"]),
                text_field(values["output_hash"]),
                text_field(values["error"]),
                times_field(values["started_us"], values["completed_us"], values["duration_ms"]),
                text_field(values["batch_id"]),
                text_field(values["storage_key"]),
                jsonb_field(values["metadata"]),
            )
        )


def copy_buffer(rows: list[bytes]) -> bytes:
    """Encoded rows as one binary COPY stream: header, rows, trailer."""
    return b"".join((HEADER, *rows, TRAILER))

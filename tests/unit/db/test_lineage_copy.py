"""The binary COPY encoder of lineage rows: framing, and strings Postgres cannot store."""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from factflow.db.lineage_copy import (
    COPY_COLUMNS,
    EMPTY_METADATA,
    HEADER,
    NULL,
    TRAILER,
    StepRowEncoder,
    copy_buffer,
    jsonb_field,
    micros,
    parent_field,
    text_field,
    utf8,
)
from factflow.db.lineage_writer import LINEAGE_COLUMNS, encode_row, new_row_id
from factflow.messages import _CANONICAL, canonical_json, content_hash

EXECUTION = uuid.UUID("01234567-89ab-7cde-8f01-23456789abcd")
HOSTILE = 'tab\there\nnewline\rcr back\\slash \\N quote\' "dq" ünï 漢字 🦀 \x7f\x01'


def fields(row: bytes) -> list[bytes | None]:
    """A binary COPY row split into its fields (None for NULL)."""
    (count,) = struct.unpack_from(">h", row, 0)
    at, out = 2, []
    for _ in range(count):
        (size,) = struct.unpack_from(">i", row, at)
        at += 4
        if size == -1:
            out.append(None)
            continue
        out.append(row[at : at + size])
        at += size
    assert at == len(row), "trailing bytes after the last field"
    return out


def decoded(row: bytes) -> dict[str, Any]:
    """The row's values by column name, as Postgres would read them."""
    raw = dict(zip(COPY_COLUMNS, fields(row), strict=True))
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            out[name] = None
        elif name in ("id", "execution_id", "parent_id"):
            out[name] = uuid.UUID(bytes=value)
        elif name in ("adapter_index", "attempts"):
            out[name] = struct.unpack(">i", value)[0]
        elif name in ("started_at", "completed_at"):
            out[name] = epoch + timedelta(microseconds=struct.unpack(">q", value)[0])
        elif name == "duration_ms":
            out[name] = struct.unpack(">d", value)[0]
        elif name == "metadata":
            assert value[:1] == b"\x01", "jsonb format version 1"
            out[name] = json.loads(value[1:].decode())
        else:
            out[name] = value.decode()  # strict: invalid UTF-8 fails here
    return out


def encoder() -> StepRowEncoder:
    return StepRowEncoder(EXECUTION, "route", "adapter", 2, "stage")


def test_a_row_holds_every_column_in_copy_order() -> None:
    row_id, parent = new_row_id(), new_row_id()
    started = datetime(2026, 12, 3, 5, 6, 7, 123456, tzinfo=UTC)
    row = encoder().row(
        row_id,
        "m-1",
        parent_field(str(parent)),
        "completed",
        3,
        "a" * 64,
        "b" * 64,
        None,
        micros(started),
        micros(started) + 2500,
        2.5,
        None,
        "executions/x/route/stage/m-1",
        {"url": "https://example.org/ü"},
    )
    assert sorted(COPY_COLUMNS) == sorted(LINEAGE_COLUMNS)
    assert decoded(row) == {
        "execution_id": EXECUTION,
        "route_id": "route",
        "adapter_name": "adapter",
        "adapter_index": 2,
        "stage_name": "stage",
        "status": "completed",
        "attempts": 3,
        "id": row_id,
        "message_id": "m-1",
        "parent_id": parent,
        "input_hash": "a" * 64,
        "output_hash": "b" * 64,
        "error": None,
        "started_at": started,
        "completed_at": started + timedelta(microseconds=2500),
        "duration_ms": 2.5,
        "batch_id": None,
        "storage_key": "executions/x/route/stage/m-1",
        "metadata": {"url": "https://example.org/ü"},
    }


def test_hostile_strings_are_kept_byte_for_byte() -> None:
    # binary COPY has no escapes: tabs, newlines, backslashes and \N are plain bytes
    row = encoder().row(
        new_row_id(), HOSTILE, NULL, "failed", 1, HOSTILE, None, HOSTILE, 0, None, None,
        HOSTILE, HOSTILE, {HOSTILE: HOSTILE},
    )  # fmt: skip
    values = decoded(row)
    for name in ("message_id", "input_hash", "error", "batch_id", "storage_key"):
        assert values[name] == HOSTILE, name
    assert values["metadata"] == {HOSTILE: HOSTILE}
    assert (values["output_hash"], values["completed_at"], values["duration_ms"]) == (
        None,
        None,
        None,
    )


def test_nul_and_lone_surrogates_become_the_replacement_character() -> None:
    # Postgres text holds neither (one would fail the batch): each becomes U+FFFD
    assert utf8("a\x00b") == "a\ufffdb".encode()
    assert utf8("a\ud800b").decode() == "a\ufffdb"
    assert utf8("ok ü 🦀") == "ok ü 🦀".encode()
    hostile = "id\x00with\ud83dnul"
    row = encoder().row(
        new_row_id(), hostile, NULL, "failed", 1, "h\x00", "h", "boom\x00", 0, 1, 0.001,
        "b\ud800", "k\x00", {"k\x00": ["v\x00", {"x": "\udfff"}]},
    )  # fmt: skip
    values = decoded(row)
    assert values["message_id"] == "id\ufffdwith\ufffdnul"
    assert (values["input_hash"], values["error"]) == ("h\ufffd", "boom\ufffd")
    assert (values["batch_id"], values["storage_key"]) == ("b\ufffd", "k\ufffd")
    assert values["metadata"] == {"k\ufffd": ["v\ufffd", {"x": "\ufffd"}]}


def test_the_fast_and_the_checked_path_encode_alike() -> None:
    step, row_id = encoder(), new_row_id()
    args: dict[str, Any] = {
        "row_id": row_id, "message_id": HOSTILE, "parent": NULL, "status": "completed",
        "attempts": 1, "input_hash": "x", "output_hash": None, "error": "e", "started_us": 5,
        "completed_us": 9, "duration_ms": 0.004, "batch_id": "b", "storage_key": None,
        "metadata": {"a": 1},
    }  # fmt: skip
    assert step.row(**args) == step._checked_row(args)


def test_metadata_json_edge_cases() -> None:
    assert jsonb_field(None) == jsonb_field({}) == EMPTY_METADATA

    def back(value: dict[Any, Any]) -> Any:
        data = jsonb_field(value)
        assert struct.unpack(">i", data[:4])[0] == len(data) - 4
        return json.loads(data[5:].decode())

    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert back({"when": when}) == {"when": str(when)}  # no JSON type: its str()
    assert back({"big": 2**70}) == {"big": 2**70}  # beyond orjson's 64 bits
    assert back({1: "int key"}) == {"1": "int key"}
    assert back({"s": "\ud800"}) == {"s": "\ufffd"}
    assert back({"n": "a\x00b"}) == {"n": "a\ufffdb"}
    assert back({"t": "tab\t\\"}) == {"t": "tab\t\\"}
    # JSON has no Infinity nor NaN (jsonb rejects them): null on either path
    inf, nan = float("inf"), float("nan")
    assert back({"x": inf, "y": -inf, "z": nan, "f": 1.5}) == {
        "x": None, "y": None, "z": None, "f": 1.5,
    }  # fmt: skip
    slow = jsonb_field({"x": inf, "n": "a\x00", "l": [nan, 2.5], "big": 2**70})
    assert b"Infinity" not in slow and b"NaN" not in slow
    assert back({"x": inf, "n": "a\x00", "l": [nan, 2.5], "big": 2**70}) == {
        "x": None, "n": "a\ufffd", "l": [None, 2.5], "big": 2**70,
    }  # fmt: skip


def test_metadata_orjson_can_encode_is_written_by_orjson() -> None:
    # a datetime is no reason for the slow path (orjson's default=str); the numbers show
    # which encoder wrote it: the stdlib's would be 1e+16 and 1e-07
    when = datetime(2026, 1, 1, tzinfo=UTC)
    data = b'{"when":"2026-01-01 00:00:00+00:00","x":1e16,"y":1e-7}'
    expected = struct.pack(">i", len(data) + 1) + b"\x01" + data
    assert jsonb_field({"when": when, "x": 1e16, "y": 1e-7}) == expected


def test_a_step_encodes_each_status_and_attempts_head_once() -> None:
    step = encoder()
    head = step.head("completed", 1)
    assert step.head("completed", 1) is head
    assert step.head("failed", 1) != head
    assert step.head("completed", 2) != head
    # the cache holds at most 64 heads, however many attempts rows count
    heads = {n: step.head("failed", n) for n in range(100)}
    assert len(step._heads) == 64
    assert all(step._heads[key] == heads[key[1]] for key in step._heads if key[0] == "failed")
    assert step.head("failed", 99) is not heads[99]
    assert step.head("failed", 99) == heads[99]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("01234567-89ab-7cde-8f01-23456789abcd", EXECUTION),
        ("01234567-89AB-7CDE-8F01-23456789ABCD", EXECUTION),
        ("{01234567-89ab-7cde-8f01-23456789abcd}", EXECUTION),
        ("0123456789ab7cde8f0123456789abcd", EXECUTION),
        ("not-a-lineage-id", None),
        ("01234567-89ab-7cde-8f01-23456789abcZ", None),
        ("01234567-89ab-7cde-8f01 23456789abcd", None),
        ("0123 4567-89ab-7cde-8f01-23456789abc", None),
        ("", None),
    ],
)
def test_correlation_ids_as_parents(value: str | None, expected: uuid.UUID | None) -> None:
    field = parent_field(value)
    assert field == (NULL if expected is None else struct.pack(">i", 16) + expected.bytes)


def test_timestamps_in_microseconds_since_1970() -> None:
    aware = datetime(2026, 12, 3, 1, 2, 3, 456789, tzinfo=UTC)
    expected = int(aware.timestamp()) * 1_000_000 + 456789
    assert micros(aware) == expected
    assert micros(aware.replace(tzinfo=None)) == expected  # naive: taken as UTC
    assert micros(aware.astimezone(timezone(timedelta(hours=5)))) == expected
    assert micros(datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)) == 946_684_799_000_000


def test_tuples_encode_like_the_step_encoder() -> None:
    row_id, now = new_row_id(), datetime.now(UTC)
    values = (
        row_id, EXECUTION, "route", "adapter", 2, "stage", "m", None, "completed", 1, None,
        None, None, now, now, 0.0, None, None, {},
    )  # fmt: skip
    expected = encoder().row(
        row_id, "m", NULL, "completed", 1, None, None, None, micros(now), micros(now), 0.0,
        None, None, {},
    )  # fmt: skip
    assert encode_row(values) == expected


def test_a_buffer_is_header_rows_trailer() -> None:
    assert copy_buffer([]) == HEADER + TRAILER
    assert copy_buffer([b"r1", b"r2"]) == HEADER + b"r1r2" + TRAILER
    assert HEADER.startswith(b"PGCOPY\n\xff\r\n\x00")
    assert text_field(None) == NULL
    assert text_field("ü") == struct.pack(">i", 2) + "ü".encode()


@pytest.mark.parametrize(
    "value",
    [
        {"id": 1, "user": "ü\u2028", "value": 1.5e16, "tag": [1, None, True, {"b": 2, "a": 0.1}]},
        "str",
        5,
        None,
        [1, 2],
        {3: "x", 1: (1, 2)},
        {"when": datetime(2026, 1, 1, tzinfo=UTC)},
        2**70,
        float("nan"),
    ],
)
def test_canonical_json_is_the_json_encoder_s(value: Any) -> None:
    # lineage hashes are SHA-256 of this text: the faster call must not change one byte
    assert canonical_json(value) == _CANONICAL.encode(value)
    assert content_hash(value) == hashlib.sha256(_CANONICAL.encode(value).encode()).hexdigest()

"""Field encoders of the lineage COPY rows and the row-id generator, value by value."""

from __future__ import annotations

import struct
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from factflow.db import lineage_writer
from factflow.db.exceptions import DatabaseError
from factflow.db.lineage_copy import NULL, micros, parent_field, times_field, uuid_field
from tests.unit.db.test_lineage_copy import fields

ID = uuid.UUID("0123abcd-89ab-7cde-8f01-23456789abcd")
EPOCH_2000 = 946_684_800_000_000


def test_uuid_field_of_each_spelling() -> None:
    field = b"\x00\x00\x00\x10" + ID.bytes
    assert uuid_field(ID) == field
    assert uuid_field(str(ID)) == field
    assert uuid_field(str(ID).upper()) == field
    assert uuid_field(ID.bytes) == field
    assert uuid_field(None) == NULL
    with pytest.raises(ValueError, match=r"^a uuid is 16 bytes, got 15$"):
        uuid_field(ID.bytes[:15])
    with pytest.raises(ValueError, match=r"^a uuid is 16 bytes, got 17$"):
        uuid_field(ID.bytes + b"\x00")


@pytest.mark.parametrize(
    "value",
    [str(ID), str(ID).upper(), "{" + str(ID) + "}", "urn:uuid:" + str(ID), ID.hex],
)
def test_parent_field_of_uuid_spellings(value: str) -> None:
    assert parent_field(value) == b"\x00\x00\x00\x10" + ID.bytes


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "x" * 36,
        "0123abcd-89ab-7cde-8f01-23456789abcg",  # canonical shape, no hex
        "0123abcd-89ab-7cde-8f01-23456789abc",
    ],
)
def test_parent_field_of_no_uuid_is_null(value: str | None) -> None:
    assert parent_field(value) == NULL


def test_parent_field_dashes_elsewhere_still_parse_like_uuid() -> None:
    # 36 characters with dashes at 8 and 13 but others moved: uuid.UUID decides
    for moved in (
        "0123abcd-89ab-7cde8-f01-23456789abcd",
        "0123abcd-89ab-7cde-8f0123-456789abcd",
        "0123abcd-89ab-7cde8f-0123456789abcd-",
    ):
        assert len(moved) == 36
        assert parent_field(moved) == b"\x00\x00\x00\x10" + ID.bytes


def unpack_times(data: bytes) -> list[int | float | None]:
    """`times_field`'s three fields (started, completed, duration) decoded; None for NULL."""
    out: list[int | float | None] = []
    for kind, value in zip("qqd", fields(struct.pack(">h", 3) + data), strict=True):
        if value is None:
            out.append(None)
            continue
        assert len(value) == 8
        out.append(struct.unpack(">" + kind, value)[0])
    return out


@pytest.mark.parametrize(
    ("completed", "duration"),
    [(None, None), (5_000_123, None), (None, 2.5), (5_000_123, 2.5), (0, 0.0)],
)
def test_times_field_each_combination(completed: int | None, duration: float | None) -> None:
    started = 1_000_007
    expected = [
        started - EPOCH_2000,
        None if completed is None else completed - EPOCH_2000,
        duration,
    ]
    assert unpack_times(times_field(started, completed, duration)) == expected
    assert unpack_times(times_field(0, completed, duration))[0] == -EPOCH_2000
    assert unpack_times(times_field(EPOCH_2000, completed, duration))[0] == 0


def test_micros_aware_naive_and_cached() -> None:
    a = datetime(1970, 1, 1, tzinfo=UTC)
    b = datetime(2000, 1, 1, 0, 0, 0, 1)
    c = datetime(2024, 5, 6, 7, 8, 9, 999_999, tzinfo=timezone(timedelta(hours=-3)))
    expect = {id(a): 0, id(b): EPOCH_2000 + 1, id(c): int(c.timestamp()) * 1_000_000 + 999_999}
    for value in (a, b, a, b, c, a, c, c, b, a, b):
        assert micros(value) == expect[id(value)]
    # equal but not identical values are computed again
    assert micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000
    assert micros(datetime(1969, 12, 31, 23, 59, 59, 999_999)) == -1


def test_random_pool_reads_chunks_and_resets() -> None:
    pool = lineage_writer._RandomPool()
    assert pool.data == b""
    assert pool.offset == 0
    first = pool.take10()
    assert len(pool.data) == 10 * 4096
    assert pool.offset == 10
    assert first == int.from_bytes(pool.data[:10], "big")
    second = pool.take10()
    assert second == int.from_bytes(pool.data[10:20], "big")
    data = pool.data
    for _ in range(4094):
        value = pool.take10()
    assert pool.data is data
    assert value == int.from_bytes(data[-10:], "big")
    pool.take10()
    assert pool.data is not data
    assert pool.offset == 10
    assert len(pool.data) == 10 * 4096
    pool.reset()
    assert pool.data == b""
    assert pool.offset == 0
    values = {pool.take10() for _ in range(5000)}
    assert len(values) == 5000
    assert max(values) < 1 << 80
    assert max(values) >= 1 << 72  # all 10 bytes are used


def test_new_row_ids_are_uuid7() -> None:
    before = time.time_ns() // 1_000_000
    ids = [lineage_writer.new_row_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for row_id in ids:
        assert isinstance(row_id, uuid.UUID)
        assert row_id.version == 7
        assert row_id.variant == uuid.RFC_4122
        assert row_id.is_safe is uuid.SafeUUID.unknown
        assert before <= row_id.int >> 80 <= after
        assert uuid.UUID(str(row_id)) == row_id
    # the random bits below the version and variant vary
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == len(ids)
    assert len({(i.int >> 64) & 0xFFF for i in ids}) > 1000


def _values(message_id: str) -> tuple[object, ...]:
    """One row's values in LINEAGE_COLUMNS order, as `extend_rows` takes them."""
    record = lineage_writer.LineageRecord(
        id=lineage_writer.new_row_id(),
        execution_id=ID,
        route_id="r",
        adapter_name="a",
        adapter_index=0,
        stage_name="a",
        message_id=message_id,
        parent_id=None,
        status="completed",
        attempts=1,
        input_hash=None,
        output_hash=None,
        error=None,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        completed_at=None,
        duration_ms=None,
        batch_id=None,
        storage_key=None,
    )
    return tuple(getattr(record, name) for name in lineage_writer.LINEAGE_COLUMNS)


def test_extend_rows_buffers_each_row_encoded() -> None:
    writer = lineage_writer.LineageWriter(ID)
    rows = [_values("m1"), _values("m2")]
    writer.extend_rows(rows)
    assert len(writer) == 2
    assert writer._rows == [lineage_writer.encode_row(row) for row in rows]


def test_discard_drops_the_buffer_and_the_writer_takes_rows_again() -> None:
    writer = lineage_writer.LineageWriter(ID)
    writer.extend_rows([_values("m1"), _values("m2"), _values("m3")])
    assert writer.discard() == 3
    assert len(writer) == 0
    assert writer.discard() == 0
    writer.record(
        route_id="r",
        adapter_name="a",
        adapter_index=0,
        message_id="m4",
        status="completed",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert len(writer) == 1


def test_a_flush_error_without_text_is_named_by_its_type() -> None:
    # Postgres always sends a message with its errors, so the COPY is replaced here by a
    # stand-in that raises a psycopg error without one (the only test double in this file)
    writer = lineage_writer.LineageWriter(ID)
    writer.extend_rows([_values("m1"), _values("m2")])

    def copy_failing(conn: object) -> None:
        raise psycopg.errors.QueryCanceled

    writer._copy = copy_failing  # type: ignore[method-assign,assignment]
    with pytest.raises(DatabaseError) as raised:
        writer.flush(None)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"lineage flush of 2 rows for execution {ID} failed: QueryCanceled"
    )
    assert len(writer) == 2  # kept for the retry

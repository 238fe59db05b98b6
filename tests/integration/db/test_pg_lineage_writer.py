"""The lineage writer against Postgres: every column as stored, failed flushes and their
retry, and flushes in the caller's transaction or one of their own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from factflow.db import DbConnection, connect
from factflow.db.exceptions import DatabaseError
from factflow.db.lineage_writer import LINEAGE_COLUMNS, LineageRecord, LineageWriter, new_row_id
from factflow.db.repositories.executions import Execution

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
METADATA = {"url": "https://example.org/ü", "nested": {"list": [1, 2.5, None, True]}, "e": {}}


def stored(conn: DbConnection, row_id: uuid.UUID) -> dict[str, Any]:
    """The row's columns as Postgres holds them."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(LINEAGE_COLUMNS)} FROM lineage WHERE id = %s", (row_id,))
        row = cur.fetchone()
    assert row is not None, f"row {row_id} not written"
    return dict(zip(LINEAGE_COLUMNS, row, strict=True))


def count(conn: DbConnection, execution_id: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT count(*) FROM lineage WHERE execution_id = %s", (execution_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _record(writer: LineageWriter, **values: Any) -> uuid.UUID:
    values = {
        "route_id": "r",
        "adapter_name": "a",
        "adapter_index": 0,
        "message_id": "m",
        "status": "completed",
        "started_at": T0,
        **values,
    }
    return writer.record(**values)


def test_record_stores_every_column_as_given(conn: DbConnection, execution: Execution) -> None:
    writer = LineageWriter(execution.id)
    parent = new_row_id()
    full = _record(
        writer, route_id="split", adapter_name="segment", adapter_index=3, message_id="m-1",
        status="dead_lettered", completed_at=T0 + timedelta(milliseconds=2.5), stage_name="seg",
        parent_id=parent, attempts=4, input_hash="in", output_hash="out", error="Boom: bad",
        duration_ms=7.25, batch_id="batch-1", storage_key="executions/x/m-1", metadata=METADATA,
    )  # fmt: skip
    # stage_name from the adapter name, duration_ms from completed - started
    defaults = _record(writer, adapter_name="embed", completed_at=T0 + timedelta(seconds=1.5))
    # a started row has no completed_at; a duration may be given all the same
    open_ = _record(writer, status="processing", duration_ms=3.0)
    # empty strings are values, not NULL
    empty = _record(writer, message_id="", input_hash="", output_hash="", storage_key="")
    empty_error = _record(writer, error="", batch_id="", status="failed")
    assert writer.flush(conn) == 5

    assert stored(conn, full) == {
        "id": full, "execution_id": execution.id, "route_id": "split",
        "adapter_name": "segment", "adapter_index": 3, "stage_name": "seg",
        "message_id": "m-1", "parent_id": parent, "status": "dead_lettered", "attempts": 4,
        "input_hash": "in", "output_hash": "out", "error": "Boom: bad", "started_at": T0,
        "completed_at": T0 + timedelta(milliseconds=2.5), "duration_ms": 7.25,
        "batch_id": "batch-1", "storage_key": "executions/x/m-1", "metadata": METADATA,
    }  # fmt: skip
    assert stored(conn, defaults) == {
        "id": defaults, "execution_id": execution.id, "route_id": "r",
        "adapter_name": "embed", "adapter_index": 0, "stage_name": "embed",
        "message_id": "m", "parent_id": None, "status": "completed", "attempts": 1,
        "input_hash": None, "output_hash": None, "error": None, "started_at": T0,
        "completed_at": T0 + timedelta(seconds=1.5), "duration_ms": 1500.0,
        "batch_id": None, "storage_key": None, "metadata": {},
    }  # fmt: skip
    row = stored(conn, open_)
    assert (row["status"], row["completed_at"], row["duration_ms"]) == ("processing", None, 3.0)
    row = stored(conn, empty)
    assert [row[k] for k in ("message_id", "input_hash", "output_hash", "storage_key")] == [""] * 4
    row = stored(conn, empty_error)
    assert (row["error"], row["batch_id"], row["completed_at"]) == ("", "", None)


def test_add_and_extend_rows_store_every_column(conn: DbConnection, execution: Execution) -> None:
    writer = LineageWriter(execution.id)
    started = datetime(2026, 3, 4, 7, 6, 7, 5, tzinfo=timezone(timedelta(hours=2)))
    record = LineageRecord(
        id=new_row_id(), execution_id=execution.id, route_id="r2", adapter_name="d",
        adapter_index=1, stage_name="d-stage", message_id="m2", parent_id=new_row_id(),
        status="completed", attempts=2, input_hash="h-in", output_hash="h-out",
        error="warn", started_at=started, completed_at=started + timedelta(microseconds=9),
        duration_ms=None, batch_id="b", storage_key="k", metadata={"漢字": ["🦀", {}]},
    )  # fmt: skip
    assert writer.add(record) == record.id
    # rows built elsewhere may carry ids as strings and naive datetimes (taken as UTC)
    as_text = [new_row_id(), new_row_id()]
    naive = datetime(2026, 3, 4, 5, 6, 7)
    values = [
        (
            str(as_text[0]), str(execution.id), "r3", "e", 0, "e", "m3", str(record.id),
            "failed", 1, "i", "o", "err", naive, None, 1.5, None, "key", {"n": 1},
        ),
        (
            as_text[1], execution.id, "r3", "e", 0, "e", "m4", None,
            "completed", 1, None, None, None, naive, naive, None, None, None, {},
        ),
    ]  # fmt: skip
    writer.extend_rows(values)
    assert writer.flush(conn) == 3

    assert stored(conn, record.id) == {name: getattr(record, name) for name in LINEAGE_COLUMNS}
    first = stored(conn, as_text[0])
    assert tuple(first.values()) == (
        as_text[0], execution.id, "r3", "e", 0, "e", "m3", record.id, "failed", 1, "i", "o",
        "err", naive.replace(tzinfo=UTC), None, 1.5, None, "key", {"n": 1},
    )  # fmt: skip
    second = stored(conn, as_text[1])
    assert (second["parent_id"], second["completed_at"], second["duration_ms"]) == (
        None,
        naive.replace(tzinfo=UTC),
        None,
    )


def test_strings_that_need_replacements_keep_the_other_columns(
    conn: DbConnection, execution: Execution
) -> None:
    # a NUL or a lone surrogate sends the row down the checked path: every column still
    writer = LineageWriter(execution.id)
    parent = new_row_id()
    surrogate = _record(
        writer, message_id="m\ud800", parent_id=parent, input_hash="i", output_hash="o",
        error="e", completed_at=T0 + timedelta(seconds=1), batch_id="b", storage_key="k",
        metadata={"a": 1},
    )  # fmt: skip
    nul = _record(writer, message_id="m\x00", output_hash="o", input_hash="i", attempts=2)
    assert writer.flush(conn) == 2
    row = stored(conn, surrogate)
    assert [row[k] for k in ("message_id", "parent_id", "input_hash", "output_hash")] == [
        "m\ufffd",
        parent,
        "i",
        "o",
    ]
    assert [row[k] for k in ("error", "batch_id", "storage_key", "metadata")] == [
        "e",
        "b",
        "k",
        {"a": 1},
    ]
    assert (row["completed_at"], row["duration_ms"]) == (T0 + timedelta(seconds=1), 1000.0)
    row = stored(conn, nul)
    assert [row[k] for k in ("message_id", "input_hash", "output_hash", "attempts")] == [
        "m\ufffd",
        "i",
        "o",
        2,
    ]


def test_the_encoder_of_a_step_is_made_once(execution: Execution) -> None:
    writer = LineageWriter(execution.id)
    first = writer.encoder("r", "a", 0, "s")
    assert writer.encoder("r", "a", 0, "s") is first
    others = [
        writer.encoder("r2", "a", 0, "s"),
        writer.encoder("r", "b", 0, "s"),
        writer.encoder("r", "a", 1, "s"),
        writer.encoder("r", "a", 0, "t"),
    ]
    assert len({id(e) for e in [first, *others]}) == 5


def test_a_fresh_writer_does_not_skip_ids_already_written(
    conn: DbConnection, execution: Execution
) -> None:
    # only a retry may skip written ids (a lost commit's); a first flush of an id that is
    # there already is a bug upstream and fails
    writer = LineageWriter(execution.id)
    row_id = _record(writer)
    assert writer.flush(conn) == 1
    again = LineageWriter(execution.id)
    _record(again, row_id=row_id)
    with pytest.raises(DatabaseError, match="duplicate key"):
        again.flush(conn)
    # dropped on purpose: the next flush is a first one again
    assert again.discard() == 1
    _record(again, row_id=row_id)
    with pytest.raises(DatabaseError, match="duplicate key"):
        again.flush(conn)


def _broken(db_url: str) -> DbConnection:
    broken = connect(db_url)
    with connect(db_url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (broken.info.backend_pid,))
    return broken


def test_a_failed_flush_says_what_failed_and_a_retry_writes_each_row_once(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    committed = _record(writer, message_id="m1")
    assert writer.flush(conn) == 1
    # the retry holds a row whose commit went through before the connection broke
    _record(writer, message_id="m1", row_id=committed)
    fresh = _record(writer, message_id="m2", metadata=METADATA, error="e")
    broken = _broken(db_url)
    with pytest.raises(DatabaseError) as failed:
        writer.flush(broken)
    message = str(failed.value)
    cause = str(failed.value.__cause__).splitlines()[0]
    assert message == f"lineage flush of 2 rows for execution {execution.id} failed: {cause}"
    assert "\n" not in message
    assert isinstance(failed.value.__cause__, psycopg.Error)
    assert len(writer) == 2
    # a second failure keeps the rows as well
    with pytest.raises(DatabaseError, match="lineage flush of 2 rows"):
        writer.flush(broken)
    assert writer.flush(conn) == 2
    assert count(conn, execution.id) == 2
    row = stored(conn, fresh)
    assert (row["message_id"], row["error"], row["metadata"]) == ("m2", "e", METADATA)
    # after a successful retry the writer is back to first flushes: no ids skipped
    _record(writer, row_id=fresh)
    with pytest.raises(DatabaseError, match="duplicate key"):
        writer.flush(conn)


def test_a_retry_inside_the_caller_s_transaction(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    committed = _record(writer)
    assert writer.flush(conn) == 1
    _record(writer, row_id=committed)
    _record(writer, message_id="m2")
    with pytest.raises(DatabaseError):
        writer.flush(_broken(db_url))
    with psycopg.connect(db_url) as caller:
        caller.execute("SELECT 1")
        assert writer.flush(caller) == 2
        assert count(caller, execution.id) == 2
        assert count(conn, execution.id) == 1
        caller.commit()
    assert count(conn, execution.id) == 2


def test_an_idle_connection_without_autocommit_gets_its_own_commit(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    _record(writer)
    with psycopg.connect(db_url) as own:
        assert own.info.transaction_status == TransactionStatus.IDLE
        assert writer.flush(own) == 1
        assert own.info.transaction_status == TransactionStatus.IDLE
        # durable without a commit of the caller's: another session sees the row
        assert count(conn, execution.id) == 1


def test_inside_the_caller_s_transaction_the_rows_commit_with_it(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    _record(writer)
    with psycopg.connect(db_url) as caller:
        caller.execute("SELECT 1")
        assert caller.info.transaction_status == TransactionStatus.INTRANS
        assert writer.flush(caller) == 1
        assert caller.info.transaction_status == TransactionStatus.INTRANS
        assert count(conn, execution.id) == 0
        caller.commit()
        assert count(conn, execution.id) == 1
        # the same on an autocommit connection inside caller.transaction()
    writer2 = LineageWriter(execution.id)
    _record(writer2)
    with connect(db_url) as auto:
        with auto.transaction():
            assert writer2.flush(auto) == 1
            assert count(conn, execution.id) == 1
        assert count(conn, execution.id) == 2


def test_a_failed_flush_fails_the_caller_s_transaction(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    # no savepoint of the writer's own: the caller cannot commit an epoch without its rows
    writer = LineageWriter(execution.id)
    _record(writer, status="exploded")
    with psycopg.connect(db_url) as caller:
        caller.execute("SELECT 1")
        with pytest.raises(DatabaseError, match="check constraint"):
            writer.flush(caller)
        assert caller.info.transaction_status == TransactionStatus.INERROR
        caller.rollback()
    assert len(writer) == 1


def test_metadata_with_infinity_and_a_nul_is_written(
    conn: DbConnection, execution: Execution
) -> None:
    # the NUL sends the metadata to the stdlib encoder, whose Infinity jsonb rejected
    writer = LineageWriter(execution.id)
    row_id = _record(writer, metadata={"x": float("inf"), "n": "a\x00", "f": [float("nan")]})
    assert writer.flush(conn) == 1
    assert stored(conn, row_id)["metadata"] == {"x": None, "n": "a\ufffd", "f": [None]}

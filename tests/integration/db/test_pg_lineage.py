"""Lineage: COPY flushes, ancestry with fan-out and filters, failures and stats."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from factflow.dataflows.lineage import LineageLog
from factflow.db import DbConnection, connect
from factflow.db.exceptions import DatabaseError, NotFoundError
from factflow.db.lineage_writer import LineageRecord, LineageWriter, new_row_id, parse_row_id
from factflow.db.repositories import lineage
from factflow.db.repositories.executions import Execution
from factflow.outage import postgres_what, waiting

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Tree:
    """fetch(A) fans out to split(c1, c2, c3); c1 goes on to embed(g); B is another root.

    c2 was filtered, c3 failed twice then was dead-lettered.
    """

    a: uuid.UUID
    b: uuid.UUID
    c1: uuid.UUID
    c2: uuid.UUID
    c3: uuid.UUID
    g: uuid.UUID


def _row(
    writer: LineageWriter,
    *,
    route: str,
    adapter: str,
    index: int,
    parent: uuid.UUID | None,
    status: str = "completed",
    ms: float = 10.0,
    **extra: object,
) -> uuid.UUID:
    return writer.record(
        route_id=route,
        adapter_name=adapter,
        adapter_index=index,
        message_id=str(uuid.uuid4()),
        parent_id=parent,
        status=status,  # type: ignore[arg-type]
        started_at=T0,
        completed_at=T0 + timedelta(milliseconds=ms),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def tree(conn: DbConnection, execution: Execution) -> Tree:
    writer = LineageWriter(execution.id)
    a = _row(writer, route="fetch", adapter="http", index=0, parent=None, ms=100.0)
    b = _row(writer, route="fetch", adapter="http", index=0, parent=None, ms=300.0)
    c1 = _row(writer, route="split", adapter="segment", index=0, parent=a, ms=10.0)
    c2 = _row(writer, route="split", adapter="segment", index=0, parent=a, status="filtered")
    c3 = _row(
        writer,
        route="split",
        adapter="segment",
        index=0,
        parent=a,
        status="dead_lettered",
        attempts=3,
        error="ValueError: bad",
    )
    g = _row(writer, route="split", adapter="embed", index=1, parent=c1, ms=40.0)
    assert len(writer) == 6
    assert writer.flush(conn) == 6
    assert len(writer) == 0
    return Tree(a=a, b=b, c1=c1, c2=c2, c3=c3, g=g)


def test_flush_writes_every_buffered_row_in_one_copy(
    conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    ids = [
        _row(writer, route="r", adapter="x", index=0, parent=None, metadata={"url": f"u{i}"})
        for i in range(2_000)
    ]
    before = _commits(conn)
    assert writer.flush(conn) == 2_000
    # one transaction for the whole epoch, not one per row
    assert _commits(conn) - before <= 2
    stored = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT id, metadata->>'url' FROM lineage WHERE execution_id = %s", (execution.id,)
        )
    }
    assert set(stored) == set(ids)
    assert stored[ids[7]] == "u7"
    assert writer.flush(conn) == 0


def _commits(conn: DbConnection) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_rows_round_trip_with_defaults(conn: DbConnection, tree: Tree) -> None:
    row = lineage.get_lineage_row(conn, tree.c3)
    assert (row.route_id, row.adapter_name, row.stage_name) == ("split", "segment", "segment")
    assert (row.status, row.attempts, row.error) == ("dead_lettered", 3, "ValueError: bad")
    assert row.parent_id == tree.a
    assert row.duration_ms == pytest.approx(10.0)
    assert row.metadata == {}
    with pytest.raises(NotFoundError):
        lineage.get_lineage_row(conn, uuid.uuid4())


def test_children_are_the_fan_out(conn: DbConnection, tree: Tree) -> None:
    assert {r.id for r in lineage.children(conn, tree.a)} == {tree.c1, tree.c2, tree.c3}
    assert lineage.children(conn, tree.c2) == []


def test_ancestors_walk_up_to_the_root(conn: DbConnection, tree: Tree) -> None:
    assert [r.id for r in lineage.ancestors(conn, tree.g)] == [tree.c1, tree.a]
    assert [r.id for r in lineage.ancestors(conn, tree.c2)] == [tree.a]
    assert lineage.ancestors(conn, tree.a) == []


def test_descendants_walk_down_level_by_level(conn: DbConnection, tree: Tree) -> None:
    found = [r.id for r in lineage.descendants(conn, tree.a)]
    assert set(found[:3]) == {tree.c1, tree.c2, tree.c3}
    assert found[3:] == [tree.g]
    assert [r.id for r in lineage.descendants(conn, tree.a, max_depth=1)] == found[:3]
    assert lineage.descendants(conn, tree.b) == []


def test_failures_list_failed_and_dead_lettered_only(conn: DbConnection, tree: Tree) -> None:
    writer = LineageWriter(lineage.get_lineage_row(conn, tree.a).execution_id)
    failed = _row(writer, route="fetch", adapter="http", index=0, parent=None, status="failed")
    writer.flush(conn)
    execution_id = writer.execution_id
    assert {r.id for r in lineage.failures(conn, execution_id)} == {tree.c3, failed}
    assert [r.id for r in lineage.failures(conn, execution_id, route_id="split")] == [tree.c3]


def test_stats_per_execution_route_and_adapter(conn: DbConnection, tree: Tree) -> None:
    execution_id = lineage.get_lineage_row(conn, tree.a).execution_id
    total = lineage.execution_stats(conn, execution_id)
    assert (total.total, total.completed, total.filtered, total.dead_lettered) == (6, 4, 1, 1)
    assert (total.failed, total.in_progress, total.retries) == (0, 0, 2)
    assert total.max_duration_ms == pytest.approx(300.0)
    assert total.first_started_at == T0

    routes = {r.route_id: r for r in lineage.route_stats(conn, execution_id)}
    assert set(routes) == {"fetch", "split"}
    assert routes["fetch"].total == 2
    assert routes["fetch"].avg_duration_ms == pytest.approx(200.0)
    assert (routes["split"].total, routes["split"].completed) == (4, 2)

    adapters = lineage.adapter_stats(conn, execution_id, route_id="split")
    assert [(a.adapter_index, a.adapter_name, a.total) for a in adapters] == [
        (0, "segment", 3),
        (1, "embed", 1),
    ]
    assert adapters[1].avg_duration_ms == pytest.approx(40.0)


def test_rows_for_message_and_listing(conn: DbConnection, execution: Execution) -> None:
    writer = LineageWriter(execution.id)
    for index, adapter in enumerate(["a", "b", "c"]):
        writer.record(
            route_id="r",
            adapter_name=adapter,
            adapter_index=index,
            message_id="same-message",
            status="completed",
            started_at=T0 + timedelta(seconds=index),
        )
    writer.add(
        LineageRecord(
            id=new_row_id(),
            execution_id=execution.id,
            route_id="other",
            adapter_name="d",
            adapter_index=0,
            stage_name="d-stage",
            message_id="m2",
            parent_id=None,
            status="processing",
            attempts=1,
            input_hash="h",
            output_hash=None,
            error=None,
            started_at=T0,
            completed_at=None,
            duration_ms=None,
            batch_id="b1",
            storage_key="executions/x/other/d/m2",
            metadata={"title": "T"},
        )
    )
    writer.flush(conn)
    rows = lineage.rows_for_message(conn, execution.id, "same-message")
    assert [r.adapter_name for r in rows] == ["a", "b", "c"]
    listed = lineage.list_lineage(conn, execution.id, route_id="other")
    assert [(r.stage_name, r.batch_id, r.metadata) for r in listed] == [
        ("d-stage", "b1", {"title": "T"})
    ]
    assert len(lineage.list_lineage(conn, execution.id, status="completed", limit=2)) == 2


def test_a_failed_flush_keeps_its_rows_and_the_retry_skips_written_ids(
    db_url: str, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    with connect(db_url) as first:
        already = _row(writer, route="r", adapter="x", index=0, parent=None)
        writer.flush(first)
    # a commit that went through before the connection broke: the retry holds its id again
    _row(writer, route="r", adapter="x", index=0, parent=None, row_id=already)
    new = _row(writer, route="r", adapter="x", index=0, parent=None)
    broken = connect(db_url)
    with connect(db_url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (broken.info.backend_pid,))
    with pytest.raises(DatabaseError, match="lineage flush of 2 rows"):
        writer.flush(broken)
    assert len(writer) == 2
    with connect(db_url) as retry:
        assert writer.flush(retry) == 2
        counts = dict(
            retry.execute(
                "SELECT id, count(*) FROM lineage WHERE id = ANY(%s) GROUP BY id",
                ([already, new],),
            ).fetchall()
        )
    assert counts == {already: 1, new: 1}


def test_a_row_the_database_rejects_fails_the_flush_loudly(
    conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    _row(writer, route="r", adapter="x", index=0, parent=None, status="exploded")
    with pytest.raises(DatabaseError, match="check constraint"):
        writer.flush(conn)
    assert writer.discard() == 1
    assert lineage.list_lineage(conn, execution.id) == []


def test_row_ids_are_time_ordered_uuid7_and_correlation_ids_parse() -> None:
    first = new_row_id()
    later = [new_row_id() for _ in range(1000)]
    assert first.version == 7
    assert uuid.UUID(str(first)) == first
    assert len(set(later)) == 1000
    assert max(later) > first
    assert parse_row_id(str(first)) == first
    assert parse_row_id("not-a-lineage-id") is None
    assert parse_row_id(None) is None


def _log_row(log: LineageLog, message_id: str) -> tuple[object, ...]:
    now = datetime.now(UTC)
    return (
        new_row_id(), log.execution_id, "r", "passthrough", 0, "passthrough", message_id,
        None, "completed", 1, None, None, None, now, now, 0.0, None, None, {},
    )  # fmt: skip


def test_the_lineage_log_writes_rows_without_being_asked(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    log = LineageLog(db_url, execution.id)
    recorded = time.monotonic()
    for n in range(10):
        log.record(_log_row(log, f"m-{n}"))
    assert log.mark().seq == 10
    while len(lineage.list_lineage(conn, execution.id)) < 10:
        assert time.monotonic() - recorded < 2.0, "rows not written within 2 s"
        time.sleep(0.02)
    assert log.wait_written(10, timeout=0) is True
    assert log.flush(timeout=1.0) == 0


def test_the_lineage_log_keeps_its_rows_while_the_database_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://factflow@127.0.0.1:{port}/none"
    log = LineageLog(url, uuid.uuid4())
    try:
        for n in range(3):
            log.record(_log_row(log, f"m-{n}"))
        assert log.wait_written(3, timeout=1.0) is False
        assert log.flush(timeout=0.2) == 3, "rows were dropped instead of kept for a retry"
        assert postgres_what(url) in [w.what for w in waiting()]
    finally:
        log.close()
    # a closed log no longer counts as something the process waits for
    assert postgres_what(url) not in [w.what for w in waiting()]


HOSTILE = 'tab\there\nnl\rcr back\\slash \\N \\. quote\' "dq" ünï 漢字 🦀 \x7f\x01'


def test_hostile_strings_round_trip_and_nul_becomes_the_replacement_character(
    conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    kept = _row(
        writer, route=HOSTILE, adapter=HOSTILE, index=0, parent=None, status="failed",
        stage_name=HOSTILE, error=HOSTILE, batch_id=HOSTILE, storage_key=HOSTILE,
        input_hash=HOSTILE, output_hash=HOSTILE, metadata={HOSTILE: [HOSTILE, 1.5, None]},
    )  # fmt: skip
    # Postgres text and jsonb cannot hold NUL, nor UTF-8 a lone surrogate: U+FFFD each,
    # instead of a batch that fails every retry
    replaced = _row(
        writer, route="r\x00", adapter="a", index=0, parent=None, error="e\x00\ud800",
        storage_key="k\x00", metadata={"m\x00": "v\x00\udfff"},
    )  # fmt: skip
    assert writer.flush(conn) == 2
    row = lineage.get_lineage_row(conn, kept)
    texts = (row.route_id, row.adapter_name, row.stage_name, row.error, row.batch_id)
    assert texts == (HOSTILE,) * 5
    assert (row.storage_key, row.input_hash, row.output_hash) == (HOSTILE,) * 3
    assert row.metadata == {HOSTILE: [HOSTILE, 1.5, None]}
    row = lineage.get_lineage_row(conn, replaced)
    assert (row.route_id, row.error, row.storage_key) == ("r\ufffd", "e\ufffd\ufffd", "k\ufffd")
    assert row.metadata == {"m\ufffd": "v\ufffd\ufffd"}


def test_the_lineage_log_writes_a_batch_of_encoded_rows(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    from factflow.dataflows.lineage import lineage_row, payload_hash
    from factflow.db.lineage_copy import StepRowEncoder
    from factflow.messages import Message

    encoder = StepRowEncoder(execution.id, "r", "passthrough", 0, "pass")
    parent = new_row_id()
    inputs = [
        Message(payload={"n": n, "s": HOSTILE}, message_id=f"m-{n}", correlation_id=str(parent))
        for n in range(3)
    ]
    ids = [new_row_id() for _ in inputs]
    started = 1_764_000_000_000_000
    rows = []
    for row_id, message in zip(ids, inputs, strict=True):
        row = lineage_row(
            encoder, row_id=row_id, message=message, status="completed", attempts=1,
            started_us=started, completed_us=started + 1500, outputs=[message],
        )  # fmt: skip
        rows.append(row)
    log = LineageLog(db_url, execution.id)
    try:
        log.record_many(rows)
        assert log.mark().seq == 3
        assert log.wait_written(3, timeout=5.0) is True
    finally:
        log.close()
    stored = {r.id: r for r in lineage.list_lineage(conn, execution.id)}
    assert set(stored) == set(ids)
    first = stored[ids[0]]
    assert (first.message_id, first.parent_id, first.stage_name) == ("m-0", parent, "pass")
    assert first.input_hash == payload_hash(inputs[0].payload)
    assert first.output_hash == payload_hash([inputs[0].payload])
    assert first.duration_ms == pytest.approx(1.5)
    assert first.started_at == datetime(2025, 11, 24, 16, 0, tzinfo=UTC)


def test_an_exit_flush_takes_the_rows_a_step_still_buffers(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    # SIGTERM may stop a batch midway: its rows so far are in the step's buffer only
    from factflow.db.lineage_writer import encode_row

    log = LineageLog(db_url, execution.id)
    try:
        buffer = log.buffer()
        assert log.buffer() is buffer
        buffer.extend(encode_row(_log_row(log, f"m-{n}")) for n in range(4))
        assert log.mark().seq == 0  # not accepted yet: no mark waits for them
        assert log.flush(timeout=5.0) == 0
        assert not buffer
    finally:
        log.close()
    assert len(lineage.list_lineage(conn, execution.id)) == 4

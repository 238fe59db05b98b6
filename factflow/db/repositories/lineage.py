"""Lineage queries: one row, its ancestors and descendants, failures, and stats.

Rows are written by `factflow.db.lineage_writer.LineageWriter`; this module only reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError
from factflow.db.lineage_writer import LINEAGE_COLUMNS, LineageRecord, LineageStatus, parse_row_id

_COLUMNS = ", ".join(LINEAGE_COLUMNS)
_L_COLUMNS = ", ".join(f"l.{c}" for c in LINEAGE_COLUMNS)
# a parent chain longer than this is a cycle written by a buggy producer, not a pipeline
MAX_DEPTH = 1000

STATUS_COUNTS = """
    count(*) AS total,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'filtered') AS filtered,
    count(*) FILTER (WHERE status = 'dead_lettered') AS dead_lettered,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    count(*) FILTER (WHERE status IN ('pending', 'processing')) AS in_progress,
    coalesce(sum(attempts - 1), 0) AS retries,
    avg(duration_ms) AS avg_duration_ms,
    max(duration_ms) AS max_duration_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_duration_ms
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusCounts:
    """Rows by status, retries (attempts beyond the first) and durations in ms."""

    total: int
    completed: int
    failed: int
    filtered: int
    dead_lettered: int
    cancelled: int
    in_progress: int
    retries: int
    avg_duration_ms: float | None
    max_duration_ms: float | None
    p95_duration_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionLineageStats(StatusCounts):
    first_started_at: datetime | None
    last_completed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteLineageStats(StatusCounts):
    route_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterLineageStats(StatusCounts):
    route_id: str
    adapter_index: int
    adapter_name: str


def get_lineage_row(conn: DbConnection, row_id: uuid.UUID) -> LineageRecord:
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM lineage WHERE id = %s", (row_id,))
        row = cur.fetchone()
    if row is None:
        msg = f"lineage row {row_id} does not exist"
        raise NotFoundError(msg)
    return row


def find_lineage_row(conn: DbConnection, key: str) -> LineageRecord:
    """The row whose id is `key`, else the first row whose input message is `key`.

    A message seen on a queue names its lineage this way: its envelope's `message_id`
    finds the invocation that took it (the earliest, when a crash or a redrive made the
    message run again; `GET /lineage?message_id=` lists them all) and its
    `correlation_id` is the row that emitted it. No index on `message_id` (it would halve
    COPY's rows/s), so the lookup by message scans the table.
    """
    row_id = parse_row_id(key)
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        if row_id is not None:
            cur.execute(f"SELECT {_COLUMNS} FROM lineage WHERE id = %s", (row_id,))
            found = cur.fetchone()
            if found is not None:
                return found
        cur.execute(
            f"SELECT {_COLUMNS} FROM lineage WHERE message_id = %s"
            " ORDER BY started_at, adapter_index, id LIMIT 1",
            (key,),
        )
        found = cur.fetchone()
    if found is None:
        msg = f"no lineage row has id or message id {key!r}"
        raise NotFoundError(msg)
    return found


def children(conn: DbConnection, row_id: uuid.UUID) -> list[LineageRecord]:
    """Rows whose input was emitted by `row_id` (one per emitted message and adapter)."""
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM lineage WHERE parent_id = %s ORDER BY started_at, id",
            (row_id,),
        )
        return cur.fetchall()


def ancestors(conn: DbConnection, row_id: uuid.UUID) -> list[LineageRecord]:
    """The chain of rows that led to `row_id`, nearest parent first, root last."""
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(
            f"""
            WITH RECURSIVE up AS (
                SELECT id, parent_id, 0 AS depth FROM lineage WHERE id = %(id)s
                UNION ALL
                SELECT p.id, p.parent_id, up.depth + 1
                FROM lineage p JOIN up ON p.id = up.parent_id
                WHERE up.depth < %(max)s
            )
            SELECT {_L_COLUMNS} FROM up JOIN lineage l ON l.id = up.id
            WHERE up.depth > 0 ORDER BY up.depth
            """,
            {"id": row_id, "max": MAX_DEPTH},
        )
        return cur.fetchall()


def descendants(
    conn: DbConnection, row_id: uuid.UUID, *, max_depth: int = MAX_DEPTH
) -> list[LineageRecord]:
    """Every row downstream of `row_id`, level by level (children first)."""
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(
            f"""
            WITH RECURSIVE down AS (
                SELECT id, 0 AS depth FROM lineage WHERE id = %(id)s
                UNION ALL
                SELECT c.id, down.depth + 1
                FROM lineage c JOIN down ON c.parent_id = down.id
                WHERE down.depth < %(max)s
            )
            SELECT {_L_COLUMNS} FROM down JOIN lineage l ON l.id = down.id
            WHERE down.depth > 0 ORDER BY down.depth, l.started_at, l.id
            """,
            {"id": row_id, "max": min(max_depth, MAX_DEPTH)},
        )
        return cur.fetchall()


def rows_for_message(
    conn: DbConnection, execution_id: uuid.UUID, message_id: str
) -> list[LineageRecord]:
    """Every invocation that took `message_id` as input (adapters of a chain, retries).

    Scans the execution's rows: message ids are not indexed, to keep COPY fast.
    """
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM lineage WHERE execution_id = %s AND message_id = %s"
            " ORDER BY started_at, adapter_index",
            (execution_id, message_id),
        )
        return cur.fetchall()


def list_lineage(
    conn: DbConnection,
    execution_id: uuid.UUID,
    *,
    route_id: str | None = None,
    adapter_name: str | None = None,
    status: LineageStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LineageRecord]:
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM lineage WHERE execution_id = %(execution_id)s"
            " AND (%(route_id)s::text IS NULL OR route_id = %(route_id)s)"
            " AND (%(adapter)s::text IS NULL OR adapter_name = %(adapter)s)"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " ORDER BY started_at, id LIMIT %(limit)s OFFSET %(offset)s",
            {
                "execution_id": execution_id,
                "route_id": route_id,
                "adapter": adapter_name,
                "status": status,
                "limit": limit,
                "offset": offset,
            },
        )
        return cur.fetchall()


def failures(
    conn: DbConnection,
    execution_id: uuid.UUID,
    *,
    route_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LineageRecord]:
    """Failed and dead-lettered rows, oldest first."""
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM lineage WHERE execution_id = %(execution_id)s"
            " AND status IN ('failed', 'dead_lettered')"
            " AND (%(route_id)s::text IS NULL OR route_id = %(route_id)s)"
            " ORDER BY started_at, id LIMIT %(limit)s OFFSET %(offset)s",
            {"execution_id": execution_id, "route_id": route_id, "limit": limit, "offset": offset},
        )
        return cur.fetchall()


EXECUTION_TOTALS = (
    f"SELECT {STATUS_COUNTS}, min(started_at) AS first_started_at,"
    " max(completed_at) AS last_completed_at FROM lineage WHERE execution_id = %s"
)
"""The query behind `execution_stats` (also a lateral join of `get_execution_with_totals`)."""


def execution_stats(conn: DbConnection, execution_id: uuid.UUID) -> ExecutionLineageStats:
    """Counts and durations over every lineage row of the execution."""
    with conn.cursor(row_factory=class_row(ExecutionLineageStats)) as cur:
        cur.execute(EXECUTION_TOTALS, (execution_id,))
        row = cur.fetchone()
    assert row is not None
    return row


def route_stats(conn: DbConnection, execution_id: uuid.UUID) -> list[RouteLineageStats]:
    """Counts and durations per route."""
    with conn.cursor(row_factory=class_row(RouteLineageStats)) as cur:
        cur.execute(
            f"SELECT route_id, {STATUS_COUNTS} FROM lineage WHERE execution_id = %s"
            " GROUP BY route_id ORDER BY route_id",
            (execution_id,),
        )
        return cur.fetchall()


def adapter_stats(
    conn: DbConnection, execution_id: uuid.UUID, *, route_id: str | None = None
) -> list[AdapterLineageStats]:
    """Counts and durations per adapter of each route, in chain order."""
    with conn.cursor(row_factory=class_row(AdapterLineageStats)) as cur:
        cur.execute(
            f"SELECT route_id, adapter_index, adapter_name, {STATUS_COUNTS} FROM lineage"
            " WHERE execution_id = %(execution_id)s"
            " AND (%(route_id)s::text IS NULL OR route_id = %(route_id)s)"
            " GROUP BY route_id, adapter_index, adapter_name"
            " ORDER BY route_id, adapter_index",
            {"execution_id": execution_id, "route_id": route_id},
        )
        return cur.fetchall()

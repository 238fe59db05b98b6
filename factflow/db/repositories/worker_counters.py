"""Each worker process's counters in Postgres: drain detection and progress across hosts.

A process of an execution's launch upserts one row per kind (`drain`: the drain ledger,
`progress`: message counters and its Prometheus text) several times a second; readers
sum the rows of one launch. `at` is the database's clock, so freshness checks compare
times of one clock whichever hosts the processes run on.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection, connect
from factflow.db.exceptions import DatabaseError

CounterKind = Literal["drain", "progress"]


@dataclass(frozen=True, slots=True)
class CounterRow:
    process: int
    at: float
    """Epoch seconds on the database's clock."""
    counts: dict[str, int]
    metrics: str | None


def write_counters(
    conn: DbConnection,
    execution_id: uuid.UUID,
    launch_id: str,
    process: int,
    kind: CounterKind,
    counts: dict[str, int],
    metrics: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO worker_counters (execution_id, launch_id, process, kind, counts, metrics)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (execution_id, launch_id, kind, process) DO UPDATE"
        " SET counts = EXCLUDED.counts, metrics = EXCLUDED.metrics, at = clock_timestamp()",
        (execution_id, launch_id, process, kind, Jsonb(counts), metrics),
    )


def read_counters(
    conn: DbConnection, execution_id: uuid.UUID, kind: CounterKind, launch_id: str | None = None
) -> tuple[float, list[CounterRow]]:
    """The database's clock now and the rows of `launch_id` (default: the execution's
    newest launch)."""
    rows = _select(conn, execution_id, kind, launch_id)
    if not rows:
        now = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        return (float(now[0]) if now else 0.0), []
    return float(rows[0][0]), _counter_rows(rows)


def newest_counters(
    conn: DbConnection, execution_id: uuid.UUID, kind: CounterKind
) -> list[CounterRow]:
    """The rows of the execution's newest launch, in one query (`read_counters` without
    the clock, which takes a second one when there are no rows)."""
    return _counter_rows(_select(conn, execution_id, kind, None))


def _select(
    conn: DbConnection, execution_id: uuid.UUID, kind: CounterKind, launch_id: str | None
) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT extract(epoch FROM clock_timestamp())::float8, process,"
        " extract(epoch FROM at)::float8, counts, metrics FROM worker_counters"
        " WHERE execution_id = %(e)s AND kind = %(k)s AND launch_id = coalesce(%(l)s,"
        "  (SELECT launch_id FROM worker_counters WHERE execution_id = %(e)s AND kind = %(k)s"
        "   ORDER BY at DESC LIMIT 1))",
        {"e": execution_id, "k": kind, "l": launch_id},
    ).fetchall()


def _counter_rows(rows: list[tuple[Any, ...]]) -> list[CounterRow]:
    return [
        CounterRow(int(r[1]), float(r[2]), {k: int(v) for k, v in dict(r[3]).items()}, r[4])
        for r in rows
    ]


def summed(rows: list[CounterRow]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        for name, value in row.counts.items():
            totals[name] = totals.get(name, 0) + value
    return totals


class PostgresCounters:
    """One process's counters of one kind, over a connection of its own (re-opened
    after a database outage; the writer only loses the rounds the outage lasted)."""

    def __init__(
        self, url: str, execution_id: uuid.UUID, launch_id: str, process: int, kind: CounterKind
    ) -> None:
        self.url, self.execution_id, self.launch_id = url, execution_id, launch_id
        self.process, self.kind = process, kind
        self._conn: DbConnection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> DbConnection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
        return self._conn

    def write(self, counts: dict[str, int], metrics: str | None = None) -> None:
        with self._lock:
            try:
                conn = self._connection()
                write_counters(
                    conn, self.execution_id, self.launch_id, self.process, self.kind,
                    counts, metrics,
                )  # fmt: skip
            except Exception as exc:
                self._drop()
                msg = f"writing worker counters failed: {exc}"
                raise DatabaseError(msg) from exc

    def read(self) -> tuple[float, list[CounterRow]]:
        with self._lock:
            try:
                return read_counters(
                    self._connection(), self.execution_id, self.kind, self.launch_id
                )
            except Exception as exc:
                self._drop()
                msg = f"reading worker counters failed: {exc}"
                raise DatabaseError(msg) from exc

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

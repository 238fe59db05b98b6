"""Lineage write throughput: COPY (LineageWriter) against executemany, same rows, same run.

    python bench/lineage.py [--rows 200000] [--epoch-rows 5000] [--baseline-rows 20000]

Uses FACTFLOW_DATABASE_URL when set (rows are deleted afterwards), else a throwaway
embedded Postgres. Target: >= 100k rows/s with COPY. Each epoch is one flush, as in a
worker. The second half (identity pipeline with lineage on vs off) belongs to the runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg.types.json import Jsonb

from factflow.db import connect, migrate
from factflow.db.connection import DbConnection
from factflow.db.embedded import start_embedded, stop_embedded
from factflow.db.lineage_writer import LINEAGE_COLUMNS, LineageWriter

TARGET_ROWS_PER_SECOND = 100_000


@contextmanager
def database() -> Iterator[str]:
    url = os.environ.get("FACTFLOW_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ffbench-") as tmp:
        data_dir = Path(tmp) / "pg"
        server = start_embedded(data_dir, keep_running=False)
        try:
            yield server.url
        finally:
            stop_embedded(data_dir)


def message_ids(count: int) -> list[str]:
    # made before timing: the pipeline has its message ids anyway
    return [str(uuid.uuid4()) for _ in range(count)]


def fill(writer: LineageWriter, ids: list[str], parent: uuid.UUID | None) -> uuid.UUID | None:
    """Rows shaped like a 3-adapter route: each row's parent is the previous row."""
    started = datetime.now(UTC)
    for i, message_id in enumerate(ids):
        parent = writer.record(
            route_id="ingest",
            adapter_name=("fetch", "to_markdown", "segment")[i % 3],
            adapter_index=i % 3,
            message_id=message_id,
            parent_id=parent,
            status="completed",
            started_at=started,
            completed_at=started + timedelta(milliseconds=3),
            input_hash="a" * 32,
            output_hash="b" * 32,
            storage_key=f"executions/x/ingest/segment/{i}",
            metadata={"origin": "bench", "n": i},
        )
    return parent


def bench_copy(conn: DbConnection, rows: int, epoch_rows: int) -> tuple[float, float]:
    """Rows/s end to end (record + flush) and for the flushes alone."""
    writer = LineageWriter(uuid.uuid4())
    ids = message_ids(epoch_rows)
    parent: uuid.UUID | None = None
    flush_time = 0.0
    start = time.perf_counter()
    done = 0
    while done < rows:
        batch = min(epoch_rows, rows - done)
        parent = fill(writer, ids[:batch], parent)
        t0 = time.perf_counter()
        writer.flush(conn)
        flush_time += time.perf_counter() - t0
        done += batch
    total = time.perf_counter() - start
    return rows / total, rows / flush_time


def bench_executemany(conn: DbConnection, rows: int, epoch_rows: int) -> float:
    """The same rows with one INSERT per row via executemany (psycopg pipelines it)."""
    writer = LineageWriter(uuid.uuid4())
    placeholders = ", ".join(["%s"] * len(LINEAGE_COLUMNS))
    sql = f"INSERT INTO lineage ({', '.join(LINEAGE_COLUMNS)}) VALUES ({placeholders})"
    ids = message_ids(epoch_rows)
    parent: uuid.UUID | None = None
    start = time.perf_counter()
    done = 0
    while done < rows:
        batch = min(epoch_rows, rows - done)
        parent = fill(writer, ids[:batch], parent)
        # the writer's buffer holds exactly the rows COPY would send
        buffered = [(*row[:-1], Jsonb(row[-1])) for row in writer.rows]
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, buffered)
        writer.discard()
        done += batch
    return rows / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epoch-rows", type=int, default=5_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    args = parser.parse_args()
    with database() as url, connect(url) as conn:
        migrate(conn)
        before = conn.execute("SELECT coalesce(max(started_at), 'epoch') FROM lineage").fetchone()
        bench_copy(conn, min(args.rows, 10_000), args.epoch_rows)  # warm-up
        copy_e2e, copy_flush = bench_copy(conn, args.rows, args.epoch_rows)
        many = bench_executemany(conn, args.baseline_rows, args.epoch_rows)
        if os.environ.get("FACTFLOW_DATABASE_URL") and before is not None:
            conn.execute("DELETE FROM lineage WHERE metadata->>'origin' = 'bench'")
    print(f"lineage rows: {args.rows} by COPY, {args.baseline_rows} by executemany")
    print(f"epoch size: {args.epoch_rows} rows (one flush each)")
    print(f"COPY (record + flush):  {copy_e2e:>12,.0f} rows/s")
    print(f"COPY (flush only):      {copy_flush:>12,.0f} rows/s")
    print(f"executemany:            {many:>12,.0f} rows/s")
    print(f"ratio COPY/executemany: {copy_e2e / many:>12.1f}x")
    # figures on a shared 2-core machine move with its load; print it beside them
    print(f"load average (1 min):   {os.getloadavg()[0]:>12.2f}")
    ok = copy_e2e >= TARGET_ROWS_PER_SECOND
    print(f"target >= {TARGET_ROWS_PER_SECOND:,} rows/s with COPY: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

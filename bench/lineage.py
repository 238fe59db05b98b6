"""Lineage cost: COPY (LineageWriter) against executemany, the identity pipeline's
msg/s with lineage on against lineage off, same database, same run, and how soon a row
is readable after its invocation.

    python bench/lineage.py [--rows 200000] [--epoch-rows 5000] [--baseline-rows 20000]
                            [--messages 200000] [--repeat 3] [--slow-messages 2000]

Uses FACTFLOW_DATABASE_URL when set (rows are deleted afterwards), else a throwaway
embedded Postgres.

1. Rows/s: each epoch is one flush, as in a worker. Target: >= 150k rows/s with COPY
   (record + flush). The client's CPU per row is printed beside it: the rest of a
   flush is the server's work and the wait for it.
2. bench/pipelines/identity.yaml (one passthrough route, file queues) on `--messages`
   generated lines, one worker (`python -m bytewax.run factflow.flow -s 1`), once without
   and once with FACTFLOW_DATABASE_URL (one lineage row per message, written per epoch
   with COPY), `--repeat` rounds of one run each, back to back so that the machine's
   load hits both alike; the ratio is the median of the rounds' ratios. msg/s is
   measured from the first output line to the process's exit, so interpreter start,
   imports and compiling are left out; "cpu us/msg" is the worker's CPU time per message
   (the Postgres server's is not in it: the worker waits for its COPY inside the epoch,
   so that time shows in msg/s). Target: lineage on >= 0.7x lineage off.
3. Row visibility: `--slow-messages` lines through one route whose sync adapter sleeps
   SLOW_MS per message, so the file source's one batch (and, before lineage was live, its
   rows) lasts about 10 s; the table is polled every POLL_SECONDS and each row's latency
   is the time it was first read minus its `completed_at`. Target: p95 <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from benchdb import postgres_server
from psycopg.types.json import Jsonb

from factflow import Adapter, Context, Message
from factflow.dataflows.lineage import LineageLog, lineage_row
from factflow.db import connect, migrate
from factflow.db.connection import DbConnection
from factflow.db.lineage_copy import StepRowEncoder
from factflow.db.lineage_writer import LINEAGE_COLUMNS, LineageWriter, new_row_id

TARGET_ROWS_PER_SECOND = 150_000  # issue 20
TARGET_LINEAGE_RATIO = 0.7
TARGET_VISIBLE_P95_SECONDS = 2.0
SLOW_MS = 5
IDENTITY = Path(__file__).resolve().parent / "pipelines" / "identity.yaml"
PIPELINE_TIMEOUT_SECONDS = 600
POLL_SECONDS = 0.02


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


def fill_tuples(
    execution: uuid.UUID, ids: list[str], parent: uuid.UUID | None
) -> tuple[list[tuple[Any, ...]], uuid.UUID | None]:
    """`fill`'s rows as parameter tuples, in LINEAGE_COLUMNS order."""
    started = datetime.now(UTC)
    completed = started + timedelta(milliseconds=3)
    rows = []
    for i, message_id in enumerate(ids):
        row_id = new_row_id()
        adapter = ("fetch", "to_markdown", "segment")[i % 3]
        storage_key = f"executions/x/ingest/segment/{i}"
        meta = Jsonb({"origin": "bench", "n": i})
        head = (row_id, execution, "ingest", adapter, i % 3, adapter, message_id, parent)
        state = ("completed", 1, "a" * 32, "b" * 32, None, started, completed, 3.0)
        rows.append((*head, *state, None, storage_key, meta))
        parent = row_id
    return rows, parent


@dataclass(frozen=True)
class CopyRun:
    rows: int
    wall: float  # record + flush
    flush_wall: float
    record_cpu: float  # this process's CPU seconds building the rows
    flush_cpu: float  # ... and flushing them (the rest of a flush is the server's)

    @property
    def rate(self) -> float:
        return self.rows / self.wall

    @property
    def flush_rate(self) -> float:
        return self.rows / self.flush_wall

    def us(self, seconds: float) -> float:
        return seconds / self.rows * 1e6


def bench_copy(conn: DbConnection, rows: int, epoch_rows: int) -> CopyRun:
    """Rows/s end to end (record + flush) and for the flushes alone, with the client's
    CPU time of each (the steadier figure on a shared machine)."""
    writer = LineageWriter(uuid.uuid4())
    ids = message_ids(epoch_rows)
    parent: uuid.UUID | None = None
    flush_time = record_cpu = flush_cpu = 0.0
    start = time.perf_counter()
    done = 0
    while done < rows:
        batch = min(epoch_rows, rows - done)
        c0 = time.process_time()
        parent = fill(writer, ids[:batch], parent)
        c1 = time.process_time()
        t0 = time.perf_counter()
        writer.flush(conn)
        flush_time += time.perf_counter() - t0
        flush_cpu += time.process_time() - c1
        record_cpu += c1 - c0
        done += batch
    total = time.perf_counter() - start
    return CopyRun(rows, total, flush_time, record_cpu, flush_cpu)


@dataclass(frozen=True)
class LogRun:
    rows: int
    wall: float  # first row built until the last one is in Postgres
    cpu: float  # this process's CPU seconds: building rows and the writer thread's COPYs

    @property
    def rate(self) -> float:
        return self.rows / self.wall


LOG_BATCH_ROWS = 1000
"""Rows a step hands to the log at once: a source batch's worth (HANDOFF_ROWS)."""


def bench_log(url: str, rows: int) -> LogRun:
    """The workers' path: rows built by `lineage_row` (the two content hashes included)
    from messages of a 3-adapter route, handed to a `LineageLog` a batch at a time, whose
    thread COPYs them while the next ones are built; timed until the last is durable."""
    execution = uuid.uuid4()
    encoders = [
        StepRowEncoder(execution, "ingest", name, index, name)
        for index, name in enumerate(("fetch", "to_markdown", "segment"))
    ]
    messages = [
        Message({"id": i, "user": f"user-{i % 997}", "value": i * 7 % 1000, "tag": "bench"})
        for i in range(LOG_BATCH_ROWS)
    ]  # made before timing, as a worker gets them from its source
    log = LineageLog(url, execution)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        done = 0
        while done < rows:
            batch = min(LOG_BATCH_ROWS, rows - done)
            began = time.time_ns() // 1000
            built = [
                lineage_row(
                    encoders[i % 3],
                    row_id=new_row_id(),
                    message=message,
                    status="completed",
                    attempts=1,
                    started_us=began,
                    completed_us=began + 3000,
                    outputs=[message],
                    storage_key=f"executions/x/ingest/segment/{done + i}",
                )
                for i, message in enumerate(messages[:batch])
            ]
            log.record_many(built)
            done += batch
        if not log.wait_written(log.mark().seq, timeout=PIPELINE_TIMEOUT_SECONDS):
            msg = "bench: the lineage log did not write its rows in time"
            raise SystemExit(msg)
        run = LogRun(rows, time.perf_counter() - start, time.process_time() - cpu)
    finally:
        log.close()
    with connect(url) as conn:
        written = conn.execute(
            "SELECT count(*) FROM lineage WHERE execution_id = %s", (execution,)
        ).fetchone()
        conn.execute("DELETE FROM lineage WHERE execution_id = %s", (execution,))
    if written is None or written[0] != rows:
        msg = f"bench: the lineage log wrote {written} rows of {rows}"
        raise SystemExit(msg)
    return run


def bench_executemany(conn: DbConnection, rows: int, epoch_rows: int) -> float:
    """The same rows with one INSERT per row via executemany (psycopg pipelines it)."""
    execution = uuid.uuid4()
    placeholders = ", ".join(["%s"] * len(LINEAGE_COLUMNS))
    sql = f"INSERT INTO lineage ({', '.join(LINEAGE_COLUMNS)}) VALUES ({placeholders})"
    ids = message_ids(epoch_rows)
    parent: uuid.UUID | None = None
    start = time.perf_counter()
    done = 0
    while done < rows:
        batch = min(epoch_rows, rows - done)
        buffered, parent = fill_tuples(execution, ids[:batch], parent)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, buffered)
        done += batch
    return rows / (time.perf_counter() - start)


# -- identity pipeline, lineage on and off ------------------------------------------


@dataclass(frozen=True)
class PipelineRun:
    label: str
    messages: int
    wall: float  # start to exit
    first_output: float  # start until the output file had lines
    lines_at_first: int
    cpu: float  # the worker's CPU seconds (user + system)

    @property
    def rate(self) -> float:
        """msg/s after the first output: startup excluded."""
        span = self.wall - self.first_output
        if span <= 0 or self.lines_at_first >= self.messages:
            return self.messages / self.wall
        return (self.messages - self.lines_at_first) / span

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.messages * 1e6


def generate(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            record = {"id": i, "user": f"user-{i % 997}", "value": i * 7 % 1000, "tag": "bench"}
            out.write(json.dumps(record) + "\n")


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_identity(
    label: str, folder: Path, data: Path, messages: int, url: str | None
) -> tuple[PipelineRun, uuid.UUID]:
    """One worker on the identity pipeline; lineage on when `url` is given."""
    folder.mkdir(parents=True)
    execution = uuid.uuid4()
    env = {k: v for k, v in os.environ.items() if k not in ("FACTFLOW_DATABASE_URL", "PYTHONPATH")}
    env |= {
        "PYTHONPATH": str(IDENTITY.parents[2]),
        "FACTFLOW_PIPELINE": str(IDENTITY),
        "FACTFLOW_EXECUTION_ID": str(execution),
        "FACTFLOW_STORE_STAGES": "0",
        "FACTFLOW_INPUTS": json.dumps({"bench.in": str(data)}),
    }
    if url is not None:
        env["FACTFLOW_DATABASE_URL"] = url
    output = folder / "queues" / "bench.out.jsonl"
    command = [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1"]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with (folder / "worker.log").open("wb") as log:
        proc = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        first: tuple[float, int] | None = None
        deadline = started + PIPELINE_TIMEOUT_SECONDS
        while proc.poll() is None and time.perf_counter() < deadline:
            if first is None and output.exists() and output.stat().st_size:
                first = (time.perf_counter() - started, count_lines(output))
            time.sleep(POLL_SECONDS)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    written = count_lines(output)
    if code != 0 or written != messages:
        tail = (folder / "worker.log").read_text(errors="replace")[-3000:]
        msg = f"bench: {label} exited with {code}, wrote {written}/{messages} lines\n{tail}"
        raise SystemExit(msg)
    at, lines = first or (wall, messages)
    return PipelineRun(label, messages, wall, at, lines, cpu), execution


def bench_pipeline(url: str, messages: int, repeat: int) -> list[tuple[PipelineRun, PipelineRun]]:
    """(lineage off, lineage on) per round, run back to back."""
    rounds: list[tuple[PipelineRun, PipelineRun]] = []
    with tempfile.TemporaryDirectory(prefix="ffbench-lineage-") as tmp:
        work = Path(tmp)
        data = work / "input.jsonl"
        generate(data, messages)
        for round_ in range(repeat):
            pair = []
            for label, run_url in (("lineage off", None), ("lineage on", url)):
                folder = work / f"{round_}-{label.replace(' ', '_')}"
                run, execution = run_identity(label, folder, data, messages, run_url)
                if run_url is not None:
                    check_lineage(url, execution, messages)
                pair.append(run)
                print(f"  {label}: {run.wall:.2f} s, {run.rate:,.0f} msg/s", flush=True)
            rounds.append((pair[0], pair[1]))
    return rounds


def check_lineage(url: str, execution: uuid.UUID, messages: int) -> None:
    """One completed row per message, then the rows go (they are the bench's own)."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FROM lineage"
            " WHERE execution_id = %s",
            (execution,),
        ).fetchone()
        conn.execute("DELETE FROM lineage WHERE execution_id = %s", (execution,))
    if row is None or tuple(row) != (messages, messages):
        msg = f"bench: lineage on wrote {row} (completed, all) rows for {messages} messages"
        raise SystemExit(msg)


# -- row visibility --------------------------------------------------------------


class Sleep(Adapter):
    """A slow sync adapter: sleeps `ms` per message and passes it on."""

    name = "bench_sleep"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"ms": {"type": "number", "minimum": 0}},
        "additionalProperties": False,
    }

    def process(self, message: Message, context: Context) -> list[Message]:
        time.sleep(float(self.config.get("ms", SLOW_MS)) / 1000)
        return [message]


SLOW_PIPELINE = f"""version: "1.0"
name: bench_slow
queue: {{provider: file, path: ./queues}}
routes:
  slow:
    inbound: {{queue: bench.in}}
    adapters:
      - type: "lineage:Sleep"
        config: {{ms: {SLOW_MS}}}
    outbound: bench.out
"""


def bench_visibility(url: str, messages: int) -> list[float]:
    """Seconds from each row's completed_at to the first poll that read it."""
    execution = uuid.uuid4()
    with tempfile.TemporaryDirectory(prefix="ffbench-visible-") as tmp:
        folder = Path(tmp)
        pipeline = folder / "slow.yaml"
        pipeline.write_text(SLOW_PIPELINE)
        data = folder / "input.jsonl"
        generate(data, messages)
        here = Path(__file__).resolve().parent
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACTFLOW_")}
        env |= {
            "PYTHONPATH": os.pathsep.join([str(here), str(IDENTITY.parents[2])]),
            "FACTFLOW_PIPELINE": str(pipeline),
            "FACTFLOW_EXECUTION_ID": str(execution),
            "FACTFLOW_STORE_STAGES": "0",
            "FACTFLOW_INPUTS": json.dumps({"bench.in": str(data)}),
            "FACTFLOW_DATABASE_URL": url,
        }
        command = [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1"]
        seen: dict[uuid.UUID, float] = {}
        with (folder / "worker.log").open("wb") as log, connect(url) as conn:
            proc = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=log)
            deadline = time.monotonic() + PIPELINE_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                running = proc.poll() is None
                now = time.time()
                rows = conn.execute(
                    "SELECT id, extract(epoch FROM completed_at) FROM lineage"
                    " WHERE execution_id = %s",
                    (execution,),
                ).fetchall()
                for row_id, completed in rows:
                    if row_id not in seen:
                        seen[row_id] = now - float(completed)
                if not running:
                    break
                time.sleep(POLL_SECONDS)
            code = proc.wait()
            conn.execute("DELETE FROM lineage WHERE execution_id = %s", (execution,))
        if code != 0 or len(seen) != messages:
            tail = (folder / "worker.log").read_text(errors="replace")[-3000:]
            msg = f"bench: slow pipeline exited with {code}, {len(seen)}/{messages} rows\n{tail}"
            raise SystemExit(msg)
    return sorted(seen.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epoch-rows", type=int, default=5_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=200_000, help="0: no pipeline runs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of off + on runs")
    parser.add_argument("--slow-messages", type=int, default=2000, help="0: no row visibility run")
    args = parser.parse_args()
    rounds: list[tuple[PipelineRun, PipelineRun]] = []
    with postgres_server() as url:
        with connect(url) as conn:
            migrate(conn)
            bench_copy(conn, min(args.rows, 10_000), args.epoch_rows)  # warm-up
            copied = bench_copy(conn, args.rows, args.epoch_rows)
            many = bench_executemany(conn, args.baseline_rows, args.epoch_rows)
            if os.environ.get("FACTFLOW_DATABASE_URL"):
                conn.execute("DELETE FROM lineage WHERE metadata->>'origin' = 'bench'")
        bench_log(url, min(args.rows, 10_000))  # warm-up
        logged = bench_log(url, args.rows)
        if args.messages > 0:
            print(f"identity pipeline, {args.messages} messages, {args.repeat} run(s) per mode:")
            rounds = bench_pipeline(url, args.messages, max(1, args.repeat))
        latencies = bench_visibility(url, args.slow_messages) if args.slow_messages else []
    print()
    print(f"lineage rows: {args.rows} by COPY, {args.baseline_rows} by executemany")
    print(f"epoch size: {args.epoch_rows} rows (one flush each)")
    print(f"COPY (record + flush):  {copied.rate:>12,.0f} rows/s")
    print(f"COPY (flush only):      {copied.flush_rate:>12,.0f} rows/s")
    record_us, flush_us = copied.us(copied.record_cpu), copied.us(copied.flush_cpu)
    waited_us = copied.us(copied.flush_wall - copied.flush_cpu)
    print(
        f"COPY client cpu:        {record_us + flush_us:>12.2f} us/row (record {record_us:.2f}"
        f" + flush {flush_us:.2f}; waiting for the server {waited_us:.2f})"
    )
    print(
        f"LineageLog (workers' path): {logged.rate:>8,.0f} rows/s (rows built by lineage_row,"
        f" hashes included, COPY overlapping; client cpu {logged.cpu / logged.rows * 1e6:.2f}"
        " us/row)"
    )
    print(f"executemany:            {many:>12,.0f} rows/s")
    print(f"ratio COPY/executemany: {copied.rate / many:>12.1f}x")
    ok = copied.rate >= TARGET_ROWS_PER_SECOND
    print(f"target >= {TARGET_ROWS_PER_SECOND:,} rows/s with COPY: {'met' if ok else 'MISSED'}")
    met = logged.rate >= TARGET_ROWS_PER_SECOND
    print(f"  the same for the workers' path: {'met' if met else 'MISSED'}")
    if rounds:
        print()
        header = f"{'identity pipeline':<22}{'wall s':>8}{'1st out s':>10}{'msg/s':>10}"
        print(f"{header}{'cpu us/msg':>12}{'on/off':>8}")
        for index, (off, on) in enumerate(rounds, 1):
            for run in (off, on):
                ratio_column = f"{on.rate / off.rate:>8.2f}" if run is on else ""
                print(
                    f"{index}: {run.label:<19}{run.wall:>8.2f}{run.first_output:>10.2f}"
                    f"{run.rate:>10,.0f}{run.cpu_us:>12.1f}{ratio_column}"
                )
        ratio = statistics.median(on.rate / off.rate for off, on in rounds)
        cpu = statistics.median(off.cpu_us / on.cpu_us for off, on in rounds)
        print(f"ratio lineage on/off:   {ratio:>12.2f}x  (median; worker cpu: {cpu:.2f}x)")
        met = ratio >= TARGET_LINEAGE_RATIO
        print(f"target lineage on >= {TARGET_LINEAGE_RATIO}x off: {'met' if met else 'MISSED'}")
        ok = ok and met
    if latencies:
        p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20)[-1]
        print()
        print(f"row visibility, {args.slow_messages} messages x {SLOW_MS} ms (one batch):")
        print(f"  p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
        met = p95 <= TARGET_VISIBLE_P95_SECONDS
        print(f"target p95 <= {TARGET_VISIBLE_P95_SECONDS} s: {'met' if met else 'MISSED'}")
        ok = ok and met
    # figures on a shared 2-core machine move with its load; print it beside them
    print(f"load average (1 min):   {os.getloadavg()[0]:>12.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Replay's reading side: messages/s that a replay reads back from stage storage (file
and S3) against reading the same objects in a plain loop, same store, same run.

    python bench/replay.py [--messages 5000] [--rounds 5] [--s3-messages 2000]

Uses FACTFLOW_DATABASE_URL when set (in a scratch database), else a throwaway embedded
Postgres; S3 is the server at FACTFLOW_TEST_S3_ENDPOINT (`scripts/services.sh start s3`),
skipped with a message when it does not answer.

A stage of `--messages` stored envelopes (`store_message`, as the workers write them)
with one lineage row per output and one for the later step that consumed it. Per round:

- loop: `storage.list(prefix)`, then `storage.get` and `json.loads` of every object, the
  least any replay must do;
- replay: `server.replay.select_messages`, what `POST /executions/{id}/replay` runs before
  it launches the workers: the same listing and reads, plus the lineage query of the
  outputs later steps consumed (every one must still be stored) and the filters.

The lineage table is analyzed after the fill, as autovacuum does after a run: a replay
of a large stage right after its run, before that, can get a nested-loop plan for the
lineage query (measured: 0.3 s for 2,000 outputs instead of 11 ms).

The ratio is replay msg/s over loop msg/s, the median of the rounds (run back to back so
the machine's load hits both alike); "cpu us/msg" is this process's CPU per message.
Target: >= 0.8x on each store. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from benchdb import postgres_server, scratch_database

from factflow.db import connect, migrate
from factflow.db.connection import DbConnection
from factflow.messages import Message
from factflow.server.replay import MessageFilter, select_messages
from factflow.storage import open_storage, stage_prefix, store_message
from factflow.storage.base import StageStorage

TARGET_RATIO = 0.8
ROUTE, STAGE, NEXT = "ingest", "split", "tag"
DONE = "completed"


def fill(conn: DbConnection, storage: StageStorage, execution: uuid.UUID, count: int) -> None:
    """`count` stored outputs of ROUTE/STAGE, each with its row and a consumer's row."""
    now = datetime.now(UTC)
    rows: list[tuple[object, ...]] = []  # lineage rows, in the COPY's column order
    for index in range(count):
        row_id, message_id = uuid.uuid4(), str(uuid.uuid4())
        message = Message(
            payload={"n": index, "text": f"paragraph {index} " * 8},
            metadata={"url": f"http://127.0.0.1/{index % 50}"},
            message_id=message_id,
            correlation_id=str(row_id),
            execution_id=str(execution),
            route_id=ROUTE,
            stage=STAGE,
        )
        store_message(
            storage,
            message,
            execution_id=str(execution),
            route_id=ROUTE,
            stage=STAGE,
            adapter=STAGE,
            lineage_id=str(row_id),
        )
        rows.append((row_id, execution, ROUTE, STAGE, 1, STAGE, f"in-{index}", None, DONE, now))
        rows.append((uuid.uuid4(), execution, ROUTE, NEXT, 2, NEXT, message_id, row_id, DONE, now))
    with conn.transaction(), conn.cursor() as cur:
        copy = (
            "COPY lineage (id, execution_id, route_id, adapter_name, adapter_index,"
            " stage_name, message_id, parent_id, status, started_at) FROM STDIN"
        )
        with cur.copy(copy) as writer:
            for row in rows:
                writer.write_row(row)
    # as autovacuum does after a run's inserts: without statistics the planner joins the
    # stage's rows to their consumers in a nested loop, quadratic in the stage's size
    conn.execute("ANALYZE lineage")


def plain_loop(storage: StageStorage, execution: uuid.UUID) -> int:
    count = 0
    for info in storage.list(stage_prefix(str(execution), ROUTE, STAGE)):
        json.loads(storage.get(info.key))
        count += 1
    return count


def timed(run: Callable[[], int]) -> tuple[float, float, int]:
    """(seconds, cpu seconds, messages) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = run()
    return time.perf_counter() - wall, time.process_time() - cpu, count


def bench_store(name: str, url: str, storage: StageStorage, messages: int, rounds: int) -> bool:
    execution = uuid.uuid4()
    with connect(url) as conn:
        started = time.perf_counter()
        fill(conn, storage, execution, messages)
        print(
            f"\n{name}: {messages} stored messages written in {time.perf_counter() - started:.1f} s"
        )

        def replay() -> int:
            return len(select_messages(conn, storage, execution, ROUTE, STAGE, MessageFilter()))

        ratios, loop_rates, replay_rates, loop_cpu, replay_cpu = [], [], [], [], []
        for _ in range(rounds):
            loop_s, loop_c, loop_n = timed(lambda: plain_loop(storage, execution))
            replay_s, replay_c, replay_n = timed(replay)
            if loop_n != messages or replay_n != messages:
                print(f"  read {loop_n} (loop) and {replay_n} (replay) of {messages}")
                return False
            loop_rates.append(loop_n / loop_s)
            replay_rates.append(replay_n / replay_s)
            ratios.append((replay_n / replay_s) / (loop_n / loop_s))
            loop_cpu.append(loop_c / loop_n * 1e6)
            replay_cpu.append(replay_c / replay_n * 1e6)
        conn.execute("DELETE FROM lineage WHERE execution_id = %s", (execution,))
    ratio = statistics.median(ratios)
    print(f"  {'':8} {'msg/s':>10} {'cpu us/msg':>11}")
    for label, rates, cpu in (("loop", loop_rates, loop_cpu), ("replay", replay_rates, replay_cpu)):
        print(f"  {label:8} {statistics.median(rates):10.0f} {statistics.median(cpu):11.0f}")
    cpu_ratio = statistics.median(loop_cpu) / statistics.median(replay_cpu)
    print(f"  cpu per message, loop / replay = {cpu_ratio:.2f}x (steadier on a shared machine)")
    verdict = "ok" if ratio >= TARGET_RATIO else "MISSED"
    print(f"  replay / loop = {ratio:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"target >= {TARGET_RATIO}x) {verdict}")  # fmt: skip
    return ratio >= TARGET_RATIO


def s3_storage() -> StageStorage | None:
    endpoint = os.environ.get("FACTFLOW_TEST_S3_ENDPOINT", "http://127.0.0.1:9000")
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 9000), 2).close()
    except OSError as exc:
        print(f"\ns3: skipped, no server at {endpoint} ({exc}); `scripts/services.sh start s3`")
        return None
    options = {
        "endpoint": endpoint,
        "access_key": os.environ.get("FACTFLOW_TEST_S3_ACCESS_KEY", "minioadmin"),
        "secret_key": os.environ.get("FACTFLOW_TEST_S3_SECRET_KEY", "minioadmin"),
    }
    return open_storage(f"s3://ffbench-replay-{uuid.uuid4().hex[:8]}/stages", options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--s3-messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = True
    with postgres_server() as server, scratch_database(server, "replay") as url:
        with connect(url) as conn:
            migrate(conn)
        with tempfile.TemporaryDirectory(prefix="ffbench-replay-") as tmp:
            files = open_storage(f"file://{Path(tmp) / 'storage'}")
            ok &= bench_store("file", url, files, args.messages, args.rounds)
        s3 = s3_storage()
        if s3 is not None:
            with s3:
                ok &= bench_store("s3", url, s3, args.s3_messages, args.rounds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

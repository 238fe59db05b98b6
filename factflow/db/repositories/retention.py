"""What storage retention asks the database: which executions finished before a time,
which ones a live execution still needs, and the lock a replay holds on its parent's
stored stages while it reads them (`factflow.server.retention`)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import datetime

from factflow.db.connection import DbConnection

_LOCK_CLASS = 0x46465354  # "FFST": the first key of the two-key advisory lock
_LIVE = ("running", "cancelling", "interrupted")
_FINISHED = ("completed", "failed", "cancelled")


def _lock_key(execution_id: uuid.UUID) -> int:
    return int.from_bytes(execution_id.bytes[:4], "big", signed=True)


def finished_before(conn: DbConnection, cutoff: datetime) -> list[uuid.UUID]:
    """Executions that finished (completed, failed, cancelled) before `cutoff`, oldest first."""
    rows = conn.execute(
        "SELECT id FROM executions WHERE status = ANY(%s) AND completed_at < %s"
        " ORDER BY completed_at, id",
        (list(_FINISHED), cutoff),
    ).fetchall()
    return [row[0] for row in rows]


def needed_by_live(conn: DbConnection) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Parent execution -> the live (running, cancelling, interrupted) executions whose
    `replay_source` names it: replays, redrives and their restarts."""
    rows = conn.execute(
        "SELECT (replay_source->>'execution_id')::uuid, id FROM executions"
        " WHERE status = ANY(%s) AND replay_source ? 'execution_id'",
        (list(_LIVE),),
    ).fetchall()
    needed: dict[uuid.UUID, list[uuid.UUID]] = {}
    for parent, child in rows:
        needed.setdefault(parent, []).append(child)
    return needed


@contextlib.contextmanager
def reading_stages(conn: DbConnection, execution_id: uuid.UUID) -> Iterator[None]:
    """Hold the execution's stored stages against pruning until the block ends: a shared
    lock (many replays may read at once) in a transaction, so it never outlives it."""
    with conn.transaction():
        key = (_LOCK_CLASS, _lock_key(execution_id))
        conn.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", key)
        yield


@contextlib.contextmanager
def pruning_stages(conn: DbConnection, execution_id: uuid.UUID) -> Iterator[bool]:
    """A transaction holding the exclusive lock for deleting the execution's stages; it
    yields False (and the caller deletes nothing) while a replay reads them."""
    with conn.transaction():
        key = (_LOCK_CLASS, _lock_key(execution_id))
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", key).fetchone()
        yield bool(row and row[0])

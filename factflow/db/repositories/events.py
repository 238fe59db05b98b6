"""Events: rows that NOTIFY `factflow_events` on insert (SSE and webhooks read them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.types import JsonDict

EVENTS_CHANNEL = "factflow_events"


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    execution_id: uuid.UUID | None
    payload: JsonDict
    created_at: datetime


def emit_event(
    conn: DbConnection,
    event_type: str,
    payload: JsonDict | None = None,
    *,
    execution_id: uuid.UUID | None = None,
) -> int:
    """Record an event; listeners are notified when the transaction commits. Returns its id."""
    # one statement: atomic on its own, or part of the caller's transaction
    row = conn.execute(
        "INSERT INTO events (type, execution_id, payload) VALUES (%s, %s, %s) RETURNING id",
        (event_type, execution_id, Jsonb(payload or {})),
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_events(
    conn: DbConnection,
    *,
    after_id: int = 0,
    execution_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[Event]:
    """Events newer than `after_id`, oldest first (an SSE stream resumes from its last id)."""
    with conn.cursor(row_factory=class_row(Event)) as cur:
        cur.execute(
            "SELECT id, type, execution_id, payload, created_at FROM events"
            " WHERE id > %s AND (%s::uuid IS NULL OR execution_id = %s::uuid)"
            " ORDER BY id LIMIT %s",
            (after_id, execution_id, execution_id, limit),
        )
        return cur.fetchall()

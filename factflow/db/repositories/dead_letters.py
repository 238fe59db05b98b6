"""Dead letters kept in Postgres (routes whose provider has no broker DLQ), and redrive."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError
from factflow.db.repositories.events import emit_event
from factflow.types import JsonDict

_COLUMNS = (
    "id, execution_id, route_id, queue, lineage_id, message, error_type, error, attempts,"
    " reason, created_at, redriven_at"
)


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    """A message given up on: its envelope, why, and the lineage row of the last attempt.

    `queue` is the route's inbound queue, where a redrive puts the message back.
    """

    execution_id: uuid.UUID
    route_id: str
    queue: str
    message: JsonDict
    error: str | None
    error_type: str | None = None
    attempts: int = 0
    reason: str = "max_retries"
    lineage_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    execution_id: uuid.UUID
    route_id: str
    queue: str
    lineage_id: uuid.UUID | None
    message: JsonDict
    error_type: str | None
    error: str | None
    attempts: int
    reason: str
    created_at: datetime
    redriven_at: datetime | None


def add_dead_letters(conn: DbConnection, letters: Sequence[NewDeadLetter]) -> list[int]:
    """Store a batch of dead letters in one statement; returns their ids in order."""
    if not letters:
        return []
    with conn.transaction():
        rows = conn.execute(
            "INSERT INTO dead_letters (execution_id, route_id, queue, lineage_id, message,"
            " error_type, error, attempts, reason)"
            " SELECT e, r, q, l, m, et, er, a, re FROM unnest(%s::uuid[], %s::text[],"
            " %s::text[], %s::uuid[], %s::jsonb[], %s::text[], %s::text[], %s::int[], %s::text[])"
            " WITH ORDINALITY AS t(e, r, q, l, m, et, er, a, re, n)"
            " ORDER BY n RETURNING id",
            (
                [d.execution_id for d in letters],
                [d.route_id for d in letters],
                [d.queue for d in letters],
                [d.lineage_id for d in letters],
                [Jsonb(d.message) for d in letters],
                [d.error_type for d in letters],
                [d.error for d in letters],
                [d.attempts for d in letters],
                [d.reason for d in letters],
            ),
        ).fetchall()
    return sorted(int(r[0]) for r in rows)


def list_dead_letters(
    conn: DbConnection,
    *,
    execution_id: uuid.UUID | None = None,
    route_id: str | None = None,
    pending_only: bool = False,
    limit: int = 100,
    offset: int = 0,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DeadLetter]:
    """Dead letters by execution, route, reason and creation time (inclusive), oldest
    first; `pending_only` leaves out the redriven ones."""
    with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM dead_letters"
            " WHERE (%(execution_id)s::uuid IS NULL OR execution_id = %(execution_id)s)"
            " AND (%(route_id)s::text IS NULL OR route_id = %(route_id)s)"
            " AND (%(reason)s::text IS NULL OR reason = %(reason)s)"
            " AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR created_at <= %(until)s)"
            " AND (NOT %(pending)s OR redriven_at IS NULL)"
            " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s",
            {
                "execution_id": execution_id,
                "route_id": route_id,
                "reason": reason,
                "since": since,
                "until": until,
                "pending": pending_only,
                "limit": limit,
                "offset": offset,
            },
        )
        return cur.fetchall()


def count_dead_letters(
    conn: DbConnection, *, execution_id: uuid.UUID | None = None, pending_only: bool = False
) -> int:
    row = conn.execute(
        "SELECT count(*) FROM dead_letters"
        " WHERE (%(execution_id)s::uuid IS NULL OR execution_id = %(execution_id)s)"
        " AND (NOT %(pending)s OR redriven_at IS NULL)",
        {"execution_id": execution_id, "pending": pending_only},
    ).fetchone()
    assert row is not None
    return int(row[0])


def claim_dead_letters(
    conn: DbConnection,
    *,
    ids: Sequence[int] | None = None,
    execution_id: uuid.UUID | None = None,
    route_id: str | None = None,
    limit: int = 1000,
) -> list[DeadLetter]:
    """Lock not-yet-redriven dead letters for a redrive and return them, oldest first.

    Call inside a transaction: the rows stay locked until it ends, so concurrent redrives
    skip them instead of publishing them twice. Publish them (see `redrive_envelope`),
    then `mark_redriven` the ones whose publish was confirmed before committing; a letter
    whose publish failed is left as it was and a later redrive takes it again.
    """
    with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        cur.execute(
            f"""
            SELECT {_COLUMNS} FROM dead_letters
            WHERE redriven_at IS NULL
              AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
              AND (%(execution_id)s::uuid IS NULL OR execution_id = %(execution_id)s)
              AND (%(route_id)s::text IS NULL OR route_id = %(route_id)s)
            ORDER BY id LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
            """,
            {
                "ids": None if ids is None else list(ids),
                "execution_id": execution_id,
                "route_id": route_id,
                "limit": limit,
            },
        )
        return cur.fetchall()


def mark_redriven(conn: DbConnection, ids: Sequence[int]) -> int:
    """Mark claimed letters as redriven (their publish was confirmed); returns how many."""
    if not ids:
        return 0
    cur = conn.execute(
        "UPDATE dead_letters SET redriven_at = now() WHERE id = ANY(%s::bigint[])"
        " AND redriven_at IS NULL",
        (list(ids),),
    )
    return cur.rowcount


def redrive_envelope(letter: DeadLetter) -> JsonDict:
    """The envelope to publish again: same message, correlated to the failed attempt.

    Its `correlation_id` becomes the lineage row of the attempt that dead-lettered it, so
    the new attempt's lineage row has that row as parent.
    """
    envelope: dict[str, Any] = dict(letter.message)
    if letter.lineage_id is not None:
        envelope["correlation_id"] = str(letter.lineage_id)
    metadata = dict(envelope.get("metadata") or {})
    metadata["redriven_from_dead_letter"] = letter.id
    envelope["metadata"] = metadata
    return envelope


def get_dead_letter(conn: DbConnection, letter_id: int) -> DeadLetter:
    """One dead letter; NotFoundError when there is none."""
    with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = %s", (letter_id,))
        found = cur.fetchone()
    if found is None:
        msg = f"dead letter {letter_id} does not exist"
        raise NotFoundError(msg)
    return found


def discard_dead_letter(conn: DbConnection, letter_id: int) -> DeadLetter:
    """Delete a dead letter for good; the event `deadletter.discarded` keeps its record
    (route, reason, error and the message)."""
    with conn.transaction():
        letter = get_dead_letter(conn, letter_id)
        conn.execute("DELETE FROM dead_letters WHERE id = %s", (letter_id,))
        emit_event(
            conn,
            "deadletter.discarded",
            {
                "dead_letter_id": letter.id,
                "route_id": letter.route_id,
                "queue": letter.queue,
                "reason": letter.reason,
                "error": letter.error,
                "message": letter.message,
            },
            execution_id=letter.execution_id,
        )
    return letter


def executions_of_rows(conn: DbConnection, row_ids: list[str]) -> dict[str, str]:
    """Lineage row id -> its execution id, for the rows among `row_ids` that exist (the
    owner of a broker dead letter, through the row of its failed attempt)."""
    ids = []
    for value in row_ids:
        with contextlib.suppress(ValueError):
            ids.append(uuid.UUID(value))
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT id, execution_id FROM lineage WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}

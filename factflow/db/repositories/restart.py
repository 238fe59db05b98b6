"""What lineage says about an interrupted execution, for a restart without its recovery
snapshot (`factflow.server.restart`).

A consumer row is *settled* when what it did cannot have been lost in the crash: it
failed, filtered or dead-lettered the message, it stored its outputs, or a later step
already took one of them. Only a completed row of a step that stores nothing and whose
outputs nobody took yet may have had its outputs in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from factflow.db.connection import DbConnection

_SETTLED = (
    "(c.status <> 'completed' OR c.storage_key IS NOT NULL"
    " OR EXISTS (SELECT 1 FROM lineage g WHERE g.parent_id = c.id))"
)


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A completed invocation that stored its outputs."""

    id: uuid.UUID
    route_id: str
    adapter_index: int
    stage_name: str
    message_id: str
    completed_at: datetime


def last_completed_at(conn: DbConnection, execution_id: uuid.UUID) -> datetime | None:
    """When the execution's newest recorded invocation returned (None: it recorded none)."""
    row = conn.execute(
        "SELECT max(completed_at) FROM lineage WHERE execution_id = %s", (execution_id,)
    ).fetchone()
    return None if row is None else row[0]


def stored_rows_since(
    conn: DbConnection, execution_id: uuid.UUID, since: datetime
) -> list[StoredRow]:
    """The completed rows with stored outputs that returned at `since` or later."""
    with conn.cursor(row_factory=class_row(StoredRow)) as cur:
        cur.execute(
            "SELECT id, route_id, adapter_index, stage_name, message_id, completed_at"
            " FROM lineage WHERE execution_id = %s"
            " AND completed_at >= %s AND status = 'completed' AND storage_key IS NOT NULL"
            " ORDER BY completed_at",
            (execution_id, since),
        )
        return cur.fetchall()


def settled_outputs(
    conn: DbConnection, execution_id: uuid.UUID, parents: Sequence[uuid.UUID]
) -> set[tuple[uuid.UUID, str]]:
    """`(parent row, message id)` of every settled row whose parent is one of `parents`:
    outputs of those rows that a later step took for good."""
    if not parents:
        return set()
    rows = conn.execute(
        "SELECT c.parent_id, c.message_id FROM lineage c"
        f" WHERE c.execution_id = %s AND c.parent_id = ANY(%s) AND {_SETTLED}",
        (execution_id, list(parents)),
    ).fetchall()
    return {(row[0], row[1]) for row in rows}


def settled_roots(
    conn: DbConnection,
    execution_id: uuid.UUID,
    route_ids: Sequence[str],
    message_ids: Sequence[str],
) -> set[tuple[str, str]]:
    """`(route, message id)` of the messages among `message_ids` that a step of one of
    `route_ids` took for good (inputs and the init message: rows without a parent in
    this execution)."""
    if not message_ids or not route_ids:
        return set()
    rows = conn.execute(
        "SELECT DISTINCT c.route_id, c.message_id FROM lineage c"
        " WHERE c.execution_id = %s AND c.route_id = ANY(%s) AND c.message_id = ANY(%s)"
        f" AND {_SETTLED}",
        (execution_id, list(route_ids), list(message_ids)),
    ).fetchall()
    return {(row[0], row[1]) for row in rows}

"""What lineage says about a stage's outputs, for replay's checks and filters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from psycopg.rows import class_row

from factflow.db.connection import DbConnection


@dataclass(frozen=True, slots=True)
class ConsumedOutput:
    """An output of the stage that a later step took: its message id, and how that
    step's invocation ended."""

    message_id: str
    status: str


def consumed_outputs(
    conn: DbConnection, execution_id: uuid.UUID, route_id: str, stage: str
) -> list[ConsumedOutput]:
    """The stage's outputs that went on to another step in `execution_id`.

    An output's `correlation_id` is the lineage row of the invocation that emitted it, so
    the rows whose parent is one of the stage's rows are the steps that read its outputs;
    their message ids are the output ids, the ones the stage must have stored.
    """
    with conn.cursor(row_factory=class_row(ConsumedOutput)) as cur:
        cur.execute(
            "SELECT DISTINCT ON (c.message_id) c.message_id, c.status"
            " FROM lineage s JOIN lineage c"
            # a replay's rows descend from these rows too: only this execution's count
            " ON c.parent_id = s.id AND c.execution_id = s.execution_id"
            " WHERE s.execution_id = %s AND s.route_id = %s AND s.stage_name = %s"
            " ORDER BY c.message_id, c.started_at DESC",
            (execution_id, route_id, stage),
        )
        return cur.fetchall()

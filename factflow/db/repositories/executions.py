"""Executions: an immutable config snapshot and a status that moves only along TRANSITIONS."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection, atomic
from factflow.db.exceptions import (
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
)
from factflow.db.repositories.events import emit_event
from factflow.db.repositories.lineage import EXECUTION_TOTALS, ExecutionLineageStats
from factflow.types import JsonDict

ExecutionStatus = Literal[
    "running", "cancelling", "completed", "failed", "cancelled", "interrupted"
]
STATUSES: tuple[ExecutionStatus, ...] = get_args(ExecutionStatus)
TERMINAL: frozenset[ExecutionStatus] = frozenset({"completed", "failed", "cancelled"})
# the same pairs are in the execution_transitions table, which the database trigger reads
TRANSITIONS: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    "running": frozenset({"cancelling", "completed", "failed", "cancelled", "interrupted"}),
    "cancelling": frozenset({"cancelled", "completed", "failed", "interrupted"}),
    "interrupted": frozenset({"running", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}

_COLUMNS = (
    "id, config_id, config_version, pipeline_name, config_snapshot, status, source,"
    " replay_source, trigger_context, idempotency_key, workers, started_at, completed_at,"
    " heartbeat_at, updated_at, error, stats, started_by"
)


@dataclass(frozen=True, slots=True)
class Execution:
    id: uuid.UUID
    config_id: uuid.UUID | None
    config_version: int | None
    pipeline_name: str
    config_snapshot: JsonDict
    status: ExecutionStatus
    source: str
    replay_source: JsonDict | None
    trigger_context: JsonDict
    idempotency_key: str | None
    workers: list[JsonDict]
    started_at: datetime
    completed_at: datetime | None
    heartbeat_at: datetime | None
    updated_at: datetime
    error: str | None
    stats: JsonDict
    started_by: str | None = None
    """Who started it (a user or SSO name with the key's prefix); None for the system's."""

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def create_execution(
    conn: DbConnection,
    *,
    pipeline_name: str,
    config_snapshot: JsonDict,
    config_id: uuid.UUID | None = None,
    config_version: int | None = None,
    execution_id: uuid.UUID | None = None,
    source: str = "api",
    replay_source: JsonDict | None = None,
    trigger_context: JsonDict | None = None,
    idempotency_key: str | None = None,
    workers: Sequence[JsonDict] = (),
    started_by: str | None = None,
    started_by_key: uuid.UUID | None = None,
) -> Execution:
    """A new running execution (event `execution.started`).

    With an `idempotency_key` already used, the existing execution is returned instead.
    """
    params: dict[str, Any] = {
        "id": execution_id or uuid.uuid4(),
        "config_id": config_id,
        "config_version": config_version,
        "pipeline_name": pipeline_name,
        "config_snapshot": Jsonb(config_snapshot),
        "source": source,
        "replay_source": None if replay_source is None else Jsonb(replay_source),
        "trigger_context": Jsonb(trigger_context or {}),
        "idempotency_key": idempotency_key,
        "workers": Jsonb(list(workers)),
        "started_by": started_by,
        "started_by_key": started_by_key,
    }
    try:
        with atomic(conn), conn.cursor(row_factory=class_row(Execution)) as cur:
            cur.execute(
                "INSERT INTO executions (id, config_id, config_version, pipeline_name,"
                " config_snapshot, source, replay_source, trigger_context, idempotency_key,"
                " workers, started_by, started_by_key) VALUES (%(id)s, %(config_id)s,"
                " %(config_version)s, %(pipeline_name)s, %(config_snapshot)s, %(source)s,"
                " %(replay_source)s, %(trigger_context)s, %(idempotency_key)s, %(workers)s,"
                " %(started_by)s, %(started_by_key)s)"
                f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}",
                params,
            )
            created = cur.fetchone()
            if created is not None:
                emit_event(
                    conn, "execution.started", _event_payload(created), execution_id=created.id
                )
                return created
            cur.execute(
                f"SELECT {_COLUMNS} FROM executions WHERE idempotency_key = %s",
                (idempotency_key,),
            )
            existing = cur.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        msg = f"execution {params['id']} already exists; resume it with resume_execution"
        raise ConflictError(msg) from exc
    assert existing is not None
    return existing


def _event_payload(execution: Execution, previous: ExecutionStatus | None = None) -> JsonDict:
    """What an `execution.*` event (and its webhook body) says about the execution."""
    return {
        "from": previous,
        "status": execution.status,
        "error": execution.error,
        "pipeline_name": execution.pipeline_name,
        "config_id": None if execution.config_id is None else str(execution.config_id),
        "config_version": execution.config_version,
        "source": execution.source,
        "started_at": execution.started_at.isoformat(),
        "completed_at": None
        if execution.completed_at is None
        else execution.completed_at.isoformat(),
    }


def get_execution(conn: DbConnection, execution_id: uuid.UUID) -> Execution:
    """The execution; NotFoundError when there is none."""
    found = find_execution(conn, execution_id)
    if found is None:
        msg = f"execution {execution_id} does not exist"
        raise NotFoundError(msg)
    return found


def find_execution(conn: DbConnection, execution_id: uuid.UUID) -> Execution | None:
    with conn.cursor(row_factory=class_row(Execution)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM executions WHERE id = %s", (execution_id,))
        return cur.fetchone()


_TOTALS_JOIN = EXECUTION_TOTALS.replace("%s", "executions.id")
_WITH_TOTALS = (
    f"SELECT {_COLUMNS}, totals.* FROM executions CROSS JOIN LATERAL ({_TOTALS_JOIN}) totals"
    " WHERE executions.id = %s"
)
_EXECUTION_FIELDS = len(_COLUMNS.split(","))


def get_execution_with_totals(
    conn: DbConnection, execution_id: uuid.UUID
) -> tuple[Execution, ExecutionLineageStats]:
    """The execution and its lineage totals (`lineage.execution_stats`) in one round trip
    (what `GET /executions/{id}` answers with); NotFoundError when there is none."""
    with conn.cursor() as cur:
        cur.execute(_WITH_TOTALS, (execution_id,))
        row = cur.fetchone()
        names = [column.name for column in cur.description or ()]
    if row is None:
        msg = f"execution {execution_id} does not exist"
        raise NotFoundError(msg)
    split = _EXECUTION_FIELDS
    execution = Execution(**dict(zip(names[:split], row[:split], strict=True)))
    totals = ExecutionLineageStats(**dict(zip(names[split:], row[split:], strict=True)))
    return execution, totals


def list_executions(
    conn: DbConnection,
    *,
    status: ExecutionStatus | Sequence[ExecutionStatus] | None = None,
    config_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Execution]:
    """Executions, newest first, optionally only those in the given status(es)."""
    statuses = [status] if isinstance(status, str) else None if status is None else list(status)
    with conn.cursor(row_factory=class_row(Execution)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM executions"
            " WHERE (%s::text[] IS NULL OR status = ANY(%s::text[]))"
            " AND (%s::uuid IS NULL OR config_id = %s::uuid)"
            " ORDER BY started_at DESC, id LIMIT %s OFFSET %s",
            (statuses, statuses, config_id, config_id, limit, offset),
        )
        return cur.fetchall()


def count_executions(
    conn: DbConnection,
    *,
    status: ExecutionStatus | Sequence[ExecutionStatus] | None = None,
    exclude: uuid.UUID | None = None,
) -> int:
    """Executions in the given status(es), but `exclude`."""
    statuses = [status] if isinstance(status, str) else None if status is None else list(status)
    row = conn.execute(
        "SELECT count(*) FROM executions WHERE (%s::text[] IS NULL OR status = ANY(%s::text[]))"
        " AND id IS DISTINCT FROM %s",
        (statuses, statuses, exclude),
    ).fetchone()
    assert row is not None
    return int(row[0])


def check_transition(current: ExecutionStatus, target: ExecutionStatus) -> None:
    """Raise IllegalTransitionError unless `current -> target` is allowed."""
    allowed = TRANSITIONS[current]
    if target not in allowed:
        hint = ", ".join(sorted(allowed)) if allowed else f"none: {current} is final"
        msg = f"illegal execution transition {current} -> {target} (allowed: {hint})"
        raise IllegalTransitionError(msg)


def transition(
    conn: DbConnection,
    execution_id: uuid.UUID,
    target: ExecutionStatus,
    *,
    error: str | None = None,
    stats: JsonDict | None = None,
) -> Execution:
    """Move an execution to `target` (event `execution.<target>`); checked, atomic.

    Final statuses set `completed_at`; resuming (interrupted -> running) clears it.
    `error` and `stats` replace the stored ones when given.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT status FROM executions WHERE id = %s FOR UPDATE", (execution_id,)
        ).fetchone()
        if row is None:
            msg = f"execution {execution_id} does not exist"
            raise NotFoundError(msg)
        current: ExecutionStatus = row[0]
        check_transition(current, target)
        with conn.cursor(row_factory=class_row(Execution)) as cur:
            cur.execute(
                "UPDATE executions SET status = %(target)s,"
                " completed_at = CASE WHEN %(terminal)s THEN now() ELSE NULL END,"
                " error = coalesce(%(error)s, error), stats = coalesce(%(stats)s, stats)"
                f" WHERE id = %(id)s RETURNING {_COLUMNS}",
                {
                    "target": target,
                    "terminal": target in TERMINAL,
                    "error": error,
                    "stats": None if stats is None else Jsonb(stats),
                    "id": execution_id,
                },
            )
            updated = cur.fetchone()
        assert updated is not None
        event = "execution.resumed" if target == "running" else f"execution.{target}"
        # in this transaction: the event (and its webhook deliveries) commits with the change
        emit_event(conn, event, _event_payload(updated, current), execution_id=execution_id)
    return updated


def resume_execution(
    conn: DbConnection, execution_id: uuid.UUID, *, workers: Sequence[JsonDict] = ()
) -> Execution:
    """Take over an execution being run again with the same id.

    Interrupted executions go back to running; a running one (its workers were killed
    before anyone noticed) stays running with the new workers; a final one raises
    IllegalTransitionError.
    """
    with conn.transaction():
        execution = get_execution(conn, execution_id)
        if execution.status == "interrupted":
            transition(conn, execution_id, "running")
        elif execution.status != "running":
            check_transition(execution.status, "running")
        return set_workers(conn, execution_id, workers)


def set_workers(
    conn: DbConnection, execution_id: uuid.UUID, workers: Sequence[JsonDict]
) -> Execution:
    """Replace the worker processes (pid, process id, host) and beat the heartbeat."""
    with conn.cursor(row_factory=class_row(Execution)) as cur:  # one statement: atomic
        cur.execute(
            "UPDATE executions SET workers = %s, heartbeat_at = now()"
            f" WHERE id = %s RETURNING {_COLUMNS}",
            (Jsonb(list(workers)), execution_id),
        )
        updated = cur.fetchone()
    if updated is None:
        msg = f"execution {execution_id} does not exist"
        raise NotFoundError(msg)
    return updated


def heartbeat(conn: DbConnection, execution_id: uuid.UUID) -> None:
    """Record that the execution's workers are alive."""
    with conn.transaction():
        conn.execute("UPDATE executions SET heartbeat_at = now() WHERE id = %s", (execution_id,))


def merge_stats(conn: DbConnection, execution_id: uuid.UUID, stats: JsonDict) -> None:
    """Merge keys into the execution's stats (top-level keys replace)."""
    with conn.transaction():
        conn.execute(
            "UPDATE executions SET stats = stats || %s WHERE id = %s",
            (Jsonb(stats), execution_id),
        )


def delete_execution(conn: DbConnection, execution_id: uuid.UUID) -> None:
    """Delete a finished execution with its lineage, dead letters, archives and events."""
    with conn.transaction():
        execution = get_execution(conn, execution_id)
        if not execution.is_terminal and execution.status != "interrupted":
            msg = f"execution {execution_id} is {execution.status}; cancel it before deleting"
            raise ConflictError(msg)  # the request's fault (409), not the database's
        tables = ("lineage", "dead_letters", "recovery_archives", "events", "worker_counters")
        for table in (*tables, "worker_launches"):
            conn.execute(f"DELETE FROM {table} WHERE execution_id = %s", (execution_id,))
        conn.execute("DELETE FROM executions WHERE id = %s", (execution_id,))


def count_running_by_key(
    conn: DbConnection, key_id: uuid.UUID, *, exclude: uuid.UUID | None = None
) -> int:
    """Executions started with API key `key_id` that are running or cancelling (but
    `exclude`)."""
    row = conn.execute(
        "SELECT count(*) FROM executions WHERE started_by_key = %s"
        " AND status IN ('running', 'cancelling') AND id IS DISTINCT FROM %s",
        (key_id, exclude),
    ).fetchone()
    return int(row[0]) if row else 0

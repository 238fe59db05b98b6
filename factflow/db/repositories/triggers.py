"""Event triggers, the events received (with the executions they started), cron schedules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError
from factflow.types import JsonDict

_TRIGGER_COLUMNS = (
    "id, config_id, event_pattern, condition, input_queue, max_running, is_active, created_at"
)
_SCHEDULE_COLUMNS = (
    "id, config_id, cron, timezone, missed, max_running, next_run_at, last_run_at,"
    " last_execution_id, last_error, is_active, created_at"
)


@dataclass(frozen=True, slots=True)
class EventTrigger:
    id: uuid.UUID
    config_id: uuid.UUID
    event_pattern: str
    condition: JsonDict | None
    input_queue: str | None
    max_running: int | None
    is_active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InboundEvent:
    id: str
    name: str
    data: JsonDict
    received_at: datetime
    results: list[JsonDict]


@dataclass(frozen=True, slots=True)
class Schedule:
    id: uuid.UUID
    config_id: uuid.UUID
    cron: str
    timezone: str
    missed: str
    max_running: int | None
    next_run_at: datetime
    last_run_at: datetime | None
    last_execution_id: uuid.UUID | None
    last_error: str | None
    is_active: bool
    created_at: datetime


# --- event triggers ---------------------------------------------------------------------


def create_trigger(
    conn: DbConnection,
    *,
    config_id: uuid.UUID,
    event_pattern: str,
    condition: JsonDict | None = None,
    input_queue: str | None = None,
    max_running: int | None = None,
) -> EventTrigger:
    with conn.transaction(), conn.cursor(row_factory=class_row(EventTrigger)) as cur:
        cur.execute(
            "INSERT INTO event_triggers (config_id, event_pattern, condition, input_queue,"
            f" max_running) VALUES (%s, %s, %s, %s, %s) RETURNING {_TRIGGER_COLUMNS}",
            (
                config_id,
                event_pattern,
                None if condition is None else Jsonb(condition),
                input_queue,
                max_running,
            ),
        )
        created = cur.fetchone()
    assert created is not None
    return created


def list_triggers(
    conn: DbConnection, *, active_only: bool = False, config_id: uuid.UUID | None = None
) -> list[EventTrigger]:
    with conn.cursor(row_factory=class_row(EventTrigger)) as cur:
        cur.execute(
            f"SELECT {_TRIGGER_COLUMNS} FROM event_triggers"
            " WHERE (NOT %s OR is_active) AND (%s::uuid IS NULL OR config_id = %s::uuid)"
            " ORDER BY created_at, id",
            (active_only, config_id, config_id),
        )
        return cur.fetchall()


def get_trigger(conn: DbConnection, trigger_id: uuid.UUID) -> EventTrigger:
    with conn.cursor(row_factory=class_row(EventTrigger)) as cur:
        cur.execute(f"SELECT {_TRIGGER_COLUMNS} FROM event_triggers WHERE id = %s", (trigger_id,))
        found = cur.fetchone()
    if found is None:
        msg = f"trigger {trigger_id} does not exist"
        raise NotFoundError(msg)
    return found


def delete_trigger(conn: DbConnection, trigger_id: uuid.UUID) -> None:
    with conn.transaction():
        if not conn.execute("DELETE FROM event_triggers WHERE id = %s", (trigger_id,)).rowcount:
            msg = f"trigger {trigger_id} does not exist"
            raise NotFoundError(msg)


# --- inbound events ---------------------------------------------------------------------


def record_inbound_event(
    conn: DbConnection, event_id: str, name: str, data: JsonDict
) -> tuple[InboundEvent, bool]:
    """The event, and True when it is new (False: that id was received before)."""
    with conn.transaction(), conn.cursor(row_factory=class_row(InboundEvent)) as cur:
        cur.execute(
            "INSERT INTO inbound_events (id, name, data) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING RETURNING id, name, data, received_at, results",
            (event_id, name, Jsonb(data)),
        )
        created = cur.fetchone()
    if created is not None:
        return created, True
    return get_inbound_event(conn, event_id), False


def set_event_results(conn: DbConnection, event_id: str, results: list[JsonDict]) -> InboundEvent:
    with conn.transaction(), conn.cursor(row_factory=class_row(InboundEvent)) as cur:
        cur.execute(
            "UPDATE inbound_events SET results = %s WHERE id = %s"
            " RETURNING id, name, data, received_at, results",
            (Jsonb(results), event_id),
        )
        updated = cur.fetchone()
    if updated is None:
        msg = f"event {event_id} does not exist"
        raise NotFoundError(msg)
    return updated


def get_inbound_event(conn: DbConnection, event_id: str) -> InboundEvent:
    with conn.cursor(row_factory=class_row(InboundEvent)) as cur:
        cur.execute(
            "SELECT id, name, data, received_at, results FROM inbound_events WHERE id = %s",
            (event_id,),
        )
        found = cur.fetchone()
    if found is None:
        msg = f"event {event_id} does not exist"
        raise NotFoundError(msg)
    return found


def list_inbound_events(
    conn: DbConnection, *, name: str | None = None, limit: int = 100, offset: int = 0
) -> list[InboundEvent]:
    with conn.cursor(row_factory=class_row(InboundEvent)) as cur:
        cur.execute(
            "SELECT id, name, data, received_at, results FROM inbound_events"
            " WHERE (%s::text IS NULL OR name = %s::text)"
            " ORDER BY received_at DESC, id LIMIT %s OFFSET %s",
            (name, name, limit, offset),
        )
        return cur.fetchall()


def running_count(conn: DbConnection, config_id: uuid.UUID) -> int:
    """Executions of the config that are running or cancelling."""
    row = conn.execute(
        "SELECT count(*) FROM executions WHERE config_id = %s"
        " AND status IN ('running', 'cancelling')",
        (config_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


# --- schedules --------------------------------------------------------------------------


def create_schedule(
    conn: DbConnection,
    *,
    config_id: uuid.UUID,
    cron: str,
    timezone: str,
    missed: str,
    next_run_at: datetime,
    max_running: int | None = None,
) -> Schedule:
    with conn.transaction(), conn.cursor(row_factory=class_row(Schedule)) as cur:
        cur.execute(
            "INSERT INTO schedules (config_id, cron, timezone, missed, next_run_at, max_running)"
            f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_SCHEDULE_COLUMNS}",
            (config_id, cron, timezone, missed, next_run_at, max_running),
        )
        created = cur.fetchone()
    assert created is not None
    return created


def get_schedule(conn: DbConnection, schedule_id: uuid.UUID) -> Schedule:
    with conn.cursor(row_factory=class_row(Schedule)) as cur:
        cur.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE id = %s", (schedule_id,))
        found = cur.fetchone()
    if found is None:
        msg = f"schedule {schedule_id} does not exist"
        raise NotFoundError(msg)
    return found


def list_schedules(conn: DbConnection, *, config_id: uuid.UUID | None = None) -> list[Schedule]:
    with conn.cursor(row_factory=class_row(Schedule)) as cur:
        cur.execute(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules"
            " WHERE (%s::uuid IS NULL OR config_id = %s::uuid) ORDER BY created_at, id",
            (config_id, config_id),
        )
        return cur.fetchall()


def delete_schedule(conn: DbConnection, schedule_id: uuid.UUID) -> None:
    with conn.transaction():
        if not conn.execute("DELETE FROM schedules WHERE id = %s", (schedule_id,)).rowcount:
            msg = f"schedule {schedule_id} does not exist"
            raise NotFoundError(msg)


def lock_due_schedule(conn: DbConnection) -> Schedule | None:
    """One due active schedule, row-locked until the caller's transaction ends; others
    (another instance's) are skipped, so each tick is handled by one instance at a time."""
    with conn.cursor(row_factory=class_row(Schedule)) as cur:
        cur.execute(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE is_active AND next_run_at <= now()"
            " ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        return cur.fetchone()


def advance_schedule(
    conn: DbConnection,
    schedule_id: uuid.UUID,
    *,
    next_run_at: datetime,
    ran_at: datetime | None,
    execution_id: uuid.UUID | None,
    error: str | None,
) -> None:
    values: dict[str, Any] = {
        "id": schedule_id,
        "next": next_run_at,
        "ran": ran_at,
        "execution": execution_id,
        "error": error,
    }
    conn.execute(
        "UPDATE schedules SET next_run_at = %(next)s,"
        " last_run_at = coalesce(%(ran)s, last_run_at),"
        " last_execution_id = coalesce(%(execution)s, last_execution_id),"
        " last_error = %(error)s WHERE id = %(id)s",
        values,
    )

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
    "id, config_id, event_pattern, condition, input_queue, max_running, is_active, created_at,"
    " origin, init_payload, rate_limit, debounce"
)
_SCHEDULE_COLUMNS = (
    "id, config_id, cron, timezone, missed, max_running, next_run_at, last_run_at,"
    " last_execution_id, last_error, is_active, created_at, origin"
)
ORIGIN_API = "api"
ORIGIN_CONFIG = "config"
"""Registered from the config's `triggers:` when it is saved (or the server starts)."""


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
    origin: str
    init_payload: bool
    rate_limit: JsonDict | None
    """{limit, period_seconds, key?}"""
    debounce: JsonDict | None
    """{period_seconds, key?, timeout_seconds?}"""


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
    origin: str


@dataclass(frozen=True, slots=True)
class Debounce:
    """An open burst of a debounced trigger: its last event, and when it starts."""

    trigger_id: uuid.UUID
    rate_key: str
    event_id: str
    event_name: str
    data: JsonDict
    events: int
    first_at: datetime
    due_at: datetime


def _json(value: JsonDict | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


# --- event triggers ---------------------------------------------------------------------


def create_trigger(
    conn: DbConnection,
    *,
    config_id: uuid.UUID,
    event_pattern: str,
    condition: JsonDict | None = None,
    input_queue: str | None = None,
    max_running: int | None = None,
    init_payload: bool = False,
    rate_limit: JsonDict | None = None,
    debounce: JsonDict | None = None,
    spec_key: str | None = None,
) -> EventTrigger | None:
    """A trigger made through the API, or (with `spec_key`) one of the config's YAML;
    None when the config already has that YAML entry."""
    with conn.transaction(), conn.cursor(row_factory=class_row(EventTrigger)) as cur:
        cur.execute(
            "INSERT INTO event_triggers (config_id, event_pattern, condition, input_queue,"
            " max_running, init_payload, rate_limit, debounce, origin, spec_key)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (config_id, spec_key) WHERE origin = 'config' DO NOTHING"
            f" RETURNING {_TRIGGER_COLUMNS}",
            (
                config_id,
                event_pattern,
                _json(condition),
                input_queue,
                max_running,
                init_payload,
                _json(rate_limit),
                _json(debounce),
                ORIGIN_API if spec_key is None else ORIGIN_CONFIG,
                spec_key,
            ),
        )
        return cur.fetchone()


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
    spec_key: str | None = None,
) -> Schedule | None:
    """A schedule made through the API, or (with `spec_key`) one of the config's YAML;
    None when the config already has that YAML entry (it keeps its next tick)."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Schedule)) as cur:
        cur.execute(
            "INSERT INTO schedules (config_id, cron, timezone, missed, next_run_at, max_running,"
            " origin, spec_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (config_id, spec_key) WHERE origin = 'config' DO NOTHING"
            f" RETURNING {_SCHEDULE_COLUMNS}",
            (
                config_id,
                cron,
                timezone,
                missed,
                next_run_at,
                max_running,
                ORIGIN_API if spec_key is None else ORIGIN_CONFIG,
                spec_key,
            ),
        )
        return cur.fetchone()


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


# --- a config's own triggers (its YAML `triggers:`) -----------------------------------


def keep_config_triggers(conn: DbConnection, config_id: uuid.UUID, keep: set[str]) -> None:
    """Delete the YAML-registered triggers and schedules of a config whose entry is not
    in `keep` (spec keys); API-made ones stay."""
    with conn.transaction():
        for table in ("event_triggers", "schedules"):
            conn.execute(
                f"DELETE FROM {table} WHERE config_id = %s AND origin = 'config'"
                " AND NOT (spec_key = ANY(%s::text[]))",
                (config_id, sorted(keep)),
            )


def delete_config_triggers(conn: DbConnection, config_id: uuid.UUID) -> None:
    """Every trigger and schedule of a deleted config: nothing could start it any more."""
    with conn.transaction():
        conn.execute("DELETE FROM event_triggers WHERE config_id = %s", (config_id,))
        conn.execute("DELETE FROM schedules WHERE config_id = %s", (config_id,))


# --- flow control: rate limits and debounce ---------------------------------------------


def take_rate_slot(
    conn: DbConnection, trigger_id: uuid.UUID, rate_key: str, limit: int, period_seconds: float
) -> bool:
    """Count one start against the trigger's limit for `rate_key`; False when `limit`
    starts were counted in the last `period_seconds` (nothing is counted then).

    A transaction-scoped advisory lock per trigger and key serialises the check across
    server instances, so two events at once cannot both take the last slot."""
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{trigger_id}:{rate_key}",)
        )
        conn.execute(
            "DELETE FROM trigger_rate_starts WHERE trigger_id = %s AND rate_key = %s"
            " AND started_at <= now() - make_interval(secs => %s)",
            (trigger_id, rate_key, period_seconds),
        )
        row = conn.execute(
            "SELECT count(*) FROM trigger_rate_starts WHERE trigger_id = %s AND rate_key = %s",
            (trigger_id, rate_key),
        ).fetchone()
        assert row is not None
        if int(row[0]) >= limit:
            return False
        conn.execute(
            "INSERT INTO trigger_rate_starts (trigger_id, rate_key) VALUES (%s, %s)",
            (trigger_id, rate_key),
        )
    return True


def debounce_event(
    conn: DbConnection,
    trigger_id: uuid.UUID,
    rate_key: str,
    *,
    event_id: str,
    event_name: str,
    data: JsonDict,
    period_seconds: float,
    timeout_seconds: float | None,
) -> Debounce:
    """Open a burst or add the event to the open one: the burst's start moves to
    `period_seconds` from now, but never past `timeout_seconds` after its first event."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Debounce)) as cur:
        cur.execute(
            "INSERT INTO trigger_debounces AS d (trigger_id, rate_key, event_id, event_name,"
            " data, due_at) VALUES (%(trigger)s, %(key)s, %(event)s, %(name)s, %(data)s,"
            " now() + make_interval(secs => %(period)s))"
            " ON CONFLICT (trigger_id, rate_key) DO UPDATE SET event_id = EXCLUDED.event_id,"
            " event_name = EXCLUDED.event_name, data = EXCLUDED.data, events = d.events + 1,"
            " due_at = CASE WHEN %(timeout)s::float8 IS NULL THEN EXCLUDED.due_at"
            " ELSE least(EXCLUDED.due_at, d.first_at + make_interval(secs => %(timeout)s)) END"
            " RETURNING trigger_id, rate_key, event_id, event_name, data, events, first_at,"
            " due_at",
            {
                "trigger": trigger_id,
                "key": rate_key,
                "event": event_id,
                "name": event_name,
                "data": Jsonb(data),
                "period": period_seconds,
                "timeout": timeout_seconds,
            },
        )
        burst = cur.fetchone()
    assert burst is not None
    return burst


def lock_due_debounce(conn: DbConnection) -> Debounce | None:
    """One burst whose start is due, row-locked until the caller's transaction ends;
    another instance's are skipped. An event of the burst arriving meanwhile waits for
    the lock, then opens a new burst."""
    with conn.cursor(row_factory=class_row(Debounce)) as cur:
        cur.execute(
            "SELECT trigger_id, rate_key, event_id, event_name, data, events, first_at, due_at"
            " FROM trigger_debounces WHERE due_at <= now() ORDER BY due_at LIMIT 1"
            " FOR UPDATE SKIP LOCKED"
        )
        return cur.fetchone()


def close_debounce(conn: DbConnection, trigger_id: uuid.UUID, rate_key: str) -> None:
    conn.execute(
        "DELETE FROM trigger_debounces WHERE trigger_id = %s AND rate_key = %s",
        (trigger_id, rate_key),
    )


def update_event_result(
    conn: DbConnection, event_id: str, trigger_id: uuid.UUID, changes: JsonDict
) -> None:
    """Merge `changes` into the event's result for one trigger (a debounced start)."""
    conn.execute(
        "UPDATE inbound_events SET results = (SELECT coalesce(jsonb_agg(CASE WHEN"
        " r->>'trigger_id' = %s THEN r || %s ELSE r END ORDER BY n), '[]')"
        " FROM jsonb_array_elements(results) WITH ORDINALITY AS t(r, n)) WHERE id = %s",
        (str(trigger_id), Jsonb(changes), event_id),
    )

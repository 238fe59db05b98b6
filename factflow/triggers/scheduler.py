"""Cron schedules: exactly one execution per tick across all server instances; and the
debounced bursts of event triggers, started once their quiet period is over.

Each instance's `Scheduler` looks for due schedules every `poll_seconds`. A due schedule
is row-locked (FOR UPDATE SKIP LOCKED) while its tick is handled, so two instances never
handle one tick at the same time, and the start's idempotency key
(`schedule:<id>:<tick>`) makes a tick whose instance died before moving the schedule on
start no second execution when another instance handles it again.

Missed ticks (the servers were down, or a tick was found more than `misfire_grace` late):
`missed: skip` (the default) drops them and waits for the next tick; `missed: run_once`
starts one execution for all of them, then goes on with the next tick.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta

from factflow.cron import Cron
from factflow.db.connection import DbConnection, connect
from factflow.db.repositories import triggers as repo
from factflow.triggers.events import run_due_debounces
from factflow.triggers.starter import Starter, TriggerStart

_log = logging.getLogger(__name__)


def run_due_schedules(
    conn: DbConnection, starter: Starter, *, misfire_grace: timedelta = timedelta(seconds=60)
) -> list[uuid.UUID]:
    """Handle every due schedule once; returns the executions started."""
    started: list[uuid.UUID] = []
    while True:
        with conn.transaction():
            schedule = repo.lock_due_schedule(conn)
            if schedule is None:
                return started
            execution_id = _tick(conn, starter, schedule, misfire_grace)
        if execution_id is not None:
            started.append(execution_id)


def _tick(
    conn: DbConnection, starter: Starter, schedule: repo.Schedule, misfire_grace: timedelta
) -> uuid.UUID | None:
    now = datetime.now(UTC)
    tick = schedule.next_run_at
    late = now - tick > misfire_grace
    execution_id: uuid.UUID | None = None
    error: str | None = None
    if late and schedule.missed == "skip":
        error = f"skipped the tick(s) missed since {tick.isoformat()} (missed: skip)"
    elif (
        schedule.max_running is not None
        and repo.running_count(conn, schedule.config_id) >= schedule.max_running
    ):
        error = f"tick {tick.isoformat()} skipped: {schedule.max_running} execution(s) running"
    else:
        request = TriggerStart(
            config_id=schedule.config_id,
            trigger_context={
                "trigger": "schedule",
                "schedule_id": str(schedule.id),
                "cron": schedule.cron,
                "tick": tick.isoformat(),
                "late": late,
            },
            idempotency_key=f"schedule:{schedule.id}:{tick.isoformat()}",
            source="schedule",
        )
        try:
            execution_id = starter(request)
        except Exception as exc:
            _log.warning("schedule %s: tick %s could not start: %s", schedule.id, tick, exc)
            error = str(exc) or type(exc).__name__
    repo.advance_schedule(
        conn,
        schedule.id,
        next_run_at=Cron(schedule.cron, schedule.timezone).next_after(max(now, tick)),
        ran_at=now if execution_id is not None else None,
        execution_id=execution_id,
        error=error,
    )
    return execution_id


class Scheduler:
    """Runs `run_due_schedules` and `run_due_debounces` every `poll_seconds` on a thread
    until `close()`."""

    def __init__(
        self,
        database_url: str,
        starter: Starter,
        *,
        poll_seconds: float = 1.0,
        misfire_grace: timedelta = timedelta(seconds=60),
    ) -> None:
        self.database_url = database_url
        self.starter = starter
        self.poll_seconds = poll_seconds
        self.misfire_grace = misfire_grace
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        """Rounds finished (schedules and debounces looked at): what a caller waits on to
        know that everything due by some moment has been handled."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="factflow-scheduler", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 10)

    def _run(self) -> None:
        # one connection of its own, reopened after an error (the database restarted)
        conn: DbConnection | None = None
        while not self._stop.wait(self.poll_seconds):
            try:
                if conn is None or conn.closed:
                    conn = connect(self.database_url)
                run_due_schedules(conn, self.starter, misfire_grace=self.misfire_grace)
                run_due_debounces(conn, self.starter)
                self.rounds += 1
            except Exception:
                _log.exception("scheduler: retrying after an error")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

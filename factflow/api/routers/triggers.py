"""Triggers in (factflow additions): events that start configs (`/events`, `/triggers`)
and cron schedules (`/schedules`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from factflow.api.auth import require
from factflow.api.bodies import RequestBody
from factflow.api.compiling import bad_request
from factflow.api.deps import DbDep, Offset
from factflow.db.repositories import triggers as repo
from factflow.db.repositories.configs import get_config
from factflow.server.executions import ExecutionService, StartRequest
from factflow.triggers.cron import Cron
from factflow.triggers.events import receive_event
from factflow.triggers.exceptions import TriggerError
from factflow.triggers.matching import check_condition
from factflow.triggers.starter import Starter, TriggerStart
from factflow.types import JsonDict

# events, triggers and schedules all end in runs: posting or defining one is executions:run
router = APIRouter(
    tags=["triggers"], dependencies=[require("executions:read", write="executions:run")]
)

Text = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00]*$")]
UPCOMING = 5


def make_starter(pool: ConnectionPool[Any], service: ExecutionService) -> Starter:
    """How triggers start executions: the execution service's `start`, as
    `POST /executions` does, with the trigger as the execution's source."""

    def start(request: TriggerStart) -> uuid.UUID:
        with pool.connection() as db:
            config = get_config(db, request.config_id)
            execution, _ = service.start(
                db,
                StartRequest(
                    config_yaml=config.config_yaml,
                    pipeline_name=config.name,
                    config_id=config.id,
                    config_version=config.version,
                    inputs=request.inputs,
                    trigger_context=request.trigger_context,
                    idempotency_key=request.idempotency_key,
                    source=request.source,
                ),
            )
        return execution.id

    return start


# --- events -----------------------------------------------------------------------------


class EventSend(RequestBody):
    name: Text
    data: JsonDict = Field(default_factory=dict)
    id: Text | None = Field(
        default=None, description="idempotency: an id sent before starts nothing again"
    )


class EventResponse(BaseModel):
    id: str
    name: str
    data: JsonDict
    received_at: datetime
    results: list[JsonDict] = Field(
        description="per matching trigger: trigger_id, config_id, execution_id or error"
    )
    created: bool | None = None


def _event(event: repo.InboundEvent, created: bool | None = None) -> EventResponse:
    return EventResponse(
        id=event.id,
        name=event.name,
        data=event.data,
        received_at=event.received_at,
        results=event.results,
        created=created,
    )


@router.post("/events", status_code=status.HTTP_201_CREATED)
def send_event(body: EventSend, db: DbDep, request: Request, response: Response) -> EventResponse:
    """Start every active config whose trigger matches the event (201); 200 with the
    earlier outcome when `id` was sent before."""
    event, created = receive_event(
        db,
        make_starter(request.app.state.pool, request.app.state.executions),
        name=body.name,
        data=body.data,
        event_id=body.id,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _event(event, created)


@router.get("/events")
def list_events(
    db: DbDep,
    name: Annotated[str | None, Query(max_length=300, pattern=r"^[^\x00]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[EventResponse]:
    """Events received, newest first, with the executions they started."""
    return [_event(e) for e in repo.list_inbound_events(db, name=name, limit=limit, offset=offset)]


@router.get("/events/{event_id}")
def get_event(event_id: Annotated[str, Path(max_length=300)], db: DbDep) -> EventResponse:
    return _event(repo.get_inbound_event(db, event_id))


# --- event triggers ---------------------------------------------------------------------


class TriggerCreate(RequestBody):
    config_id: uuid.UUID
    event: Text = Field(description="event names to match, a glob (`deploy.*`)")
    condition: JsonDict | None = Field(
        default=None, description="the pipeline condition language over the event's data"
    )
    input_queue: Text | None = Field(
        default=None, description="send the event's data as one message to this queue"
    )
    max_running: int | None = Field(default=None, ge=1, le=10_000)


class TriggerResponse(BaseModel):
    trigger_id: uuid.UUID
    config_id: uuid.UUID
    event: str
    condition: JsonDict | None
    input_queue: str | None
    max_running: int | None
    is_active: bool
    created_at: datetime


def _trigger(t: repo.EventTrigger) -> TriggerResponse:
    return TriggerResponse(
        trigger_id=t.id,
        config_id=t.config_id,
        event=t.event_pattern,
        condition=t.condition,
        input_queue=t.input_queue,
        max_running=t.max_running,
        is_active=t.is_active,
        created_at=t.created_at,
    )


@router.post("/triggers", status_code=status.HTTP_201_CREATED)
def create_trigger(body: TriggerCreate, db: DbDep) -> TriggerResponse:
    """Start the config on every event matching `event` and `condition`."""
    get_config(db, body.config_id)
    try:
        check_condition(body.condition)
    except TriggerError as exc:
        raise bad_request(str(exc), "TRIGGER_INVALID") from exc
    return _trigger(
        repo.create_trigger(
            db,
            config_id=body.config_id,
            event_pattern=body.event,
            condition=body.condition,
            input_queue=body.input_queue,
            max_running=body.max_running,
        )
    )


@router.get("/triggers")
def list_triggers(db: DbDep, config_id: uuid.UUID | None = None) -> list[TriggerResponse]:
    return [_trigger(t) for t in repo.list_triggers(db, config_id=config_id)]


@router.get("/triggers/{trigger_id}")
def get_trigger(trigger_id: uuid.UUID, db: DbDep) -> TriggerResponse:
    return _trigger(repo.get_trigger(db, trigger_id))


@router.delete("/triggers/{trigger_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_trigger(trigger_id: uuid.UUID, db: DbDep) -> Response:
    repo.delete_trigger(db, trigger_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- schedules --------------------------------------------------------------------------


class ScheduleCreate(RequestBody):
    config_id: uuid.UUID
    cron: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    timezone: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")] = "UTC"
    missed: Literal["skip", "run_once"] = Field(
        default="skip", description="ticks missed while no server ran: skip, or run once"
    )
    max_running: int | None = Field(default=None, ge=1, le=10_000)


class ScheduleResponse(BaseModel):
    schedule_id: uuid.UUID
    config_id: uuid.UUID
    cron: str
    timezone: str
    missed: str
    max_running: int | None
    is_active: bool
    next_run_at: datetime
    next_runs: list[datetime] = Field(description=f"the next {UPCOMING} ticks")
    last_run_at: datetime | None
    last_execution_id: uuid.UUID | None
    last_error: str | None
    created_at: datetime


def _schedule(s: repo.Schedule) -> ScheduleResponse:
    cron = Cron(s.cron, s.timezone)
    return ScheduleResponse(
        schedule_id=s.id,
        config_id=s.config_id,
        cron=s.cron,
        timezone=s.timezone,
        missed=s.missed,
        max_running=s.max_running,
        is_active=s.is_active,
        next_run_at=s.next_run_at,
        next_runs=[s.next_run_at, *cron.upcoming(s.next_run_at, UPCOMING - 1)],
        last_run_at=s.last_run_at,
        last_execution_id=s.last_execution_id,
        last_error=s.last_error,
        created_at=s.created_at,
    )


@router.post("/schedules", status_code=status.HTTP_201_CREATED)
def create_schedule(body: ScheduleCreate, db: DbDep) -> ScheduleResponse:
    """Run the config at every tick of `cron` in `timezone`: one execution per tick
    across all server instances."""
    get_config(db, body.config_id)
    try:
        cron = Cron(body.cron, body.timezone)
    except TriggerError as exc:
        raise bad_request(str(exc), "SCHEDULE_INVALID") from exc
    return _schedule(
        repo.create_schedule(
            db,
            config_id=body.config_id,
            cron=body.cron,
            timezone=body.timezone,
            missed=body.missed,
            next_run_at=cron.next_after(datetime.now(UTC)),
            max_running=body.max_running,
        )
    )


@router.get("/schedules")
def list_schedules(db: DbDep, config_id: uuid.UUID | None = None) -> list[ScheduleResponse]:
    return [_schedule(s) for s in repo.list_schedules(db, config_id=config_id)]


@router.get("/schedules/{schedule_id}")
def get_schedule(schedule_id: uuid.UUID, db: DbDep) -> ScheduleResponse:
    return _schedule(repo.get_schedule(db, schedule_id))


@router.delete("/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_schedule(schedule_id: uuid.UUID, db: DbDep) -> Response:
    repo.delete_schedule(db, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

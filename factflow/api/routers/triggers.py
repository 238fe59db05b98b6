"""Triggers in (factflow additions): events that start configs (`/events`, `/triggers`)
and cron schedules (`/schedules`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, overload

from fastapi import APIRouter, Path, Query, Request, Response, status
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from factflow.api.auth import require
from factflow.api.bodies import RequestBody
from factflow.api.compiling import bad_request
from factflow.api.deps import DbDep, Offset
from factflow.api.errors import error_responses
from factflow.compiler.config import DebounceConfig, RateLimitConfig, TriggerConfig
from factflow.compiler.diagnostics import format_path
from factflow.compiler.triggers import trigger_problems
from factflow.cron import Cron
from factflow.db.connection import DbConnection
from factflow.db.exceptions import ConflictError
from factflow.db.repositories import triggers as repo
from factflow.db.repositories.configs import get_config
from factflow.server.executions import ExecutionService, StartRequest
from factflow.triggers import definitions
from factflow.triggers.events import receive_event
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
                    init_payload=request.init_payload,
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


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": EventResponse, "description": "an event id seen before: its outcome"}
    },
)
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


@router.get("/events/{event_id}", responses=error_responses(404))
def get_event(event_id: Annotated[str, Path(max_length=300)], db: DbDep) -> EventResponse:
    return _event(repo.get_inbound_event(db, event_id))


# --- event triggers and schedules -------------------------------------------------------


class TriggerCreate(RequestBody):
    config_id: uuid.UUID
    event: Text = Field(description="event names to match, a glob (`deploy.*`)")
    condition: JsonDict | None = Field(
        default=None, description="the pipeline condition language over the event's data"
    )
    input_queue: Text | None = Field(
        default=None, description="send the event's data as one message to this queue"
    )
    init_payload: bool = Field(
        default=False, description="merge the event's data into the init_message payload"
    )
    max_running: int | None = Field(default=None, ge=1, le=10_000)
    rate_limit: RateLimitConfig | None = Field(
        default=None, description="at most `limit` starts per `period_seconds` (per `key`)"
    )
    debounce: DebounceConfig | None = Field(
        default=None,
        description="a burst (per `key`) starts once, with its last event, after "
        "`period_seconds` without another",
    )


class ScheduleCreate(RequestBody):
    config_id: uuid.UUID
    cron: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    timezone: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")] = "UTC"
    missed: Literal["skip", "run_once"] = Field(
        default="skip", description="ticks missed while no server ran: skip, or run once"
    )
    max_running: int | None = Field(default=None, ge=1, le=10_000)


Kind = Literal["trigger", "schedule"]


@overload
def _create(
    kind: Literal["trigger"], body: TriggerCreate, db: DbConnection
) -> repo.EventTrigger: ...


@overload
def _create(kind: Literal["schedule"], body: ScheduleCreate, db: DbConnection) -> repo.Schedule: ...


def _create(
    kind: Kind, body: TriggerCreate | ScheduleCreate, db: DbConnection
) -> repo.EventTrigger | repo.Schedule:
    """What `POST /triggers` and `POST /schedules` share: the config exists, the body
    passes the checks a `triggers:` entry of a pipeline gets (400 `TRIGGER_INVALID` /
    `SCHEDULE_INVALID` with their E-codes), then it is registered."""
    get_config(db, body.config_id)
    spec = body.model_dump(mode="json", exclude={"config_id"}, exclude_none=True)
    problems = trigger_problems(spec)
    if problems:
        detail = "; ".join(
            f"{p.code} at {format_path(p.path) or kind}: {p.message} ({p.suggestion})"
            for p in problems
        )
        msg = f"invalid {kind}: {detail}"
        raise bad_request(msg, f"{kind.upper()}_INVALID")
    created = definitions.register(db, body.config_id, TriggerConfig.model_validate(spec))
    assert created is not None  # only a config's own entries (a spec key) can exist already
    return created


def _delete(kind: Kind, found: repo.EventTrigger | repo.Schedule, db: DbConnection) -> Response:
    """Delete a trigger or schedule made through the API; one from the config's
    `triggers:` is removed by editing the config (409 here: it would come back)."""
    if found.origin == repo.ORIGIN_CONFIG:
        msg = (
            f"{kind} {found.id} comes from the `triggers:` of config {found.config_id}: "
            "remove it there (saving the config removes it)"
        )
        raise ConflictError(msg)
    if kind == "trigger":
        repo.delete_trigger(db, found.id)
    else:
        repo.delete_schedule(db, found.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class TriggerResponse(BaseModel):
    trigger_id: uuid.UUID
    config_id: uuid.UUID
    event: str
    condition: JsonDict | None
    input_queue: str | None
    init_payload: bool
    max_running: int | None
    rate_limit: JsonDict | None
    debounce: JsonDict | None
    origin: Literal["api", "config"] = Field(
        description="`config`: registered from the config's `triggers:`"
    )
    is_active: bool
    created_at: datetime


def _trigger(t: repo.EventTrigger) -> TriggerResponse:
    return TriggerResponse(
        trigger_id=t.id,
        config_id=t.config_id,
        event=t.event_pattern,
        condition=t.condition,
        input_queue=t.input_queue,
        init_payload=t.init_payload,
        max_running=t.max_running,
        rate_limit=t.rate_limit,
        debounce=t.debounce,
        origin="config" if t.origin == repo.ORIGIN_CONFIG else "api",
        is_active=t.is_active,
        created_at=t.created_at,
    )


@router.post("/triggers", status_code=status.HTTP_201_CREATED, responses=error_responses(404))
def create_trigger(body: TriggerCreate, db: DbDep) -> TriggerResponse:
    """Start the config on every event matching `event` and `condition`."""
    return _trigger(_create("trigger", body, db))


@router.get("/triggers")
def list_triggers(db: DbDep, config_id: uuid.UUID | None = None) -> list[TriggerResponse]:
    return [_trigger(t) for t in repo.list_triggers(db, config_id=config_id)]


@router.get("/triggers/{trigger_id}", responses=error_responses(404))
def get_trigger(trigger_id: uuid.UUID, db: DbDep) -> TriggerResponse:
    return _trigger(repo.get_trigger(db, trigger_id))


@router.delete(
    "/triggers/{trigger_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
def delete_trigger(trigger_id: uuid.UUID, db: DbDep) -> Response:
    return _delete("trigger", repo.get_trigger(db, trigger_id), db)


class ScheduleResponse(BaseModel):
    schedule_id: uuid.UUID
    config_id: uuid.UUID
    cron: str
    timezone: str
    missed: str
    max_running: int | None
    origin: Literal["api", "config"] = Field(
        description="`config`: registered from the config's `triggers:`"
    )
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
        origin="config" if s.origin == repo.ORIGIN_CONFIG else "api",
        is_active=s.is_active,
        next_run_at=s.next_run_at,
        next_runs=[s.next_run_at, *cron.upcoming(s.next_run_at, UPCOMING - 1)],
        last_run_at=s.last_run_at,
        last_execution_id=s.last_execution_id,
        last_error=s.last_error,
        created_at=s.created_at,
    )


@router.post("/schedules", status_code=status.HTTP_201_CREATED, responses=error_responses(404))
def create_schedule(body: ScheduleCreate, db: DbDep) -> ScheduleResponse:
    """Run the config at every tick of `cron` in `timezone`: one execution per tick
    across all server instances."""
    return _schedule(_create("schedule", body, db))


@router.get("/schedules")
def list_schedules(db: DbDep, config_id: uuid.UUID | None = None) -> list[ScheduleResponse]:
    return [_schedule(s) for s in repo.list_schedules(db, config_id=config_id)]


@router.get("/schedules/{schedule_id}", responses=error_responses(404))
def get_schedule(schedule_id: uuid.UUID, db: DbDep) -> ScheduleResponse:
    return _schedule(repo.get_schedule(db, schedule_id))


@router.delete(
    "/schedules/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
def delete_schedule(schedule_id: uuid.UUID, db: DbDep) -> Response:
    return _delete("schedule", repo.get_schedule(db, schedule_id), db)

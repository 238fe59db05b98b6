"""Dead letters kept in Postgres: list, inspect, redrive (onto their queue or into new
executions) and discard; and the brokers' dead-letter queues (`/deadletters/queues`):
list, peek, redrive and purge (`factflow.server.broker_dlq`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from factflow.api.auth import StarterDep, require
from factflow.api.deps import DbDep, ExecutionsDep, Offset, SettingsDep
from factflow.api.errors import error_responses
from factflow.api.schemas.replay import (
    DeadLetterResponse,
    QueueRedriveBody,
    RedriveBody,
    RedriveResponse,
)
from factflow.dataflows.redrive import redrive_letters
from factflow.db.connection import DbConnection
from factflow.db.repositories import dead_letters as repo
from factflow.db.repositories.events import emit_event
from factflow.server import broker_dlq
from factflow.types import JsonDict

router = APIRouter(
    prefix="/deadletters",
    tags=["deadletters"],
    dependencies=[require("executions:read", write="executions:run")],
)
MAX_ID = 2**63 - 1  # dead_letters.id is a bigint
RouteId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("")
def list_dead_letters(
    db: DbDep,
    execution_id: uuid.UUID | None = None,
    route_id: Annotated[str | None, Query(max_length=200)] = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    pending: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Offset = 0,
) -> list[DeadLetterResponse]:
    """Dead letters, oldest first; `pending` leaves out the redriven ones."""
    rows = repo.list_dead_letters(
        db,
        execution_id=execution_id,
        route_id=route_id,
        reason=reason,
        since=since,
        until=until,
        pending_only=pending,
        limit=limit,
        offset=offset,
    )
    return [DeadLetterResponse.of(row) for row in rows]


@router.get("/queues", responses=error_responses(404))
def list_queues(execution_id: uuid.UUID, db: DbDep, service: ExecutionsDep) -> list[JsonDict]:
    """The execution's dead-letter queues on its broker (none for file and postgres
    pipelines: their letters are the table's)."""
    plan = service.plan_of(db, execution_id)
    return [
        {"route_id": d.route, "queue": d.queue, "provider": d.provider}
        for d in broker_dlq.broker_queues(plan)
    ]


@router.get("/queues/{route_id}/messages", responses=error_responses(404))
def peek_queue(
    route_id: RouteId,
    execution_id: uuid.UUID,
    db: DbDep,
    service: ExecutionsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    all_executions: bool = False,
) -> JsonDict:
    """Up to `limit` letters of the route's dead-letter queue, left on it (the queue is
    the pipeline's, shared by its executions: only this execution's unless
    `all_executions`)."""
    plan = service.plan_of(db, execution_id)
    only = None if all_executions else str(execution_id)
    return broker_dlq.peek(plan, route_id, only, limit, _owners(db)).to_dict(with_letters=True)


@router.post("/queues/{route_id}/redrive", responses=error_responses(404))
def redrive_queue(
    body: QueueRedriveBody, route_id: RouteId, db: DbDep, service: ExecutionsDep
) -> JsonDict:
    """Up to `limit` of the execution's letters back onto their route's inbound queue:
    published and confirmed, then taken off the dead-letter queue (event
    `deadletter.redriven`)."""
    plan = service.plan_of(db, body.execution_id)
    outcome = broker_dlq.redrive(plan, route_id, str(body.execution_id), body.limit, _owners(db))
    data = outcome.to_dict(with_letters=False)
    emit_event(
        db, "deadletter.redriven", {"route_id": route_id, **data}, execution_id=body.execution_id
    )
    return data


@router.delete("/queues/{route_id}", responses=error_responses(404))
def purge_queue(
    route_id: RouteId,
    execution_id: uuid.UUID,
    db: DbDep,
    service: ExecutionsDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    all_executions: bool = False,
) -> JsonDict:
    """Discard up to `limit` letters of the route's dead-letter queue (the execution's, or
    every execution's); the event `deadletter.purged` records what they were."""
    plan = service.plan_of(db, execution_id)
    only = None if all_executions else str(execution_id)
    outcome = broker_dlq.purge(plan, route_id, only, limit, _owners(db))
    emit_event(
        db,
        "deadletter.purged",
        {"route_id": route_id, **outcome.to_dict(with_letters=True)},
        execution_id=execution_id,
    )
    return outcome.to_dict(with_letters=False)


def _owners(db: DbConnection) -> broker_dlq.Owners:
    return lambda rows: repo.executions_of_rows(db, rows)


@router.get("/{letter_id}", responses=error_responses(404))
def get_dead_letter(
    letter_id: Annotated[int, Path(ge=1, le=MAX_ID)], db: DbDep
) -> DeadLetterResponse:
    """One dead letter with its message and error."""
    return DeadLetterResponse.of(repo.get_dead_letter(db, letter_id))


@router.post("/redrive", responses=error_responses(404))
def redrive(
    body: RedriveBody,
    db: DbDep,
    service: ExecutionsDep,
    settings: SettingsDep,
    starter: StarterDep,
) -> RedriveResponse:
    """Redrive dead letters not redriven yet (by `ids`, or `execution_id` with filters):
    `into: queue` publishes each onto its route's inbound queue with the pipeline's
    provider; `into: execution` starts new executions fed with them. Letters already
    redriven are skipped, so a repeated request redrives nothing."""
    if body.ids is not None:
        letters = [repo.get_dead_letter(db, i) for i in sorted(set(body.ids))]
        letters = [letter for letter in letters if letter.redriven_at is None]
    else:
        letters = repo.list_dead_letters(
            db,
            execution_id=body.execution_id,
            route_id=body.route_id,
            reason=body.reason,
            since=body.since,
            until=body.until,
            pending_only=True,
            limit=body.limit,
        )
    ids = [letter.id for letter in letters]
    if body.into == "execution":
        started = service.redrive_into_executions(
            db, letters, to_route=body.to_route, started_by=starter
        )
        return RedriveResponse(
            redriven=len(ids), dead_letter_ids=ids, executions=[e.id for e in started]
        )
    by_execution: dict[uuid.UUID, list[int]] = defaultdict(list)
    for letter in letters:
        by_execution[letter.execution_id].append(letter.id)
    assert settings.database_url is not None
    count = 0
    for execution_id, group in by_execution.items():
        plan = service.plan_of(db, execution_id)
        count += redrive_letters(settings.database_url, plan, ids=group)
    return RedriveResponse(redriven=count, dead_letter_ids=ids, executions=[])


@router.delete(
    "/{letter_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
def discard_dead_letter(letter_id: Annotated[int, Path(ge=1, le=MAX_ID)], db: DbDep) -> Response:
    """Discard a dead letter; the event `deadletter.discarded` records what it was."""
    repo.discard_dead_letter(db, letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

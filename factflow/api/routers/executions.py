"""Executions: start (from a config or inline YAML), list, inspect, stream, cancel, resume."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request, Response, status
from sse_starlette.sse import EventSourceResponse

from factflow.api.auth import StarterDep, require
from factflow.api.compiling import bad_request, pipeline_name
from factflow.api.deps import (
    DbDep,
    ExecutionsDep,
    Offset,
    SettingsDep,
    StorageDep,
    SupervisorDep,
    get_pool,
)
from factflow.api.errors import error_responses
from factflow.api.routers.lineage import LineageEntry
from factflow.api.routers.replay import run_replay
from factflow.api.schemas.executions import (
    IDEMPOTENT_START,
    CancelResponse,
    ExecutionCreate,
    ExecutionResponse,
    ExecutionStarted,
    RunRequest,
    duration_seconds,
    execution_json,
    execution_response,
    started,
)
from factflow.api.schemas.replay import DRY_RUN, ReplayBody, ReplayResponse
from factflow.api.sse import EventStream, execution_events, sse_responses, storage_events
from factflow.compiler.render import render_mermaid
from factflow.db.connection import DbConnection
from factflow.db.repositories import executions as repo
from factflow.db.repositories import lineage as lineage_repo
from factflow.db.repositories import usage as usage_repo
from factflow.db.repositories.configs import PipelineConfig
from factflow.db.repositories.route_states import paused_routes
from factflow.server import rundir
from factflow.server.executions import ExecutionService, StartRequest
from factflow.server.supervisor import StartedBy, Supervisor
from factflow.types import JsonDict

router = APIRouter(
    prefix="/executions",
    tags=["executions"],
    dependencies=[require("executions:read", write="executions:run")],
)
MAX_EVENT_ID = 2**63 - 1  # events.id is a bigint


def start_execution(
    service: ExecutionService,
    db: DbConnection,
    response: Response,
    body: RunRequest,
    *,
    config: PipelineConfig | None = None,
    pipeline_yaml: str | None = None,
    started_by: StartedBy | None = None,
) -> ExecutionStarted:
    """Start through the execution service; 201 when created, 200 for a known key."""
    if config is not None:
        text, name = config.config_yaml, config.name
    else:
        assert pipeline_yaml is not None
        text, name = pipeline_yaml, pipeline_name(pipeline_yaml)
    execution, created = service.start(
        db,
        StartRequest(
            config_yaml=text,
            pipeline_name=name,
            config_id=config.id if config else None,
            config_version=config.version if config else None,
            inputs=body.inputs,
            workers=body.workers,
            processes=body.processes,
            trigger_context=body.trigger_context,
            idempotency_key=body.idempotency_key,
            started_by=started_by,
        ),
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return started(execution, created)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**IDEMPOTENT_START, **error_responses(404)},
)
def create_execution(
    body: ExecutionCreate,
    db: DbDep,
    service: ExecutionsDep,
    response: Response,
    starter: StarterDep,
) -> ExecutionStarted:
    """Start an execution of a stored config (`config_id`) or of inline `pipeline_yaml`.

    201 with `status: running`; 200 with the existing execution when `idempotency_key`
    was used before; 400 with `validation_report` when the pipeline is invalid; 429 over
    `max_concurrent_executions`, and 429 `KEY_EXECUTION_LIMIT` when the key has as many
    running as it may (`max_running_executions`).
    """
    config = None
    if body.config_id is not None:
        from factflow.db.repositories.configs import get_config

        config = get_config(db, body.config_id)
    return start_execution(
        service,
        db,
        response,
        body,
        config=config,
        pipeline_yaml=body.pipeline_yaml,
        started_by=starter,
    )


@router.get("")
def list_executions(
    db: DbDep,
    status_filter: Annotated[repo.ExecutionStatus | None, Query(alias="status")] = None,
    config_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> list[ExecutionResponse]:
    """Executions, newest first."""
    rows = repo.list_executions(
        db, status=status_filter, config_id=config_id, limit=limit, offset=offset
    )
    return [execution_response(row, snapshot=False) for row in rows]


def _derived_stats(
    db: DbConnection,
    supervisor: Supervisor,
    execution: repo.Execution,
    totals: lineage_repo.ExecutionLineageStats | None = None,
) -> JsonDict:
    if totals is None:
        totals = lineage_repo.execution_stats(db, execution.id)
    stats = dict(execution.stats)
    if execution.status in ("running", "cancelling"):
        # live, from Postgres: the same on every replica, whichever hosts run the workers
        stats["counts"] = supervisor.progress_counts(execution.id, db)
    duration = duration_seconds(execution)
    stats["lineage"] = asdict(totals)
    stats["throughput_per_second"] = round(totals.completed / duration, 3) if duration else None
    return stats


@router.get("/{execution_id}", response_model=ExecutionResponse, responses=error_responses(404))
async def get_execution(
    execution_id: uuid.UUID, request: Request, supervisor: SupervisorDep
) -> Response:
    """The row, its `config_snapshot`, timestamps and stats derived from lineage."""
    # the lean read path (the most polled route): one hop to a thread, one query (the
    # row with its lineage totals; a second for a live execution's counters), the body
    # serialized by the model's serializer without validating again
    pool = get_pool(request)

    def read() -> bytes:
        with pool.connection() as db:
            execution, totals = repo.get_execution_with_totals(db, execution_id)
            stats = _derived_stats(db, supervisor, execution, totals)
        return execution_json(execution_response(execution, snapshot=True, stats=stats))

    return Response(await to_thread.run_sync(read), media_type="application/json")


@router.delete(
    "/{execution_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409)
)
def delete_execution(execution_id: uuid.UUID, db: DbDep) -> Response:
    """Delete a finished execution with its lineage and events (factflow addition)."""
    repo.delete_execution(db, execution_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{execution_id}/cancel", responses=error_responses(404, 409))
def cancel_execution(execution_id: uuid.UUID, db: DbDep, service: ExecutionsDep) -> CancelResponse:
    """Graceful cancel: `cancelling` at once; SIGTERM, then SIGKILL after the grace period."""
    execution = service.cancel(db, execution_id)
    return CancelResponse(
        execution_id=execution.id,
        status=execution.status,
        message="cancel requested; the workers drain and stop"
        if execution.status == "cancelling"
        else f"execution is {execution.status}",
    )


@router.post(
    "/{execution_id}/resume",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(404, 409),
)
def resume_execution(
    execution_id: uuid.UUID, db: DbDep, service: ExecutionsDep
) -> ExecutionStarted:
    """Relaunch an interrupted execution from its recovery snapshot (factflow addition)."""
    return started(service.resume(db, execution_id), True)


@router.post(
    "/{execution_id}/replay",
    status_code=status.HTTP_201_CREATED,
    responses={**DRY_RUN, **error_responses(404, 409)},
)
def replay_execution(
    execution_id: uuid.UUID,
    body: ReplayBody,
    db: DbDep,
    service: ExecutionsDep,
    storage: StorageDep,
    response: Response,
    starter: StarterDep,
) -> ReplayResponse:
    """A new execution (`source: replay`) fed the stored outputs of `from_stage`: only the
    steps after it run (or `to_route`'s); see `POST /replay`."""
    return run_replay(service, db, storage, response, execution_id, body, started_by=starter)


@router.get(
    "/{execution_id}/events",
    response_class=EventStream,
    responses={
        **sse_responses("status, then one per event of the execution (id: the event id)"),
        **error_responses(404),
    },
)
async def execution_events_stream(
    execution_id: uuid.UUID,
    request: Request,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_EVENT_ID, description="same as Last-Event-ID")
    ] = None,
) -> EventSourceResponse:
    """SSE: the current status, then every event of the execution; ends at a terminal state.

    Reconnect with `Last-Event-ID` to continue after the last event received.
    """
    pool = get_pool(request)

    def check() -> None:
        with pool.connection() as conn:
            repo.get_execution(conn, execution_id)

    await to_thread.run_sync(check)  # 404 before the stream starts
    start = after if after is not None else _event_id(last_event_id)
    assert settings.database_url is not None
    return EventSourceResponse(
        execution_events(
            pool,
            settings.database_url,
            execution_id,
            last_event_id=start,
            disconnected=request.is_disconnected,
        ),
        ping=15,
    )


def _event_id(value: str | None) -> int:
    if value is None:
        return 0
    try:
        event_id = max(0, int(value))
    except ValueError:
        event_id = -1
    if not 0 <= event_id <= MAX_EVENT_ID:
        msg = f"Last-Event-ID must be an event id, got {value[:40]!r}"
        raise bad_request(msg)
    return event_id


@router.get(
    "/{execution_id}/storage-stream",
    response_class=EventStream,
    responses={
        **sse_responses("storage.object_created per object, then end"),
        **error_responses(404),
    },
)
async def storage_stream(
    execution_id: uuid.UUID,
    request: Request,
    storage: StorageDep,
    route_id: str | None = None,
) -> EventSourceResponse:
    """SSE: `storage.object_created` per stored artefact; ends when the execution is final."""
    pool = get_pool(request)

    def check() -> None:
        with pool.connection() as conn:
            repo.get_execution(conn, execution_id)

    await to_thread.run_sync(check)
    return EventSourceResponse(
        storage_events(
            pool, storage, execution_id, route_id=route_id, disconnected=request.is_disconnected
        ),
        ping=15,
    )


def _usage_by_kind(db: DbConnection, execution_id: uuid.UUID) -> JsonDict:
    """The model calls the execution's adapters recorded (`embedding`: the tokens its
    pipeline embedded), per kind of call."""
    usage: JsonDict = {}
    for group in usage_repo.usage_groups(db, ["kind"], execution_id=execution_id):
        totals = asdict(group)
        del totals["key"]
        usage[str(group.key["kind"])] = totals
    return usage


@router.get("/{execution_id}/stats", responses=error_responses(404))
def execution_stats(execution_id: uuid.UUID, db: DbDep, supervisor: SupervisorDep) -> JsonDict:
    """Per-adapter counts (completed, failed, pending), durations and throughput, from
    lineage; plus per route, the workers' own counters, and the tokens and cost of the
    model calls its adapters made (`usage.embedding`)."""
    execution = repo.get_execution(db, execution_id)
    duration = duration_seconds(execution) or None
    adapters = []
    for row in lineage_repo.adapter_stats(db, execution_id):
        item = asdict(row)
        item["pending"] = row.in_progress
        item["throughput_per_second"] = round(row.completed / duration, 3) if duration else None
        adapters.append(item)
    derived = _derived_stats(db, supervisor, execution)
    return {
        "execution_id": str(execution_id),
        "status": execution.status,
        "duration_seconds": duration_seconds(execution),
        "totals": derived["lineage"],
        "throughput_per_second": derived["throughput_per_second"],
        "adapters": adapters,
        "routes": [asdict(r) for r in lineage_repo.route_stats(db, execution_id)],
        "counts": derived.get("counts", {}),
        "usage": _usage_by_kind(db, execution_id),
    }


@router.get("/{execution_id}/dag", responses=error_responses(404))
def execution_dag(execution_id: uuid.UUID, db: DbDep, service: ExecutionsDep) -> JsonDict:
    """Nodes (routes and their adapters) and edges (adapter chains, queue links)."""
    repo.get_execution(db, execution_id)  # 404 first
    plan = service.plan_of(db, execution_id)
    nodes: list[JsonDict] = []
    edges: list[JsonDict] = []
    for route in plan.routes:
        nodes.append(
            {"id": route.id, "type": "route", "label": route.name, "queue": route.inbound_queue}
        )
        previous = route.id
        for step in route.adapters:
            node_id = f"{route.id}/{step.index}"
            nodes.append(
                {
                    "id": node_id,
                    "type": "adapter",
                    "label": step.type,
                    "route_id": route.id,
                    "adapter_index": step.index,
                    "stage_name": step.stage,
                }
            )
            edges.append({"from": previous, "to": node_id, "type": "chain", "queue": None})
            previous = node_id
    for edge in plan.edges:
        edges.append(
            {"from": edge.from_route, "to": edge.to_route, "type": "queue", "queue": edge.queue}
        )
    return {
        "execution_id": str(execution_id),
        "pipeline": plan.pipeline,
        "nodes": nodes,
        "edges": edges,
        "sources": [s.queue for s in plan.sources],
        "sinks": [s.queue for s in plan.sinks],
        "mermaid": render_mermaid(plan),
    }


@router.get("/{execution_id}/routes", responses=error_responses(404))
def execution_routes(
    execution_id: uuid.UUID, db: DbDep, service: ExecutionsDep, supervisor: SupervisorDep
) -> list[JsonDict]:
    """Per route: its queues, processor status, in-flight count and what its workers wait
    for during an outage (`waiting_for`: a broker or Postgres, since when)."""
    execution = repo.get_execution(db, execution_id)
    plan = service.plan_of(db, execution_id)
    by_route = {r.route_id: r for r in lineage_repo.route_stats(db, execution_id)}
    counts = _derived_stats(db, supervisor, execution).get("counts", {})
    paused = paused_routes(db)
    stopped = execution.is_terminal or execution.status == "interrupted"
    outages = [] if stopped else supervisor.waiting(execution_id)
    result = []
    for route in plan.routes:
        lineage = by_route.get(route.id)
        if stopped:
            processor = "stopped"
        elif route.id in paused:
            processor = "paused"
        else:
            processor = execution.status
        # an outage without queues (Postgres) holds every route; a broker's, the routes
        # that read or write the queues it names
        queues = {
            plan.queue_name(q, str(execution_id))
            for q in (route.inbound_queue, *(o.queue for o in route.outbound))
        }
        waiting_for = [
            {"what": w.what, "since": w.since_text, "status": w.describe()}
            for w in outages
            if not w.queues or queues.intersection(w.queues)
        ]
        result.append(
            {
                "route_id": route.id,
                "name": route.name,
                "queue": route.inbound_queue,
                # factflow: the name on the provider (scoped queues carry the execution id)
                "provider_queue": plan.queue_name(route.inbound_queue, str(execution_id)),
                "scope": "execution" if route.inbound_queue in plan.scoped_queues else "global",
                "outbound": [o.queue for o in route.outbound],
                "dead_letter_queue": route.dead_letter_queue,
                "processor_status": processor,
                # factflow writes no pending rows: in flight is the workers' count of
                # messages inside the route's adapter steps (0 once the run is over)
                "in_flight": (lineage.in_progress if lineage else 0)
                + (0 if processor == "stopped" else counts.get(f"route:{route.id}:in_flight", 0)),
                "completed": lineage.completed if lineage else 0,
                "failed": lineage.failed if lineage else 0,
                "messages_in": counts.get(f"route:{route.id}:in", 0),
                "messages_out": counts.get(f"route:{route.id}:out", 0),
                "dead_letters": counts.get(f"route:{route.id}:dead", 0),
                "waiting_for": waiting_for,
            }
        )
    return result


@router.get("/{execution_id}/lineage", responses=error_responses(404))
def execution_lineage(
    execution_id: uuid.UUID,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Offset = 0,
) -> list[LineageEntry]:
    """Lineage rows ordered by `started_at`; 404 when the execution is unknown."""
    repo.get_execution(db, execution_id)
    rows = lineage_repo.list_lineage(db, execution_id, limit=limit, offset=offset)
    return [LineageEntry.of(row) for row in rows]


@router.get("/{execution_id}/logs", responses=error_responses(404))
def execution_logs(
    execution_id: uuid.UUID,
    db: DbDep,
    supervisor: SupervisorDep,
    tail: Annotated[int, Query(ge=1, le=1_000_000, description="characters per log")] = 20_000,
) -> JsonDict:
    """The end of each worker process's log, `{"logs": {"process-0.log": text}}`
    (factflow addition). Logs are files in the run folder of the instance that started
    the execution; another instance answers an empty `logs`."""
    repo.get_execution(db, execution_id)  # 404 first
    return {
        "execution_id": str(execution_id),
        "logs": rundir.worker_logs(supervisor.run_dir(execution_id), tail),
    }

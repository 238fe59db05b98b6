"""Replay: a stage's stored messages into a new execution (`POST /replay`; the same for
one execution is `POST /executions/{id}/replay`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from factflow.api.auth import StarterDep, require
from factflow.api.compiling import pipeline_name
from factflow.api.deps import DbDep, ExecutionsDep, StorageDep
from factflow.api.errors import error_responses
from factflow.api.schemas.replay import DRY_RUN, CrossReplayBody, ReplayBody, ReplayResponse
from factflow.db.connection import DbConnection
from factflow.server.executions import ExecutionService
from factflow.server.replay import ReplayRequest
from factflow.server.supervisor import StartedBy
from factflow.storage.base import StageStorage

router = APIRouter(prefix="/replay", tags=["replay"], dependencies=[require("executions:run")])


def run_replay(
    service: ExecutionService,
    db: DbConnection,
    storage: StageStorage,
    response: Response,
    parent_id: uuid.UUID,
    body: ReplayBody,
    *,
    target_config_id: uuid.UUID | None = None,
    target_yaml: str | None = None,
    started_by: StartedBy | None = None,
) -> ReplayResponse:
    """The replay through the execution service: 201 when started, 200 for a dry run."""
    outcome = service.replay(
        db,
        storage,
        ReplayRequest(
            parent_id=parent_id,
            from_stage=body.from_stage,
            from_route=body.from_route,
            to_route=body.to_route,
            config=body.config,
            target_config_id=target_config_id,
            target_yaml=target_yaml,
            target_name=pipeline_name(target_yaml) if target_yaml else "inline",
            filter=body.filter.to_filter(),
            dry_run=body.dry_run,
            workers=body.workers,
            processes=body.processes,
            started_by=started_by,
        ),
    )
    response.status_code = status.HTTP_200_OK if body.dry_run else status.HTTP_201_CREATED
    return ReplayResponse.of(outcome)


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses={**DRY_RUN, **error_responses(404, 409)}
)
def replay(
    body: CrossReplayBody,
    db: DbDep,
    service: ExecutionsDep,
    storage: StorageDep,
    response: Response,
    starter: StarterDep,
) -> ReplayResponse:
    """Replay `from_stage` of `source_execution_id` into `to_route` of a stored config
    (`target_config_id`), inline YAML (`target_pipeline_yaml`), or the source's own
    pipeline. The source's route and stage are resolved in the source's config snapshot.
    400 for a stage, route or config that does not fit; 409 `STORED_MESSAGES_MISSING`
    naming what is gone; 200 with the counts for `dry_run`."""
    return run_replay(
        service,
        db,
        storage,
        response,
        body.source_execution_id,
        body,
        target_config_id=body.target_config_id,
        target_yaml=body.target_pipeline_yaml,
        started_by=starter,
    )

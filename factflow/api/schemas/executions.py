"""Request and response bodies of the executions API (and of `/configs/{id}/run`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from factflow.api.bodies import RequestBody
from factflow.db.repositories import executions as repo
from factflow.types import JsonDict


class RunRequest(RequestBody):
    """How to run: inline inputs and the worker layout (factflow additions)."""

    inputs: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="queue -> messages (an envelope {payload, metadata} or a bare payload)",
    )
    workers: int = Field(default=1, ge=1, le=64, description="Bytewax workers per process")
    processes: int = Field(default=1, ge=1, le=16, description="Bytewax processes (-i/-a)")
    trigger_context: JsonDict = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class ExecutionCreate(RunRequest):
    config_id: uuid.UUID | None = None
    pipeline_yaml: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> ExecutionCreate:
        if (self.config_id is None) == (self.pipeline_yaml is None):
            msg = "give exactly one of config_id and pipeline_yaml"
            raise ValueError(msg)
        return self


class ExecutionStarted(BaseModel):
    execution_id: uuid.UUID
    status: str
    pipeline_name: str
    config_id: uuid.UUID | None
    config_version: int | None
    started_at: datetime
    workers: list[JsonDict]
    created: bool = Field(description="false when idempotency_key named an existing execution")


IDEMPOTENT_START: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ExecutionStarted,
        "description": "the execution an earlier request with this idempotency_key started",
    }
}
"""The 200 beside a start's 201, for FastAPI `responses=`."""


class ExecutionResponse(BaseModel):
    id: uuid.UUID
    execution_id: uuid.UUID
    config_id: uuid.UUID | None
    config_version: int | None
    pipeline_name: str
    status: str
    source: str
    replay_source: JsonDict | None
    trigger_context: JsonDict
    idempotency_key: str | None
    workers: list[JsonDict]
    started_at: datetime
    completed_at: datetime | None
    heartbeat_at: datetime | None
    updated_at: datetime
    duration_seconds: float
    error: str | None
    stats: JsonDict
    config_snapshot: JsonDict | None = None
    started_by: str | None = Field(
        default=None, description="who started it (factflow addition); none for the system's"
    )


class CancelResponse(BaseModel):
    execution_id: uuid.UUID
    status: str
    message: str


def duration_seconds(execution: repo.Execution) -> float:
    end = execution.completed_at or datetime.now(UTC)
    return max(0.0, (end - execution.started_at).total_seconds())


def execution_response(
    execution: repo.Execution, *, snapshot: bool, stats: JsonDict | None = None
) -> ExecutionResponse:
    # built without validation: every field comes typed from the row (its dataclass), and
    # FastAPI takes a model instance as it is (validating it again cost more than the query)
    return ExecutionResponse.model_construct(
        id=execution.id,
        execution_id=execution.id,
        config_id=execution.config_id,
        config_version=execution.config_version,
        pipeline_name=execution.pipeline_name,
        status=execution.status,
        source=execution.source,
        replay_source=execution.replay_source,
        trigger_context=execution.trigger_context,
        idempotency_key=execution.idempotency_key,
        workers=execution.workers,
        started_at=execution.started_at,
        completed_at=execution.completed_at,
        heartbeat_at=execution.heartbeat_at,
        updated_at=execution.updated_at,
        duration_seconds=duration_seconds(execution),
        error=execution.error,
        stats=stats if stats is not None else execution.stats,
        config_snapshot=execution.config_snapshot if snapshot else None,
        started_by=execution.started_by,
    )


def execution_json(response: ExecutionResponse) -> bytes:
    """The body FastAPI would send for `response`, by the model's own serializer (made once
    with the class), for handlers that return the bytes and so skip FastAPI's response
    validation and its hop through the thread pool."""
    return ExecutionResponse.__pydantic_serializer__.to_json(response)


def started(execution: repo.Execution, created: bool) -> ExecutionStarted:
    return ExecutionStarted(
        execution_id=execution.id,
        status=execution.status,
        pipeline_name=execution.pipeline_name,
        config_id=execution.config_id,
        config_version=execution.config_version,
        started_at=execution.started_at,
        workers=execution.workers,
        created=created,
    )

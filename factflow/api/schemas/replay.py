"""Bodies of replay (`/executions/{id}/replay`, `/replay`) and dead letters (`/deadletters`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from factflow.api.bodies import RequestBody
from factflow.db.repositories.dead_letters import DeadLetter
from factflow.server.executions import ReplayOutcome
from factflow.server.replay import MessageFilter
from factflow.types import JsonDict

SegmentStr = Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]*$")


class ReplayFilter(RequestBody):
    """Selective replay: only some of the stage's stored messages (all given must hold)."""

    message_ids: list[str] = Field(default_factory=list, max_length=10_000)
    only_failed: bool = Field(
        default=False, description="only outputs whose next step failed or dead-lettered them"
    )
    url: str | None = Field(default=None, max_length=4000)
    document_id: str | None = Field(default=None, max_length=1000)
    since: datetime | None = Field(default=None, description="stored message timestamp >=")
    until: datetime | None = Field(default=None, description="stored message timestamp <=")

    def to_filter(self) -> MessageFilter:
        return MessageFilter(
            message_ids=frozenset(self.message_ids),
            only_failed=self.only_failed,
            url=self.url,
            document_id=self.document_id,
            since=self.since,
            until=self.until,
        )


class ReplayBody(RequestBody):
    """Replay one stage's stored outputs of the execution in the path."""

    from_stage: str = SegmentStr
    from_route: str | None = Field(default=None, description="the stage's route when ambiguous")
    to_route: str | None = Field(
        default=None, description="feed this route's first step instead of the next stage"
    )
    config: Literal["snapshot", "current"] = Field(
        default="snapshot",
        description="the parent's config snapshot, or its config's newest version",
    )
    filter: ReplayFilter = Field(default_factory=ReplayFilter)
    dry_run: bool = Field(default=False, description="count and check; start nothing")
    workers: int = Field(default=1, ge=1, le=64)
    processes: int = Field(default=1, ge=1, le=16)


class CrossReplayBody(ReplayBody):
    """`POST /replay`: a source execution's stage into a route of this or another pipeline."""

    source_execution_id: uuid.UUID
    target_config_id: uuid.UUID | None = Field(
        default=None, description="a stored config (its newest version) to replay into"
    )
    target_pipeline_yaml: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_target(self) -> CrossReplayBody:
        if self.target_config_id is not None and self.target_pipeline_yaml is not None:
            msg = "give at most one of target_config_id and target_pipeline_yaml"
            raise ValueError(msg)
        return self


class ReplayResponse(BaseModel):
    execution_id: uuid.UUID | None = Field(description="null for a dry run")
    status: str
    dry_run: bool
    messages: int = Field(description="stored messages replayed (or that would be)")
    source_route: str
    source_stage: str
    entry_route: str
    entry_queue: str
    after_stage: str | None = Field(description="the entry route runs the steps after this")
    routes: list[str]
    replay_source: JsonDict

    @classmethod
    def of(cls, outcome: ReplayOutcome) -> ReplayResponse:
        execution = outcome.execution
        return cls(
            execution_id=None if execution is None else execution.id,
            status="dry_run" if execution is None else execution.status,
            dry_run=execution is None,
            messages=outcome.messages,
            source_route=outcome.source_route,
            source_stage=outcome.source_stage,
            entry_route=outcome.entry_route,
            entry_queue=outcome.entry_queue,
            after_stage=outcome.after_stage,
            routes=outcome.routes,
            replay_source=outcome.replay_source,
        )


DRY_RUN: dict[int | str, dict[str, Any]] = {
    200: {"model": ReplayResponse, "description": "dry_run: what would be replayed; nothing starts"}
}
"""The 200 beside a replay's 201, for FastAPI `responses=`."""


class DeadLetterResponse(BaseModel):
    id: int
    execution_id: uuid.UUID
    route_id: str
    queue: str
    lineage_id: uuid.UUID | None
    message: JsonDict
    error_type: str | None
    error: str | None
    attempts: int
    reason: str
    created_at: datetime
    redriven_at: datetime | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterResponse:
        return cls(
            id=letter.id,
            execution_id=letter.execution_id,
            route_id=letter.route_id,
            queue=letter.queue,
            lineage_id=letter.lineage_id,
            message=letter.message,
            error_type=letter.error_type,
            error=letter.error,
            attempts=letter.attempts,
            reason=letter.reason,
            created_at=letter.created_at,
            redriven_at=letter.redriven_at,
        )


class RedriveBody(RequestBody):
    """Which dead letters (ids, or a filter) and where: back onto their route's queue, or
    into new executions."""

    ids: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    execution_id: uuid.UUID | None = None
    route_id: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=200)
    since: datetime | None = None
    until: datetime | None = None
    into: Literal["queue", "execution"] = Field(
        default="queue",
        description="queue: the route's inbound queue; execution: a new execution per "
        "source execution and entry step",
    )
    to_route: str | None = Field(
        default=None, description="with into=execution: feed this route's first step"
    )
    limit: int = Field(default=1000, ge=1, le=10_000)

    @model_validator(mode="after")
    def _selected(self) -> RedriveBody:
        if self.ids is None and self.execution_id is None:
            msg = "give ids or execution_id (with route_id, reason, since, until)"
            raise ValueError(msg)
        if self.to_route is not None and self.into != "execution":
            msg = "to_route needs into: execution"
            raise ValueError(msg)
        return self


class RedriveResponse(BaseModel):
    redriven: int
    dead_letter_ids: list[int]
    executions: list[uuid.UUID] = Field(description="new executions (into: execution)")


class QueueRedriveBody(RequestBody):
    """Redrive letters of a broker dead-letter queue (`/deadletters/queues/{route}/redrive`)."""

    execution_id: uuid.UUID
    limit: int = Field(default=1000, ge=1, le=100_000)

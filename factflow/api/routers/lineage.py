"""Lineage: rows with the seed system's filters, one row, its chain, children, failures, stats."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from factflow.api.auth import require
from factflow.api.deps import DbDep, Offset
from factflow.api.errors import error_responses
from factflow.db.lineage_writer import LineageRecord
from factflow.db.repositories import lineage as repo
from factflow.db.repositories.lineage_search import LineageFilters, lineage_counts, search_lineage
from factflow.types import JsonDict

router = APIRouter(prefix="/lineage", tags=["lineage"], dependencies=[require("lineage:read")])

LineageStatusFilter = Literal[
    "pending", "initiated", "processing", "completed", "failed", "filtered",
    "dead_lettered", "cancelled",
]  # fmt: skip


class LineageEntry(BaseModel):
    """The seed system's `LineageEntryResponse` plus factflow's fields (`message_id`,
    `parent_id`, `attempts`, `output_hash`, `storage_key`, `batch_id`, `status`)."""

    id: uuid.UUID
    correlation_id: str
    parent_correlation_id: str | None
    replay_batch_id: str | None
    execution_id: uuid.UUID
    route_id: str
    adapter_name: str
    adapter_index: int
    stage_name: str
    stage_status: str
    stage_input_hash: str | None
    started_at: datetime
    completed_at: datetime | None
    duration_ms: float | None
    metadata: JsonDict
    error_info: JsonDict | None
    message_id: str
    parent_id: uuid.UUID | None
    status: str
    attempts: int
    output_hash: str | None
    storage_key: str | None
    batch_id: str | None

    @classmethod
    def of(cls, row: LineageRecord) -> LineageEntry:
        return cls(
            id=row.id,
            correlation_id=str(row.id),
            parent_correlation_id=None if row.parent_id is None else str(row.parent_id),
            replay_batch_id=row.batch_id,
            execution_id=row.execution_id,
            route_id=row.route_id,
            adapter_name=row.adapter_name,
            adapter_index=row.adapter_index,
            stage_name=row.stage_name,
            stage_status=row.status,
            stage_input_hash=row.input_hash,
            started_at=row.started_at,
            completed_at=row.completed_at,
            duration_ms=row.duration_ms,
            metadata=row.metadata,
            error_info=None if row.error is None else {"message": row.error},
            message_id=row.message_id,
            parent_id=row.parent_id,
            status=row.status,
            attempts=row.attempts,
            output_hash=row.output_hash,
            storage_key=row.storage_key,
            batch_id=row.batch_id,
        )


class LineageChain(BaseModel):
    entry: LineageEntry
    ancestors: list[LineageEntry]
    descendants: list[LineageEntry]


def _entries(rows: list[LineageRecord]) -> list[LineageEntry]:
    return [LineageEntry.of(row) for row in rows]


@router.get("")
def list_lineage(
    db: DbDep,
    execution_id: uuid.UUID | None = None,
    route_id: str | None = None,
    adapter_name: str | None = None,
    message_id: str | None = None,
    status: LineageStatusFilter | None = None,
    is_root: bool | None = None,
    url: str | None = None,
    origin: str | None = None,
    title: str | None = None,
    document_id: str | None = None,
    batch_id: str | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    sort_by: Literal["started_at", "completed_at", "route_id", "stage_name"] = "started_at",
    sort_order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[LineageEntry]:
    """Lineage rows; `url`, `origin`, `title` match metadata case-insensitively in part;
    `message_id` (factflow) is an envelope's message id: the rows of its invocations."""
    filters = LineageFilters(
        execution_id=execution_id,
        route_id=route_id,
        adapter_name=adapter_name,
        message_id=message_id,
        # the seed system's `initiated` is factflow's `processing`
        status="processing" if status == "initiated" else status,
        is_root=is_root,
        url=url,
        origin=origin,
        title=title,
        document_id=document_id,
        batch_id=batch_id,
        started_after=started_after,
        started_before=started_before,
    )
    rows = search_lineage(
        db, filters, sort_by=sort_by, descending=sort_order == "desc", limit=limit, offset=offset
    )
    return _entries(rows)


@router.get("/failures")
def list_failures(
    db: DbDep,
    execution_id: uuid.UUID | None = None,
    route_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[LineageEntry]:
    """Failed and dead-lettered rows, oldest first, of one execution or all."""
    if execution_id is not None:
        return _entries(
            repo.failures(db, execution_id, route_id=route_id, limit=limit, offset=offset)
        )
    failed = search_lineage(
        db, LineageFilters(status="failed", route_id=route_id), limit=limit + offset
    )
    dead = search_lineage(
        db, LineageFilters(status="dead_lettered", route_id=route_id), limit=limit + offset
    )
    rows = sorted([*failed, *dead], key=lambda r: (r.started_at, str(r.id)))
    return _entries(rows[offset : offset + limit])


@router.get("/stats")
def lineage_stats(
    db: DbDep, execution_id: uuid.UUID | None = None, route_id: str | None = None
) -> JsonDict:
    """Counts by status and durations; per route and adapter when an execution is given."""
    totals = lineage_counts(db, LineageFilters(execution_id=execution_id, route_id=route_id))
    result: JsonDict = {
        "execution_id": None if execution_id is None else str(execution_id),
        "totals": asdict(totals),
    }
    if execution_id is not None:
        result["routes"] = [asdict(r) for r in repo.route_stats(db, execution_id)]
        result["adapters"] = [
            asdict(a) for a in repo.adapter_stats(db, execution_id, route_id=route_id)
        ]
    return result


@router.get("/batch/{batch_id}")
def lineage_batch(
    batch_id: str,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[LineageEntry]:
    """Rows sharing a `batch_id` (one batched adapter call)."""
    return _entries(
        search_lineage(db, LineageFilters(batch_id=batch_id), limit=limit, offset=offset)
    )


@router.get("/{entry_id}", responses=error_responses(404))
def get_entry(entry_id: str, db: DbDep) -> LineageEntry:
    """A row by its id, or by a message id seen on a queue (the envelope's `message_id`):
    then the first invocation that took that message."""
    return LineageEntry.of(repo.find_lineage_row(db, entry_id))


@router.get("/{entry_id}/chain", responses=error_responses(404))
def get_chain(entry_id: uuid.UUID, db: DbDep) -> LineageChain:
    """The row, its ancestors (nearest first) and its descendants (level by level)."""
    return LineageChain(
        entry=LineageEntry.of(repo.get_lineage_row(db, entry_id)),
        ancestors=_entries(repo.ancestors(db, entry_id)),
        descendants=_entries(repo.descendants(db, entry_id)),
    )


@router.get("/{entry_id}/children", responses=error_responses(404))
def get_children(entry_id: uuid.UUID, db: DbDep) -> list[LineageEntry]:
    repo.get_lineage_row(db, entry_id)
    return _entries(repo.children(db, entry_id))

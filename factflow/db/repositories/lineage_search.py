"""Lineage across executions, with the seed system's filters (`GET /api/v1/lineage`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import sql
from psycopg.rows import class_row

from factflow.db.connection import DbConnection
from factflow.db.lineage_writer import LineageRecord
from factflow.db.repositories.lineage import _COLUMNS, STATUS_COUNTS, StatusCounts

SortBy = Literal["started_at", "completed_at", "route_id", "stage_name"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageFilters:
    execution_id: uuid.UUID | None = None
    route_id: str | None = None
    adapter_name: str | None = None
    message_id: str | None = None
    status: str | None = None
    is_root: bool | None = None
    url: str | None = None
    origin: str | None = None
    title: str | None = None
    document_id: str | None = None
    batch_id: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


def _where(filters: LineageFilters) -> tuple[sql.Composable, dict[str, Any]]:
    clauses: list[sql.Composable] = []
    params: dict[str, Any] = {}
    exact = {
        "execution_id": filters.execution_id,
        "route_id": filters.route_id,
        "adapter_name": filters.adapter_name,
        "message_id": filters.message_id,
        "status": filters.status,
        "batch_id": filters.batch_id,
    }
    for column, value in exact.items():
        if value is not None:
            clauses.append(
                sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
            )
            params[column] = value
    if filters.is_root is not None:
        clauses.append(sql.SQL("parent_id IS NULL" if filters.is_root else "parent_id IS NOT NULL"))
    for field in ("url", "origin", "title"):
        value = getattr(filters, field)
        if value is not None:
            clauses.append(
                sql.SQL("metadata->>{} ILIKE {}").format(sql.Literal(field), sql.Placeholder(field))
            )
            params[field] = f"%{value}%"
    if filters.document_id is not None:
        clauses.append(sql.SQL("metadata->>'document_id' = %(document_id)s"))
        params["document_id"] = filters.document_id
    if filters.started_after is not None:
        clauses.append(sql.SQL("started_at >= %(started_after)s"))
        params["started_after"] = filters.started_after
    if filters.started_before is not None:
        clauses.append(sql.SQL("started_at < %(started_before)s"))
        params["started_before"] = filters.started_before
    where = sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("true")
    return where, params


def search_lineage(
    conn: DbConnection,
    filters: LineageFilters,
    *,
    sort_by: SortBy = "started_at",
    descending: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[LineageRecord]:
    where, params = _where(filters)
    query = sql.SQL(
        "SELECT {columns} FROM lineage WHERE {where} ORDER BY {sort} {direction} NULLS LAST, id"
        " LIMIT %(limit)s OFFSET %(offset)s"
    ).format(
        columns=sql.SQL(_COLUMNS),
        where=where,
        sort=sql.Identifier(sort_by),
        direction=sql.SQL("DESC" if descending else "ASC"),
    )
    with conn.cursor(row_factory=class_row(LineageRecord)) as cur:
        cur.execute(query, {**params, "limit": limit, "offset": offset})
        return cur.fetchall()


def lineage_counts(conn: DbConnection, filters: LineageFilters) -> StatusCounts:
    where, params = _where(filters)
    query = sql.SQL("SELECT {counts} FROM lineage WHERE {where}").format(
        counts=sql.SQL(STATUS_COUNTS), where=where
    )
    with conn.cursor(row_factory=class_row(StatusCounts)) as cur:
        cur.execute(query, params)
        row = cur.fetchone()
    assert row is not None
    return row

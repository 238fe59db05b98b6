"""LLM and embedding usage (factflow addition): tokens, cost and latency of every call,
grouped by provider, model, day, execution, thread, kind or purpose (the cost dashboard)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from factflow.api.auth import require
from factflow.api.deps import DbDep
from factflow.db.repositories.usage import UsageGroup, usage_groups

router = APIRouter(prefix="/usage", tags=["usage"], dependencies=[require("system:read")])

GroupBy = Literal["provider", "model", "day", "execution", "thread", "kind", "purpose"]


class UsageGroupOut(BaseModel):
    key: dict[str, str | None] = Field(description="the group's value of each group_by key")
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    unpriced_calls: int = Field(description="calls of models without a known price")
    latency_ms: float = Field(description="summed over the calls")


class UsageOut(BaseModel):
    group_by: list[str]
    groups: list[UsageGroupOut]
    total: UsageGroupOut


def _group(g: UsageGroup) -> UsageGroupOut:
    return UsageGroupOut(
        key=g.key,
        calls=g.calls,
        prompt_tokens=g.prompt_tokens,
        completion_tokens=g.completion_tokens,
        total_tokens=g.prompt_tokens + g.completion_tokens,
        cost_usd=g.cost_usd,
        unpriced_calls=g.unpriced_calls,
        latency_ms=g.latency_ms,
    )


def usage_out(keys: list[str], groups: list[UsageGroup], total: list[UsageGroup]) -> UsageOut:
    empty = UsageGroup({}, 0, 0, 0, 0.0, 0, 0.0)
    return UsageOut(
        group_by=keys,
        groups=[_group(g) for g in groups],
        total=_group(total[0] if total else empty),
    )


@router.get("", response_model=UsageOut, summary="Usage and cost")
def usage(
    conn: DbDep,
    group_by: Annotated[list[GroupBy] | None, Query(description="keys, repeatable")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    thread_id: uuid.UUID | None = None,
    execution_id: uuid.UUID | None = None,
) -> UsageOut:
    """Calls, tokens and cost summed per group (default: by provider and model), the most
    expensive first, with the total over the same rows."""
    keys = list(dict.fromkeys(group_by or ["provider", "model"]))

    def groups(by: list[str]) -> list[UsageGroup]:
        return usage_groups(
            conn, by, since=since, until=until, thread_id=thread_id, execution_id=execution_id
        )

    return usage_out(keys, groups(keys), groups([]))

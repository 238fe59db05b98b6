"""LLM and embedding usage: one row per call, and the sums the cost dashboard groups by."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from psycopg.rows import dict_row

from factflow.db.connection import DbConnection

GroupKey = Literal["provider", "model", "day", "execution", "thread", "kind", "purpose"]
GROUP_KEYS: tuple[str, ...] = get_args(GroupKey)
_GROUP_SQL = {
    "provider": "provider",
    "model": "model",
    "day": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "execution": "execution_id::text",
    "thread": "thread_id::text",
    "kind": "kind",
    "purpose": "purpose",
}


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One call's usage, as recorded."""

    kind: str
    purpose: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_ms: float
    thread_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    execution_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class UsageGroup:
    key: dict[str, str | None]
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    unpriced_calls: int
    """Calls of models litellm has no price for: their cost is not in `cost_usd`."""
    latency_ms: float


def record_usage(conn: DbConnection, records: list[UsageRecord]) -> None:
    if not records:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO llm_usage (kind, purpose, provider, model, prompt_tokens,"
            " completion_tokens, cost_usd, latency_ms, thread_id, message_id, execution_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    r.kind,
                    r.purpose,
                    r.provider,
                    r.model,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.cost_usd,
                    r.latency_ms,
                    r.thread_id,
                    r.message_id,
                    r.execution_id,
                )
                for r in records
            ],
        )


def usage_groups(
    conn: DbConnection,
    group_by: list[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    thread_id: uuid.UUID | None = None,
    execution_id: uuid.UUID | None = None,
) -> list[UsageGroup]:
    """Sums per distinct value of the `group_by` keys (all rows in one group when empty),
    the most expensive group first."""
    unknown = [g for g in group_by if g not in _GROUP_SQL]
    if unknown:
        msg = f"cannot group usage by {unknown}; by any of {', '.join(GROUP_KEYS)}"
        raise ValueError(msg)
    keys = list(dict.fromkeys(group_by))
    where = ["TRUE"]
    params: dict[str, Any] = {}
    for name, value, clause in (
        ("since", since, "created_at >= %(since)s"),
        ("until", until, "created_at < %(until)s"),
        ("thread_id", thread_id, "thread_id = %(thread_id)s"),
        ("execution_id", execution_id, "execution_id = %(execution_id)s"),
    ):
        if value is not None:
            where.append(clause)
            params[name] = value
    selected = "".join(f"{_GROUP_SQL[k]} AS g_{k}, " for k in keys)
    grouping = f" GROUP BY {', '.join(_GROUP_SQL[k] for k in keys)}" if keys else ""
    order = f" ORDER BY cost_usd DESC, calls DESC, {', '.join(f'g_{k}' for k in keys)}"
    query = (
        f"SELECT {selected}count(*)::int AS calls,"
        " coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,"
        " coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,"
        " coalesce(sum(cost_usd), 0)::float8 AS cost_usd,"
        " (count(*) - count(cost_usd))::int AS unpriced_calls,"
        " coalesce(sum(latency_ms), 0)::float8 AS latency_ms"
        f" FROM llm_usage WHERE {' AND '.join(where)}{grouping}"
        f"{order if keys else ''}"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
    return [
        UsageGroup(
            key={k: row[f"g_{k}"] for k in keys},
            calls=row["calls"],
            prompt_tokens=int(row["prompt_tokens"]),
            completion_tokens=int(row["completion_tokens"]),
            cost_usd=float(row["cost_usd"]),
            unpriced_calls=row["unpriced_calls"],
            latency_ms=float(row["latency_ms"]),
        )
        for row in rows
        if row["calls"] or keys
    ]

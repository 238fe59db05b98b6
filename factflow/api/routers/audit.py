"""The audit log (factflow addition): who did what, when and from where. Admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from factflow.api.auth import require
from factflow.api.deps import DbDep
from factflow.api.schemas.audit import AuditEntryResponse
from factflow.db.repositories.audit import AuditFilter, list_entries

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[require("admin")])

Text = Annotated[str | None, Query(max_length=500)]


@router.get("")
def list_audit(
    db: DbDep,
    actor: Text = None,
    actor_kind: Annotated[
        Literal["key", "session", "sso", "open", "anonymous"] | None, Query()
    ] = None,
    key_prefix: Text = None,
    action: Text = None,
    method: Annotated[Literal["POST", "PUT", "PATCH", "DELETE"] | None, Query()] = None,
    resource_type: Text = None,
    resource_id: Text = None,
    outcome: Annotated[Literal["success", "denied", "failed"] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryResponse]:
    """Every state-changing request (and every refused one), newest first: who (`actor`,
    `actor_kind`, `key_prefix`), what (`action`, `method`, `path`, `resource_type`,
    `resource_id`, `status_code`, `outcome`, `error_code`), when (`occurred_at`) and from
    where (`client_address`, `user_agent`). Filters combine; `since` is inclusive,
    `until` exclusive. Page on with `before_id` = the last entry's id."""
    where = AuditFilter(
        actor=actor,
        actor_kind=actor_kind,
        key_prefix=key_prefix,
        action=action,
        method=method,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    rows = list_entries(db, where, limit=limit, before_id=before_id)
    return [AuditEntryResponse.of(row) for row in rows]

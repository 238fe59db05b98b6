"""The audit log's entries as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from factflow.db.repositories.audit import AuditEntry


class AuditEntryResponse(BaseModel):
    id: int = Field(description="increasing; pass the last one as before_id for the next page")
    occurred_at: datetime
    actor: str = Field(description="the user's email, the SSO user, or anonymous")
    actor_kind: str = Field(description="key, session, sso, open or anonymous")
    key_prefix: str | None = Field(description="the key used, when one was")
    action: str = Field(description="the route: create_config, cancel_execution, login_user...")
    method: str
    path: str
    resource_type: str | None = Field(description="the domain: configs, executions, keys...")
    resource_id: str | None
    status_code: int
    outcome: str = Field(description="success, denied (401, 403, 429) or failed")
    error_code: str | None
    client_address: str | None
    user_agent: str | None
    correlation_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryResponse:
        return cls(
            id=entry.id,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            actor_kind=entry.actor_kind,
            key_prefix=entry.key_prefix,
            action=entry.action,
            method=entry.method,
            path=entry.path,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            status_code=entry.status_code,
            outcome=entry.outcome,
            error_code=entry.error_code,
            client_address=entry.client_address,
            user_agent=entry.user_agent,
            correlation_id=entry.correlation_id,
            details=entry.details,
        )

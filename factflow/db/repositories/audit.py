"""The audit log (`audit_log`): append-only rows of who did what, when and from where."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.types import JsonDict

_COLUMNS = (
    "id, occurred_at, actor, actor_kind, key_prefix, action, method, path, resource_type,"
    " resource_id, status_code, outcome, error_code, client_address, user_agent,"
    " correlation_id, details"
)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row to write (the id and time are the database's)."""

    actor: str
    actor_kind: str
    action: str
    method: str
    path: str
    status_code: int
    outcome: str
    key_prefix: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    error_code: str | None = None
    client_address: str | None = None
    user_agent: str | None = None
    correlation_id: str | None = None
    details: JsonDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: str
    actor_kind: str
    key_prefix: str | None
    action: str
    method: str
    path: str
    resource_type: str | None
    resource_id: str | None
    status_code: int
    outcome: str
    error_code: str | None
    client_address: str | None
    user_agent: str | None
    correlation_id: str | None
    details: JsonDict


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    """Case-insensitive, exact (an email, an SSO user, `anonymous`)."""
    actor_kind: str | None = None
    key_prefix: str | None = None
    action: str | None = None
    method: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def insert_entry(conn: DbConnection, record: AuditRecord) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, actor_kind, key_prefix, action, method, path,"
        " resource_type, resource_id, status_code, outcome, error_code, client_address,"
        " user_agent, correlation_id, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s)",
        (
            record.actor, record.actor_kind, record.key_prefix, record.action, record.method,
            record.path, record.resource_type, record.resource_id, record.status_code,
            record.outcome, record.error_code, record.client_address, record.user_agent,
            record.correlation_id, Jsonb(record.details),
        ),
    )  # fmt: skip


def list_entries(
    conn: DbConnection, where: AuditFilter, *, limit: int = 100, before_id: int | None = None
) -> list[AuditEntry]:
    """Entries matching `where`, newest first; `before_id` pages on (keyset: new entries
    arriving meanwhile never shift a page)."""
    params = {
        "actor": where.actor, "kind": where.actor_kind, "prefix": where.key_prefix,
        "action": where.action, "method": where.method, "rtype": where.resource_type,
        "rid": where.resource_id, "outcome": where.outcome, "since": where.since,
        "until": where.until, "before": before_id, "limit": limit,
    }  # fmt: skip
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE"
            " (%(actor)s::text IS NULL OR lower(actor) = lower(%(actor)s))"
            " AND (%(kind)s::text IS NULL OR actor_kind = %(kind)s)"
            " AND (%(prefix)s::text IS NULL OR key_prefix = %(prefix)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s)"
            " AND (%(method)s::text IS NULL OR method = upper(%(method)s))"
            " AND (%(rtype)s::text IS NULL OR resource_type = %(rtype)s)"
            " AND (%(rid)s::text IS NULL OR resource_id = %(rid)s)"
            " AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s)"
            " AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR occurred_at < %(until)s)"
            " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            params,
        )
        return cur.fetchall()

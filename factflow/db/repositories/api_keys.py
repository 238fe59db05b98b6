"""API keys (`api_keys`): hashed keys with their owner, scopes, expiry, use and revocation.

Every read joins the owner, so one query answers "who is this and what may they do".
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError

_SELECT = (
    "SELECT k.id, k.prefix, k.key_type, k.key_hash, k.name, k.owner_id,"
    " u.email AS owner_email, u.role AS owner_role, u.disabled AS owner_disabled,"
    " k.scopes, k.created_by, k.created_at, k.expires_at, k.last_used_at, k.revoked_at,"
    " k.rotated_from, k.rate_limit_per_minute, k.max_running_executions"
    " FROM api_keys k JOIN users u ON u.id = k.owner_id"
)
# last_used_at is a hint for people, not an audit record: writing it at most once a
# minute keeps an authenticated GET a single read
TOUCH_INTERVAL_SECONDS = 60


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: uuid.UUID
    prefix: str
    key_type: str
    key_hash: str
    name: str
    owner_id: uuid.UUID
    owner_email: str
    owner_role: str
    owner_disabled: bool
    scopes: list[str]
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    rotated_from: uuid.UUID | None
    rate_limit_per_minute: int | None = None
    max_running_executions: int | None = None


def insert_key(
    conn: DbConnection,
    *,
    prefix: str,
    key_type: str,
    key_hash: str,
    name: str,
    owner_id: uuid.UUID,
    scopes: Sequence[str],
    created_by: str | None,
    expires_at: datetime | None,
    rotated_from: uuid.UUID | None = None,
    rate_limit_per_minute: int | None = None,
    max_running_executions: int | None = None,
) -> ApiKey:
    key_id = uuid.uuid4()
    with conn.transaction():
        conn.execute(
            "INSERT INTO api_keys (id, prefix, key_type, key_hash, name, owner_id, scopes,"
            " created_by, expires_at, rotated_from, rate_limit_per_minute,"
            " max_running_executions)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                key_id, prefix, key_type, key_hash, name, owner_id, sorted(scopes),
                created_by, expires_at, rotated_from, rate_limit_per_minute,
                max_running_executions,
            ),
        )  # fmt: skip
        return get_key(conn, key_id)


def get_key(conn: DbConnection, key_id: uuid.UUID) -> ApiKey:
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        cur.execute(f"{_SELECT} WHERE k.id = %s", (key_id,))
        row = cur.fetchone()
    if row is None:
        msg = f"API key {key_id} does not exist"
        raise NotFoundError(msg)
    return row


def find_key_by_prefix(conn: DbConnection, prefix: str) -> ApiKey | None:
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        cur.execute(f"{_SELECT} WHERE k.prefix = %s", (prefix,))
        return cur.fetchone()


def list_keys(
    conn: DbConnection,
    *,
    owner_id: uuid.UUID | None = None,
    include_revoked: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[ApiKey]:
    """Keys, newest first; only `owner_id`'s when given; revoked ones on request."""
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        cur.execute(
            f"{_SELECT} WHERE (%(owner)s::uuid IS NULL OR k.owner_id = %(owner)s)"
            " AND (%(revoked)s OR k.revoked_at IS NULL)"
            " ORDER BY k.created_at DESC, k.id LIMIT %(limit)s OFFSET %(offset)s",
            {"owner": owner_id, "revoked": include_revoked, "limit": limit, "offset": offset},
        )
        return cur.fetchall()


def touch_key(conn: DbConnection, key: ApiKey, now: datetime) -> None:
    """Record a use, unless one was recorded in the last TOUCH_INTERVAL_SECONDS."""
    if key.last_used_at is not None and (now - key.last_used_at).total_seconds() < (
        TOUCH_INTERVAL_SECONDS
    ):
        return
    conn.execute("UPDATE api_keys SET last_used_at = %s WHERE id = %s", (now, key.id))


def revoke_key(conn: DbConnection, key_id: uuid.UUID) -> ApiKey:
    """Revoke now (a revoked key stays revoked: revoking again keeps the first time)."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s",
            (key_id,),
        )
        if cur.rowcount == 0:
            msg = f"API key {key_id} does not exist"
            raise NotFoundError(msg)
        return get_key(conn, key_id)


def expire_key_by(conn: DbConnection, key_id: uuid.UUID, at: datetime) -> None:
    """Make the key expire at `at` unless it already expires sooner (rotation's grace)."""
    conn.execute(
        "UPDATE api_keys SET expires_at = least(coalesce(expires_at, %s), %s) WHERE id = %s",
        (at, at, key_id),
    )

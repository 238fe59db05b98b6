"""Login sessions (`sessions`) and the failed-login counters (`login_failures`).

A session row holds only the HMAC of its cookie's token; every read joins the user, so
one query answers "whose session is this and what may they do".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from factflow.db.connection import DbConnection


@dataclass(frozen=True, slots=True)
class Session:
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


_SELECT = (
    "SELECT s.id, s.user_id, u.email, u.role, u.disabled, s.created_at, s.expires_at,"
    " s.revoked_at FROM sessions s JOIN users u ON u.id = s.user_id"
)


def create_session(
    conn: DbConnection,
    *,
    token_hash: str,
    user_id: uuid.UUID,
    expires_at: datetime,
    client_address: str | None,
    user_agent: str | None,
) -> Session:
    session_id = uuid.uuid4()
    with conn.transaction():
        conn.execute(
            "INSERT INTO sessions (id, token_hash, user_id, expires_at, client_address,"
            " user_agent) VALUES (%s, %s, %s, %s, %s, %s)",
            (session_id, token_hash, user_id, expires_at, client_address, user_agent),
        )
        with conn.cursor(row_factory=class_row(Session)) as cur:
            cur.execute(f"{_SELECT} WHERE s.id = %s", (session_id,))
            row = cur.fetchone()
    assert row is not None
    return row


def find_session(conn: DbConnection, token_hash: str) -> Session | None:
    with conn.cursor(row_factory=class_row(Session)) as cur:
        cur.execute(f"{_SELECT} WHERE s.token_hash = %s", (token_hash,))
        return cur.fetchone()


def revoke_session(conn: DbConnection, session_id: uuid.UUID) -> None:
    conn.execute(
        "UPDATE sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s",
        (session_id,),
    )


def revoke_user_sessions(conn: DbConnection, user_id: uuid.UUID) -> None:
    """End every session of a user (their password changed)."""
    conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL",
        (user_id,),
    )


def locked_until(conn: DbConnection, email: str, now: datetime) -> datetime | None:
    """When the lockout of `email` ends, if it is locked out at `now`."""
    row = conn.execute(
        "SELECT locked_until FROM login_failures WHERE email = lower(%s) AND locked_until > %s",
        (email, now),
    ).fetchone()
    return None if row is None else row[0]


def record_failure(
    conn: DbConnection, email: str, now: datetime, *, window_seconds: float, max_failures: int
) -> int:
    """Count a failed login of `email` (failures older than the window are forgotten);
    at `max_failures` the address is locked for `window_seconds`. The count after it."""
    row = conn.execute(
        "INSERT INTO login_failures AS f (email, failures, last_failure_at)"
        " VALUES (lower(%(email)s), 1, %(now)s)"
        " ON CONFLICT (email) DO UPDATE SET"
        "  failures = CASE WHEN f.last_failure_at < %(now)s - make_interval(secs => %(window)s)"
        "   THEN 1 ELSE f.failures + 1 END,"
        "  last_failure_at = %(now)s"
        " RETURNING failures",
        {"email": email, "now": now, "window": window_seconds},
    ).fetchone()
    assert row is not None
    failures = int(row[0])
    if failures >= max_failures:
        conn.execute(
            "UPDATE login_failures SET locked_until = %s + make_interval(secs => %s),"
            " failures = 0 WHERE email = lower(%s)",
            (now, window_seconds, email),
        )
    return failures


def clear_failures(conn: DbConnection, email: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE email = lower(%s)", (email,))

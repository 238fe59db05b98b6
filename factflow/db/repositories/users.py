"""People (`users`): an email, a role (admin, member, viewer), whether they are disabled,
and an optional argon2 password hash for login."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from factflow.db.connection import DbConnection
from factflow.db.exceptions import ConflictError, NotFoundError

_COLUMNS = "id, email, name, role, disabled, created_at, updated_at, password_hash, last_login_at"


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    email: str
    name: str | None
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = field(default=None, repr=False)
    last_login_at: datetime | None = None


def create_user(conn: DbConnection, *, email: str, role: str, name: str | None = None) -> User:
    """A new user; ConflictError when the email (case-insensitive) is taken."""
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
            cur.execute(
                f"INSERT INTO users (id, email, name, role) VALUES (%s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (uuid.uuid4(), email, name, role),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        msg = f"a user with email {email!r} already exists"
        raise ConflictError(msg) from exc
    assert row is not None
    return row


def upsert_user(conn: DbConnection, *, email: str, role: str) -> User:
    """The user with `email`, created or given `role` (the first admin's bootstrap)."""
    with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(
            f"INSERT INTO users (id, email, role) VALUES (%s, %s, %s)"
            f" ON CONFLICT (lower(email)) DO UPDATE SET role = EXCLUDED.role,"
            f" disabled = false, updated_at = now() RETURNING {_COLUMNS}",
            (uuid.uuid4(), email, role),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def get_user(conn: DbConnection, user_id: uuid.UUID) -> User:
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM users WHERE id = %s", (user_id,))
        row = cur.fetchone()
    if row is None:
        msg = f"user {user_id} does not exist"
        raise NotFoundError(msg)
    return row


def find_user_by_email(conn: DbConnection, email: str) -> User | None:
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower(%s)", (email,))
        return cur.fetchone()


def list_users(conn: DbConnection, *, limit: int = 100, offset: int = 0) -> list[User]:
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM users ORDER BY lower(email) LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return cur.fetchall()


def update_user(
    conn: DbConnection, user_id: uuid.UUID, *, role: str | None = None, disabled: bool | None = None
) -> User:
    """Change the role and/or the disabled flag; NotFoundError when the user is missing."""
    with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(
            f"UPDATE users SET role = coalesce(%s, role), disabled = coalesce(%s, disabled),"
            f" updated_at = now() WHERE id = %s RETURNING {_COLUMNS}",
            (role, disabled, user_id),
        )
        row = cur.fetchone()
    if row is None:
        msg = f"user {user_id} does not exist"
        raise NotFoundError(msg)
    return row


def set_password_hash(conn: DbConnection, user_id: uuid.UUID, password_hash: str) -> User:
    """Store a new password hash; NotFoundError when the user is missing."""
    with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(
            f"UPDATE users SET password_hash = %s, password_changed_at = now(),"
            f" updated_at = now() WHERE id = %s RETURNING {_COLUMNS}",
            (password_hash, user_id),
        )
        row = cur.fetchone()
    if row is None:
        msg = f"user {user_id} does not exist"
        raise NotFoundError(msg)
    return row


def record_login(conn: DbConnection, user_id: uuid.UUID, password_hash: str | None) -> None:
    """The login time, and a re-hashed password when the hasher's parameters changed."""
    conn.execute(
        "UPDATE users SET last_login_at = now(), password_hash = coalesce(%s, password_hash)"
        " WHERE id = %s",
        (password_hash, user_id),
    )

"""Password login, session tokens and their CSRF tokens; the SQL is in
db/repositories/sessions.py.

A login returns a random session token (the cookie's value; only its HMAC under the
server secret is stored, as for keys) that expires after the policy's TTL and ends at
logout. Cookies are sent by browsers on their own, so every unsafe request made with one
must also carry the session's CSRF token in a header: HMAC(secret, "csrf:" + token), which
a page of another origin cannot read or compute (the signed double-submit pattern).
Failed logins are counted per address; after `max_failures` in a row the address is locked
out for `lockout_seconds`, whatever the password, known user or not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from factflow.auth.exceptions import (
    AuthCode,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
)
from factflow.auth.keys import hash_key
from factflow.auth.passwords import hash_password, needs_rehash, verify_password
from factflow.auth.principal import Principal, PrincipalKind
from factflow.auth.scopes import ROLE_SCOPES, Role
from factflow.auth.settings import AuthSettings
from factflow.db.connection import DbConnection
from factflow.db.repositories import sessions as repo
from factflow.db.repositories import users as users_repo
from factflow.db.repositories.sessions import Session
from factflow.db.repositories.users import User

SESSION_COOKIE = "factflow_session"
CSRF_COOKIE = "factflow_csrf"
CSRF_HEADER = "X-CSRF-Token"
_TOKEN_PREFIX = "ffs_"


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str
    """The cookie's value: returned once, never stored."""
    csrf_token: str
    session: Session
    user: User


def csrf_token(secret: str, token: str) -> str:
    """The CSRF token of a session: derived, so nothing more is stored."""
    return hmac.new(secret.encode(), f"csrf:{token}".encode(), hashlib.sha256).hexdigest()


def check_csrf(secret: str, token: str, presented: str | None) -> None:
    """PermissionDeniedError unless `presented` is the session's CSRF token (constant time)."""
    if not presented:
        msg = f"a cookie session's unsafe request needs its CSRF token in {CSRF_HEADER}"
        raise PermissionDeniedError(AuthCode.CSRF_TOKEN_MISSING, msg)
    if not hmac.compare_digest(csrf_token(secret, token), presented):
        msg = f"{CSRF_HEADER} is not this session's CSRF token (log in again to get one)"
        raise PermissionDeniedError(AuthCode.CSRF_TOKEN_INVALID, msg)


def login(
    conn: DbConnection,
    settings: AuthSettings,
    email: str,
    password: str,
    *,
    client_address: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> IssuedSession:
    """A new session for `email`; AuthenticationError INVALID_CREDENTIALS for an unknown
    address, a wrong password or a user without one (the same answer for all three),
    RateLimitedError ACCOUNT_LOCKED while locked out, USER_DISABLED after the right
    password of a disabled user."""
    assert settings.secret is not None, "logins need the server secret"
    now = now or datetime.now(UTC)
    policy = settings.login
    until = repo.locked_until(conn, email, now)
    if until is not None:
        wait = (until - now).total_seconds()
        msg = (
            f"too many failed logins for {email}: locked until {until.isoformat()}"
            f" ({policy.max_failures} in a row lock it for {policy.lockout_seconds:.0f} s)"
        )
        raise RateLimitedError(
            AuthCode.ACCOUNT_LOCKED, msg, retry_after=wait, limit=policy.max_failures
        )
    user = users_repo.find_user_by_email(conn, email)
    stored = user.password_hash if user is not None else None
    if user is None or not verify_password(stored, password):
        repo.record_failure(
            conn,
            email,
            now,
            window_seconds=policy.lockout_seconds,
            max_failures=policy.max_failures,
        )
        raise AuthenticationError(AuthCode.INVALID_CREDENTIALS, "wrong email or password")
    repo.clear_failures(conn, email)
    if user.disabled:
        raise AuthenticationError(AuthCode.USER_DISABLED, f"user {user.email} is disabled")
    assert stored is not None
    users_repo.record_login(
        conn, user.id, hash_password(password) if needs_rehash(stored) else None
    )
    token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    session = repo.create_session(
        conn,
        token_hash=hash_key(settings.secret, token),
        user_id=user.id,
        expires_at=now + timedelta(seconds=policy.session_ttl_seconds),
        client_address=client_address,
        user_agent=(user_agent or "")[:300] or None,
    )
    return IssuedSession(token, csrf_token(settings.secret, token), session, user)


def authenticate_session(
    conn: DbConnection, settings: AuthSettings, token: str, *, now: datetime | None = None
) -> Principal:
    """The user a session cookie stands for; AuthenticationError SESSION_INVALID (unknown
    or logged out), SESSION_EXPIRED, USER_DISABLED."""
    assert settings.secret is not None
    session = None
    if token.startswith(_TOKEN_PREFIX):
        session = repo.find_session(conn, hash_key(settings.secret, token))
    if session is None or session.revoked_at is not None:
        msg = "the session is unknown or logged out: log in again"
        raise AuthenticationError(AuthCode.SESSION_INVALID, msg)
    if session.expires_at <= (now or datetime.now(UTC)):
        msg = f"the session expired at {session.expires_at.isoformat()}: log in again"
        raise AuthenticationError(AuthCode.SESSION_EXPIRED, msg)
    if session.disabled:
        raise AuthenticationError(AuthCode.USER_DISABLED, f"user {session.email} is disabled")
    role = Role(session.role)
    return Principal(
        PrincipalKind.SESSION,
        session.email,
        ROLE_SCOPES[role],
        role,
        user_id=session.user_id,
        session_id=session.id,
    )


def logout(conn: DbConnection, principal: Principal) -> bool:
    """End the principal's session; False when it has none (a key, SSO)."""
    if principal.session_id is None:
        return False
    repo.revoke_session(conn, principal.session_id)
    return True


def set_password(conn: DbConnection, user_id: uuid.UUID, password: str) -> User:
    """A new password (policy checked); the user's sessions end."""
    with conn.transaction():
        user = users_repo.set_password_hash(conn, user_id, hash_password(password))
        repo.revoke_user_sessions(conn, user_id)
    return user


def bootstrap_admin(conn: DbConnection, email: str, password: str) -> User:
    """The first admin, with database access (`factflow create-admin`): the user `email`
    is created (or made admin) and given the password."""
    hashed = hash_password(password)
    user = users_repo.upsert_user(conn, email=email, role=Role.ADMIN.value)
    return users_repo.set_password_hash(conn, user.id, hashed)

"""Per-key (or per-user) request rates, and login attempts per client address.

The counters live in Postgres (db/repositories/rate_limits.py), so several server replicas
enforce one limit between them. A limit of N per minute allows a burst of N, then one
request every 60/N seconds.
"""

from __future__ import annotations

from factflow.auth.exceptions import AuthCode, RateLimitedError
from factflow.auth.principal import Principal
from factflow.auth.settings import AuthSettings
from factflow.db.connection import DbConnection
from factflow.db.repositories import rate_limits as repo

WINDOW_SECONDS = 60.0


def _take(conn: DbConnection, subject: str, per_minute: int) -> float | None:
    return repo.take(conn, subject, interval=WINDOW_SECONDS / per_minute, tolerance=WINDOW_SECONDS)


def rate_of(settings: AuthSettings, principal: Principal) -> int | None:
    """The principal's requests per minute: its key's own limit, else the server's."""
    return principal.rate_limit_per_minute or settings.limits.rate_per_minute


def check_rate(conn: DbConnection, settings: AuthSettings, principal: Principal) -> None:
    """Count one request of `principal`; RateLimitedError (429) over its limit."""
    per_minute = rate_of(settings, principal)
    if per_minute is None:
        return
    wait = _take(conn, principal.subject, per_minute)
    if wait is not None:
        msg = (
            f"{principal.label} is over its rate limit of {per_minute} requests per minute:"
            f" retry in {wait:.1f} s"
        )
        raise RateLimitedError(AuthCode.RATE_LIMITED, msg, retry_after=wait, limit=per_minute)


def check_login_rate(conn: DbConnection, settings: AuthSettings, address: str | None) -> None:
    """Count one login attempt from `address`; RateLimitedError (429) over the limit."""
    per_minute = settings.login.rate_per_minute
    wait = _take(conn, f"login:{address or 'unknown'}", per_minute)
    if wait is not None:
        msg = (
            f"too many login attempts from {address}: at most {per_minute} a minute;"
            f" retry in {wait:.1f} s"
        )
        raise RateLimitedError(AuthCode.RATE_LIMITED, msg, retry_after=wait, limit=per_minute)

"""Connections and pools (psycopg 3, psycopg_pool), with one-line connection errors.

Every connection factflow hands out is in autocommit mode: a read never leaves a
transaction open, and each repository write opens its own `conn.transaction()` block (a
savepoint when the caller already holds a transaction).
"""

from __future__ import annotations

import select
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeAlias

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from factflow.db.exceptions import DatabaseUnavailableError
from factflow.db.settings import DatabaseSettings
from factflow.masking import mask_url

DbConnection: TypeAlias = psycopg.Connection[Any]
AsyncDbConnection: TypeAlias = psycopg.AsyncConnection[Any]

# libpq rejects connect_timeout below 2 seconds (it rounds it up anyway)
_MIN_CONNECT_TIMEOUT = 2


def connect_error(url: str, cause: BaseException | str) -> DatabaseUnavailableError:
    """The one-line error for a database that cannot be reached: masked URL, cause, remedy."""
    reason = _first_line(str(cause)) or type(cause).__name__
    msg = (
        f"cannot connect to Postgres at {mask_url(url)}: {reason}; check that the server "
        "runs and FACTFLOW_DATABASE_URL is right, or start one with `factflow db embedded`"
    )
    return DatabaseUnavailableError(msg)


def _first_line(text: str) -> str:
    # libpq's messages are multi-line ("...failed: refused\n\tIs the server running...");
    # the first line holds the cause, the rest is the hint we replace with our own
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("connection failed: ")
    return ""


def _timeout(seconds: float) -> int:
    return max(_MIN_CONNECT_TIMEOUT, round(seconds))


def connect(url: str, *, timeout: float = 5.0, **kwargs: Any) -> DbConnection:
    """A new autocommit connection, or DatabaseUnavailableError with a one-line message."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=_timeout(timeout), **kwargs)
    except psycopg.OperationalError as exc:
        raise connect_error(url, exc) from exc


async def connect_async(url: str, *, timeout: float = 5.0, **kwargs: Any) -> AsyncDbConnection:
    """The asyncio twin of `connect`."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=_timeout(timeout), **kwargs
        )
    except psycopg.OperationalError as exc:
        raise connect_error(url, exc) from exc


def atomic(conn: DbConnection) -> AbstractContextManager[Any]:
    """A transaction for statements that must commit together, or nothing when the caller
    holds one already: a savepoint there costs two round trips (SAVEPOINT, RELEASE) and
    buys nothing unless the caller goes on after an error, which these callers do not."""
    if conn.info.transaction_status == TransactionStatus.IDLE:
        return conn.transaction()
    return nullcontext()


def check_pooled(conn: DbConnection) -> None:
    """The pool's check on checkout, without a round trip for a connection that is idle
    and whose socket has nothing to read: a server that ended the session (a restart,
    `pg_terminate_backend`) sent its FATAL notice and closed the socket, which makes it
    readable. Anything else gets psycopg's round-trip check (ConnectionPool.check_connection,
    one query per checkout: a third of a short request's queries)."""
    if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        if not readable:
            return
    ConnectionPool.check_connection(conn)


def create_pool(settings: DatabaseSettings, *, name: str = "factflow") -> ConnectionPool[Any]:
    """An open pool of autocommit connections; fails at once if the database is unreachable.

    The caller closes it (`pool.close()` or `with create_pool(...) as pool:`).
    """
    url = settings.require_url()
    # a probe connection gives libpq's reason; the pool's own timeout would only say "timeout"
    connect(url, timeout=settings.connect_timeout_seconds).close()
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        kwargs={"autocommit": True},
        check=check_pooled,
        name=name,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=settings.connect_timeout_seconds * 2)
    except PoolTimeout as exc:
        pool.close()
        raise connect_error(url, exc) from exc
    return pool


async def create_async_pool(
    settings: DatabaseSettings, *, name: str = "factflow-async"
) -> AsyncConnectionPool[Any]:
    """The asyncio twin of `create_pool`, for the HTTP server."""
    url = settings.require_url()
    await (await connect_async(url, timeout=settings.connect_timeout_seconds)).close()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
        name=name,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=settings.connect_timeout_seconds * 2)
    except PoolTimeout as exc:
        await pool.close()
        raise connect_error(url, exc) from exc
    return pool

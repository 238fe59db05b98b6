"""Connections and pools: real ones work, unreachable ones give one masked line."""

from __future__ import annotations

import asyncio

import pytest

from factflow.db import (
    DatabaseSettings,
    DatabaseUnavailableError,
    connect,
    create_async_pool,
    create_pool,
    mask_url,
)
from factflow.db.connection import connect_async
from factflow.db.exceptions import DatabaseNotConfiguredError
from factflow.settings import Settings

pytestmark = pytest.mark.integration

UNREACHABLE = [
    "postgresql://factflow:s3cret-pw@127.0.0.1:1/factflow",
    "postgresql://factflow:s3cret-pw@/factflow?host=/nonexistent/socket/dir",
    "host=127.0.0.1 port=1 user=factflow password=s3cret-pw dbname=factflow",
]


def _assert_one_masked_line(message: str) -> None:
    assert "\n" not in message
    assert "s3cret-pw" not in message
    assert "***" in message
    assert "factflow db embedded" in message


@pytest.mark.parametrize("url", UNREACHABLE)
def test_unreachable_database_gives_one_masked_line(url: str) -> None:
    with pytest.raises(DatabaseUnavailableError) as caught:
        connect(url, timeout=2)
    message = str(caught.value)
    _assert_one_masked_line(message)
    assert message.startswith(f"cannot connect to Postgres at {mask_url(url)}: ")


def test_unreachable_pool_and_async_connection_fail_the_same_way() -> None:
    settings = DatabaseSettings(database_url=UNREACHABLE[0], connect_timeout_seconds=2)
    with pytest.raises(DatabaseUnavailableError) as caught:
        create_pool(settings)
    _assert_one_masked_line(str(caught.value))
    assert "127.0.0.1" in str(caught.value)
    with pytest.raises(DatabaseUnavailableError) as caught_async:
        asyncio.run(connect_async(UNREACHABLE[0], timeout=2))
    _assert_one_masked_line(str(caught_async.value))


def test_a_missing_url_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACTFLOW_DATABASE_URL", raising=False)
    with pytest.raises(DatabaseNotConfiguredError, match="FACTFLOW_DATABASE_URL"):
        DatabaseSettings.of(Settings()).require_url()
    monkeypatch.setenv("FACTFLOW_DATABASE_URL", "postgresql://x@h/db")
    assert DatabaseSettings.of(Settings()).require_url() == "postgresql://x@h/db"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql://u@h/db?password=pw&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("host=h password='p w' user=u", "host=h password=*** user=u"),
        (
            "postgresql://postgres:@/postgres?host=/tmp/pg",
            "postgresql://postgres@/postgres?host=/tmp/pg",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_pools_hand_out_autocommit_connections(db_url: str) -> None:
    settings = DatabaseSettings(database_url=db_url, pool_min_size=1, pool_max_size=2)
    with create_pool(settings) as pool, pool.connection() as conn:
        assert conn.autocommit
        assert conn.execute("SELECT 1").fetchone() == (1,)

    async def use_async_pool() -> tuple[bool, object]:
        pool = await create_async_pool(settings)
        try:
            async with pool.connection() as aconn:
                cur = await aconn.execute("SELECT count(*) FROM executions")
                return aconn.autocommit, await cur.fetchone()
        finally:
            await pool.close()

    autocommit, row = asyncio.run(use_async_pool())
    assert autocommit
    assert row is not None

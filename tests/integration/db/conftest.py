"""Database fixtures: a migrated database for the session, a connection per test,
fresh empty databases for migration tests, and an execution row to hang rows on."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from factflow.db import DbConnection, connect, migrate
from factflow.db.repositories.executions import Execution, create_execution


def _database_url(server_url: str, name: str) -> str:
    return make_conninfo(server_url, dbname=name)


@pytest.fixture(scope="session")
def fresh_database(pg_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the test server (dropped at the end); returns their URLs."""
    created: list[str] = []

    def make() -> str:
        name = f"factflow_test_{uuid.uuid4().hex[:12]}"
        with connect(pg_url) as conn:
            try:
                conn.execute(f"CREATE DATABASE {name}")
            except psycopg.errors.InsufficientPrivilege:
                pytest.skip("the test database user may not CREATE DATABASE")
        created.append(name)
        return _database_url(pg_url, name)

    yield make
    with connect(pg_url) as conn:
        for name in created:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def db_url(fresh_database: Callable[[], str]) -> str:
    """A database with factflow's schema, shared by the session's tests."""
    url = fresh_database()
    with connect(url) as conn:
        migrate(conn)
    return url


@pytest.fixture
def conn(db_url: str) -> Iterator[DbConnection]:
    with connect(db_url) as connection:
        yield connection


@pytest.fixture
def execution(conn: DbConnection) -> Execution:
    return create_execution(
        conn, pipeline_name="test-pipeline", config_snapshot={"routes": {"r": {}}}
    )

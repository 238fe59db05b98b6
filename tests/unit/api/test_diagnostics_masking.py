"""`GET /system/diagnostics` shows the database URL with its password masked, in each
form libpq takes one (in the URL, as a query parameter, in a key=value DSN), through the
real app and route. The database itself is a stand-in here (the route reads two counts
and the schema version from it); tests/integration/api/test_api_system.py runs the same
check against a real Postgres, with every other endpoint too."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from factflow.api import ApiSettings, create_app
from factflow.api.routers import system

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's httpx warning at import
    from fastapi.testclient import TestClient

PASSWORD = "pw-Xq7-never-shown"
FORMS = {
    "url": f"postgresql://factflow:{PASSWORD}@db.internal:5432/factflow",
    "query": f"postgresql://factflow@db.internal/factflow?password={PASSWORD}&sslmode=require",
    "dsn": f"host=db.internal user=factflow password={PASSWORD} dbname=factflow",
}


class _Pool:
    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[object]:
        yield object()


class _Supervisor:
    def local_executions(self) -> list[str]:
        return []


class _Registry:
    def names(self) -> list[str]:
        return ["split"]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_diagnostics_masks_the_database_password(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(system, "count_executions", lambda _conn, status: 0)
    monkeypatch.setattr(system, "current_version", lambda _conn: 12)
    app = create_app(ApiSettings(environment="development", database_url=FORMS[form]))
    # not started (no lifespan): the state the server's start would set, as stand-ins
    app.state.pool = _Pool()
    app.state.supervisor = _Supervisor()
    app.state.registry = _Registry()
    response = TestClient(app).get("/api/v1/system/diagnostics")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert PASSWORD not in response.text
    assert "***" in body["database_url"]
    assert "db.internal" in body["database_url"]  # masked, not dropped
    assert body["schema_version"] == 12

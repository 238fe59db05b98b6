"""System endpoints, the error body, correlation ids, metrics, adapters and templates."""

from __future__ import annotations

import os
import socket
from urllib.parse import quote, urlencode, urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from starlette.testclient import TestClient

from factflow.api import ApiSettings
from tests.integration.api.conftest import MakeApp

pytestmark = pytest.mark.integration


def test_health_readiness_version(api: TestClient) -> None:
    health = api.get("/api/v1/system/health", params={"debug": True})
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert body["database"] == "ok"
    assert body["checks"]["database"]["schema_version"] >= 5
    assert api.get("/api/v1/system/readiness").json()["ready"] is True
    assert api.get("/api/v1/system/version").json()["api"] == "v1"
    diagnostics = api.get("/api/v1/system/diagnostics").json()
    assert "split" in diagnostics["adapters"]


def _with_password(url: str, form: str) -> tuple[str, str]:
    """The test database's URL written in `form`, with a password, and that password: the
    real one when the URL has one, else an invented one (the embedded server trusts local
    connections, so it ignores the password but the URL still carries it)."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    password = params.pop("password", None) or "pw-Xq7-never-shown"
    user = params.pop("user", "postgres")
    dbname = params.pop("dbname")
    if form == "dsn":
        return make_conninfo("", user=user, password=password, dbname=dbname, **params), password
    userinfo = quote(user, safe="")
    if form == "url":
        userinfo += ":" + quote(password, safe="")
    else:  # the password as a query parameter, as libpq also accepts
        params["password"] = password
    query = urlencode(params, safe="/")
    return f"postgresql://{userinfo}@/{dbname}?{query}", password


@pytest.mark.parametrize("form", ["url", "query", "dsn"])
def test_no_endpoint_shows_the_database_password(
    make_app: MakeApp, api_db_url: str, form: str
) -> None:
    url, password = _with_password(api_db_url, form)
    api = make_app(database_url=url)
    diagnostics = api.get("/api/v1/system/diagnostics")
    assert diagnostics.status_code == 200
    shown = diagnostics.json()["database_url"]
    assert "***" in shown
    assert conninfo_to_dict(url)["dbname"] in shown  # masked, not dropped
    for path in ("/api/v1/system/health?debug=true", "/api/v1/system/readiness", "/metrics"):
        assert password not in api.get(path).text, path
    assert password not in diagnostics.text


def test_error_body_and_correlation_id(api: TestClient) -> None:
    response = api.get(
        "/api/v1/executions/00000000-0000-0000-0000-000000000000",
        headers={"X-Correlation-ID": "abc-123"},
    )
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"detail", "error_code", "correlation_id", "timestamp"}
    assert body["error_code"] == "NOT_FOUND"
    assert body["correlation_id"] == "abc-123"
    assert response.headers["x-correlation-id"] == "abc-123"


def test_request_validation_keeps_fastapi_detail(api: TestClient) -> None:
    response = api.post("/api/v1/executions", json={"workers": 0})
    assert response.status_code == 422
    body = response.json()
    assert body["error_code"] == "REQUEST_VALIDATION_ERROR"
    assert isinstance(body["detail"], list) and body["detail"][0]["loc"]
    assert body["correlation_id"] and body["timestamp"]
    assert api.post("/api/v1/configs", content=b"{not json").status_code == 422


def test_metrics(api: TestClient) -> None:
    api.get("/api/v1/system/version")
    text = api.get("/metrics").text
    assert "factflow_http_requests_total" in text
    assert "factflow_executions_running" in text
    assert api.get("/api/v1/system/metrics").status_code == 200


def test_mq_diagnostic(api: TestClient) -> None:
    body = api.post("/api/v1/system/mq-diagnostic").json()
    by_provider = {p["provider"]: p for p in body["providers"]}
    assert by_provider["postgres"]["status"] == "ok"
    assert by_provider["file"]["status"] == "ok"
    assert body["status"] == "ok"


def test_mq_diagnostic_round_trips_the_broker_a_stored_pipeline_names(api: TestClient) -> None:
    url = os.environ.get("FACTFLOW_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    host, port = urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 5672
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        reason = f"RabbitMQ not reachable at {host}:{port} ({exc}): `scripts/services.sh start`"
        print(reason)
        pytest.skip(reason)
    pipeline = (
        f'version: "1.0"\nqueue: {{provider: rabbitmq, url: "{url}"}}\n'
        "routes:\n  clean:\n    inbound: {queue: diag.in}\n    outbound: diag.out\n"
    )
    created = api.post("/api/v1/configs", json={"name": "diag-rabbit", "config_yaml": pipeline})
    assert created.status_code == 201, created.text
    body = api.post("/api/v1/system/mq-diagnostic").json()
    by_provider = {p["provider"]: p for p in body["providers"]}
    assert by_provider["rabbitmq"]["status"] == "ok", by_provider["rabbitmq"]
    assert "guest:guest" not in str(by_provider["rabbitmq"])  # the URL is shown masked
    assert by_provider["kafka"]["status"] == "not_checked"  # no stored pipeline names it


def test_adapters_with_schemas(api: TestClient) -> None:
    adapters = api.get("/api/v1/adapters").json()
    split = next(a for a in adapters if a["name"] == "split")
    assert split["config_schema"]["type"] == "object"
    assert api.get("/api/v1/adapters/split").json()["name"] == "split"
    assert api.get("/api/v1/adapters/nope").status_code == 404


def test_templates_are_the_shipped_pipelines(api: TestClient) -> None:
    templates = {t["name"]: t for t in api.get("/api/v1/templates").json()}
    assert templates["text"]["is_runnable"] is True
    assert "docs.in" in templates["text"]["source_queues"]
    detail = api.get("/api/v1/templates/text").json()
    assert "routes:" in detail["config_yaml"]
    assert api.get("/api/v1/templates/nope").status_code == 404


def test_openapi_lists_every_domain(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    tags = {tag for op in spec["paths"].values() for o in op.values() for tag in o["tags"]}
    assert tags >= {
        "system", "configs", "executions", "pipelines", "lineage", "storage", "content",
        "adapters", "templates",
    }  # fmt: skip


def test_production_refuses_unsafe_defaults() -> None:
    with pytest.raises(ValueError, match="FACTFLOW_DATABASE_URL"):
        ApiSettings(environment="production", database_url=None, auth_secret="s" * 32)

"""Error bodies from real requests validate against what the OpenAPI document says of
their status: `ErrorResponse`, or `ValidationErrorResponse` for a 422 (the schemathesis
run checks the same for generated requests; these make each family happen for sure)."""

from __future__ import annotations

import uuid
from typing import Any

import jsonschema
import pytest

from factflow.api.errors import ErrorResponse, ValidationErrorResponse
from factflow.db.connection import connect
from factflow.db.repositories import executions as executions_repo
from tests.integration.api.conftest import TEXT_YAML, MakeApp

pytestmark = pytest.mark.integration


def _documented(api: Any, method: str, path: str, status: int, body: dict[str, Any]) -> str:
    """Validate `body` against the schema the document gives `status` of the operation;
    the schema's name."""
    spec = api.get("/openapi.json").json()
    response = spec["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": spec["components"]})
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def test_a_404_is_an_error_response(api: Any) -> None:
    response = api.get(f"/api/v1/executions/{uuid.uuid4()}")
    assert response.status_code == 404
    body = response.json()
    path = "/api/v1/executions/{execution_id}"
    assert _documented(api, "get", path, 404, body) == "ErrorResponse"
    error = ErrorResponse.model_validate(body)
    assert error.error_code == "NOT_FOUND"
    assert error.correlation_id == response.headers["X-Correlation-ID"]


def test_a_422_is_a_validation_error_response(api: Any) -> None:
    response = api.get("/api/v1/executions", params={"limit": 0})
    assert response.status_code == 422
    body = response.json()
    assert _documented(api, "get", "/api/v1/executions", 422, body) == "ValidationErrorResponse"
    error = ValidationErrorResponse.model_validate(body)
    assert error.error_code == "REQUEST_VALIDATION_ERROR"
    assert error.detail[0].loc == ["query", "limit"]


def test_a_400_config_invalid_carries_its_report(api: Any) -> None:
    response = api.post("/api/v1/configs", json={"name": "broken", "config_yaml": "routes: [1"})
    assert response.status_code == 400
    body = response.json()
    assert _documented(api, "post", "/api/v1/configs", 400, body) == "ErrorResponse"
    error = ErrorResponse.model_validate(body)
    assert error.error_code == "CONFIG_INVALID"
    assert error.validation_report is not None and not error.validation_report.is_valid


def test_deleting_a_running_execution_is_a_409(api: Any, api_db_url: str) -> None:
    # was a 500 DATABASE_ERROR: the repository refused with the base DatabaseError
    with connect(api_db_url) as conn:
        execution = executions_repo.create_execution(
            conn, pipeline_name="running", config_snapshot={"config_yaml": TEXT_YAML}
        )
    assert execution.status == "running"
    response = api.delete(f"/api/v1/executions/{execution.id}")
    assert response.status_code == 409, response.text
    body = response.json()
    assert _documented(api, "delete", "/api/v1/executions/{execution_id}", 409, body)
    assert ErrorResponse.model_validate(body).error_code == "CONFLICT"
    assert api.get(f"/api/v1/executions/{execution.id}").status_code == 200


def test_a_401_is_an_error_response(api: Any, make_app: MakeApp) -> None:
    response = make_app(auth=False).get("/api/v1/executions")
    assert response.status_code == 401
    body = response.json()
    assert _documented(api, "get", "/api/v1/executions", 401, body) == "ErrorResponse"
    assert ErrorResponse.model_validate(body).error_code == "AUTHENTICATION_REQUIRED"

"""The OpenAPI document names every status a route can answer, each error with the
error body (`document_errors` and `secure_routes`); built from an app never started."""

from __future__ import annotations

from factflow.api import ApiSettings, create_app

SPEC = create_app(ApiSettings(environment="test", auth_secret="s" * 40)).openapi()
PROBES = {"/api/v1/system/health", "/api/v1/system/readiness"}  # 503: their own body
PUBLIC = {*PROBES, "/api/v1/auth/login"}


def test_every_error_status_has_the_error_body() -> None:
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            documented = operation["responses"]
            assert {"400", "500", "503"} <= set(documented), (method, path)
            if path not in PUBLIC:
                assert {"401", "403", "429"} <= set(documented), (method, path)
            for status, response in documented.items():
                if int(status) < 400 or (path in PROBES and status == "503"):
                    continue
                ref = response["content"]["application/json"]["schema"]["$ref"]
                model = "ValidationErrorResponse" if status == "422" else "ErrorResponse"
                assert ref == f"#/components/schemas/{model}", (method, path, status)
    assert "401" not in SPEC["paths"]["/api/v1/system/health"]["get"]["responses"]


def test_fastapi_422_model_is_replaced() -> None:
    # FastAPI's HTTPValidationError lacks error_code, correlation_id and timestamp
    schemas = SPEC["components"]["schemas"]
    assert {"HTTPValidationError", "ValidationError"}.isdisjoint(schemas)
    error = schemas["ValidationErrorResponse"]
    assert set(error["required"]) == {"detail", "error_code", "correlation_id", "timestamp"}


def test_optional_error_fields_are_absent_not_null() -> None:
    properties = SPEC["components"]["schemas"]["ErrorResponse"]["properties"]
    for name in ("validation_report", "missing", "kept", "retry_after_seconds", "limit"):
        assert "null" not in str(properties[name]) and "default" not in properties[name], name


def test_streams_are_documented_as_event_streams() -> None:
    for path in ("/api/v1/executions/{execution_id}/events", "/api/v1/chat"):
        responses = next(iter(SPEC["paths"][path].values()))["responses"]
        assert "text/event-stream" in responses["200"]["content"], path
        # an error comes before the stream starts: JSON, even on the SSE routes
        assert list(responses["400"]["content"]) == ["application/json"], path

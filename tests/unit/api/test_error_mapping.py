"""Every error family's status and `error_code` through the API's real handlers.

Most codes are also produced by real requests in tests/integration/api; the ones here
have no request that can reach them on a healthy test server (a database error other
than the known ones, a supervisor that cannot fork, an object store that answers with
an error, an unexpected exception, a status without a name), so each is raised from a
route of a bare app carrying `install_error_handlers`, as the server's routes raise them.
"""

from __future__ import annotations

import warnings
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from factflow.api.errors import (
    _MAPPING,
    CORRELATION_HEADER,
    CorrelationIdMiddleware,
    ErrorResponse,
    install_error_handlers,
)
from factflow.db.exceptions import (
    ConflictError,
    DatabaseError,
    DatabaseNotConfiguredError,
    DatabaseUnavailableError,
    IllegalTransitionError,
    NotFoundError,
)
from factflow.server.exceptions import (
    ExecutionStateError,
    KeyExecutionLimitError,
    ReplayError,
    RetentionError,
    SupervisorError,
    TooManyConcurrentExecutionsError,
    UnknownInputQueueError,
)
from factflow.storage.exceptions import (
    InvalidKeyError,
    ObjectNotFoundError,
    StorageError,
    StorageUnavailableError,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's httpx warning at import
    from fastapi.testclient import TestClient

# the contract, written out: (exception, status, error code)
EXPECTED: list[tuple[Exception, int, str]] = [
    (KeyExecutionLimitError("the key runs 2 of 2"), 429, "KEY_EXECUTION_LIMIT"),
    (TooManyConcurrentExecutionsError("50 running"), 429, "TOO_MANY_CONCURRENT_EXECUTIONS"),
    (UnknownInputQueueError("no route reads x"), 400, "UNKNOWN_INPUT_QUEUE"),
    (ExecutionStateError("it is running"), 409, "EXECUTION_STATE"),
    (ReplayError("nothing to replay"), 400, "REPLAY_INVALID"),
    (RetentionError("keep must be positive"), 400, "RETENTION_INVALID"),
    (SupervisorError("cannot fork a worker"), 500, "SUPERVISOR_ERROR"),
    (NotFoundError("execution 7"), 404, "NOT_FOUND"),
    (IllegalTransitionError("completed -> running"), 409, "ILLEGAL_TRANSITION"),
    (ConflictError("name taken"), 409, "CONFLICT"),
    (DatabaseNotConfiguredError("no FACTFLOW_DATABASE_URL"), 503, "DATABASE_NOT_CONFIGURED"),
    (DatabaseUnavailableError("connection refused"), 503, "DATABASE_UNAVAILABLE"),
    (DatabaseError("disk full"), 500, "DATABASE_ERROR"),
    (ObjectNotFoundError("a/b.json"), 404, "OBJECT_NOT_FOUND"),
    (InvalidKeyError("../x"), 400, "INVALID_KEY"),
    (StorageUnavailableError("S3 is down"), 503, "STORAGE_UNAVAILABLE"),
    (StorageError("S3 said 500"), 500, "STORAGE_ERROR"),
    (RuntimeError("a bug"), 500, "INTERNAL_ERROR"),
    (HTTPException(599), 599, "HTTP_ERROR"),
    (HTTPException(418), 418, "IM_A_TEAPOT"),
]


def _client(exc: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(CorrelationIdMiddleware)

    @app.get("/raise")
    def raises() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


def test_every_mapped_exception_is_in_the_expected_table() -> None:
    assert {cls for cls, _, _ in _MAPPING} - {type(e) for e, _, _ in EXPECTED} == {
        psycopg.DataError  # needs a server's diagnostics: tests/integration/api
    }


@pytest.mark.parametrize(("exc", "status", "code"), EXPECTED, ids=[code for _, _, code in EXPECTED])
def test_status_and_code(exc: Exception, status: int, code: str) -> None:
    response = _client(exc).get("/raise")
    body: dict[str, Any] = response.json()
    assert (response.status_code, body["error_code"]) == (status, code)
    assert set(body) == {"detail", "error_code", "correlation_id", "timestamp"}
    ErrorResponse.model_validate(body)  # what the OpenAPI document says of an error
    assert response.headers[CORRELATION_HEADER] == body["correlation_id"]
    if status == 429:
        assert response.headers["Retry-After"] == "5"
    if code == "INTERNAL_ERROR":
        assert body["detail"] == "internal server error"  # nothing of the bug leaks out
    elif not isinstance(exc, HTTPException):
        assert body["detail"] == str(exc)


def test_a_method_the_route_does_not_take_is_method_not_allowed() -> None:
    response = _client(RuntimeError()).post("/raise")
    assert (response.status_code, response.json()["error_code"]) == (405, "METHOD_NOT_ALLOWED")


def test_an_unexpected_error_answers_with_the_request_correlation_id() -> None:
    # a 500 is answered outside the middleware that holds the id: it must still be the
    # request's, in the header and the body alike
    response = _client(RuntimeError("a bug")).get("/raise", headers={CORRELATION_HEADER: "c-42"})
    assert response.status_code == 500
    assert response.headers[CORRELATION_HEADER] == "c-42"
    assert response.json()["correlation_id"] == "c-42"

"""The seed system's error body, one handler per error family, and correlation ids.

Every error response is `{"detail", "error_code", "correlation_id", "timestamp"}` (the
seed system's `ErrorResponse`); request validation keeps FastAPI's `detail[]` list and
adds the same three fields (`ValidationErrorResponse`); an invalid pipeline adds the
compiler's `validation_report`. `error_responses(...)` documents a route's error statuses
with these models; `document_errors(app)` gives every route the ones any route can answer.
"""

from __future__ import annotations

import contextvars
import logging
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from factflow.api.schemas.validation import ValidationReport
from factflow.auth.exceptions import (
    AuthenticationError,
    AuthError,
    KeyPolicyError,
    PasswordPolicyError,
    PermissionDeniedError,
    RateLimitedError,
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
    InvalidPipelineError,
    KeyExecutionLimitError,
    MissingStoredMessagesError,
    ReplayError,
    RetentionError,
    StorageInUseError,
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
from factflow.types import JsonDict

CORRELATION_HEADER = "X-Correlation-ID"
_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "factflow_correlation_id", default=None
)
_log = logging.getLogger(__name__)
_SCOPE_KEY = "factflow.correlation_id"


def correlation_id() -> str:
    """The current request's correlation id (a new one outside a request)."""
    return _correlation.get() or uuid.uuid4().hex


def _only_with(description: str) -> Any:
    """An optional field of the error body that is absent rather than null: the schema
    shows neither null nor its `default`."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(default=None, description=description, json_schema_extra=drop_default)


class ErrorResponse(BaseModel):
    """The body of every error response but a request validation error's (422)."""

    # the handlers add fields of their own (see the optional ones below); clients must
    # not fail on one they do not know
    model_config = ConfigDict(extra="allow")

    detail: str = Field(description="what went wrong, for a person")
    error_code: str = Field(description="stable, for programs: NOT_FOUND, CONFIG_INVALID, ...")
    correlation_id: str = Field(description="also the X-Correlation-ID response header")
    timestamp: datetime
    # present only with the error codes named: absent, never null, otherwise
    validation_report: ValidationReport | SkipJsonSchema[None] = _only_with(
        "CONFIG_INVALID: the compiler's report"
    )
    missing: list[str] | SkipJsonSchema[None] = _only_with(
        "STORED_MESSAGES_MISSING: the stored keys that are missing"
    )
    kept: list[dict[str, str]] | SkipJsonSchema[None] = _only_with(
        "STORAGE_IN_USE: what is kept, and why"
    )
    retry_after_seconds: int | SkipJsonSchema[None] = _only_with(
        "RATE_LIMITED: also the Retry-After header"
    )
    limit: int | SkipJsonSchema[None] = _only_with(
        "RATE_LIMITED: requests a minute the principal may make"
    )


class ValidationErrorItem(BaseModel):
    """One problem with the request, as pydantic reports it."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description="where: body, query, path or header, then the field")
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | SkipJsonSchema[None] = _only_with("the limits the value broke")


class ValidationErrorResponse(BaseModel):
    """A 422's body: FastAPI's `detail` list, and the fields every error body has."""

    detail: list[ValidationErrorItem]
    error_code: str = Field(description="REQUEST_VALIDATION_ERROR")
    correlation_id: str
    timestamp: datetime


# what each status means here, and the error codes it carries (docs/api.md lists them all)
_STATUS_DOCS: dict[int, str] = {
    400: "a request the server will not act on: CONFIG_INVALID (with validation_report),"
    " INVALID_VALUE (a value Postgres cannot take), BAD_REQUEST and the domain's own codes",
    401: "no credentials, or credentials that are not valid (WWW-Authenticate names Bearer)",
    403: "valid credentials without the scope the route needs",
    404: "NOT_FOUND: the resource named in the path does not exist",
    409: "the resource is in a state that forbids this, or the request conflicts with another",
    422: "REQUEST_VALIDATION_ERROR: the parameters or body do not match this schema",
    429: "RATE_LIMITED or an execution cap; Retry-After says when to try again",
    500: "INTERNAL_ERROR and the other server-side failures; the correlation id finds the log",
    503: "DATABASE_UNAVAILABLE, STORAGE_UNAVAILABLE or a service the route needs is down",
}
AUTH_STATUSES = (401, 403, 429)
"""What a route that needs credentials can answer besides its own statuses."""
APP_STATUSES = (400, 500, 503)
"""What any API route can answer: a value Postgres refuses, a bug, an outage."""


def error_responses(
    *statuses: int, notes: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` documenting `statuses` with the error body; `notes` replace
    a status's generic description with what it means on the route.

    The body is given as JSON content, not as a `model`: FastAPI would file a model under
    the route's own media type, `text/event-stream` on the SSE routes.
    """
    notes = notes or {}
    return {status: _openapi_error(status, notes.get(status)) for status in statuses}


def _openapi_error(status: int, note: str | None = None) -> dict[str, Any]:
    # `document_errors` puts the schemas this refers to into the document
    model = ValidationErrorResponse if status == 422 else ErrorResponse
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    description = note or _STATUS_DOCS.get(status) or HTTPStatus(status).phrase
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _is_fastapi_422(response: dict[str, Any] | None) -> bool:
    content = (response or {}).get("content", {}).get("application/json", {})
    return str(content.get("schema", {}).get("$ref", "")).endswith("/HTTPValidationError")


def document_errors(app: FastAPI) -> None:
    """Make `app`'s OpenAPI document say what its error handlers answer: every operation
    gets `APP_STATUSES` (unless it documents the status itself), and FastAPI's 422
    (`HTTPValidationError`, which lacks the error code, id and time) becomes
    `ValidationErrorResponse`. Call before `secure_routes`, which adds `AUTH_STATUSES`."""
    build: Callable[[], dict[str, Any]] = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = build()
        if done:
            return schema
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorResponse, ValidationErrorResponse):
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, nested in found.pop("$defs", {}).items():
                schemas.setdefault(name, nested)  # FastAPI's own, when a route returns it
            schemas[model.__name__] = found
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if _is_fastapi_422(responses.get("422")):
                    responses["422"] = _openapi_error(422)
                for status in APP_STATUSES:
                    responses.setdefault(str(status), _openapi_error(status))
        # FastAPI's own 422 models: nothing refers to them any more
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        done = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class ApiError(Exception):
    """An HTTP error with the seed system's body; `extra` fields are added to the body,
    `headers` to the response (`WWW-Authenticate` on a 401)."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        error_code: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.error_code = error_code
        self.headers = headers or {}
        self.extra = extra


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} does not exist", "NOT_FOUND")


def invalid_config(report: JsonDict, detail: str = "the pipeline config is invalid") -> ApiError:
    errors = report.get("error_count", 0)
    first = next((i for i in report.get("issues", []) if i.get("severity") == "error"), None)
    if first is not None:
        detail = f"{detail} ({errors} error(s)); first: {first['code']} at {first['path']}: "
        detail += str(first["message"])
    return ApiError(400, detail, "CONFIG_INVALID", validation_report=report)


def error_body(detail: Any, error_code: str, **extra: Any) -> JsonDict:
    return {
        "detail": detail,
        "error_code": error_code,
        "correlation_id": correlation_id(),
        "timestamp": datetime.now(UTC).isoformat(),
        **extra,
    }


def json_safe(value: Any) -> Any:
    """`value` (after jsonable_encoder) with what JSON cannot carry made printable.

    A request body may hold `1e400` (inf) or a lone surrogate (`"\\udcff"`); validation
    errors echo the input, and encoding it would turn a 422 into a 500.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _response(
    status: int, detail: Any, code: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    headers = {**(headers or {}), CORRELATION_HEADER: correlation_id()}
    if status == 429:
        headers.setdefault("Retry-After", "5")
    body = json_safe(jsonable_encoder(error_body(detail, code, **extra)))
    return JSONResponse(body, status_code=status, headers=headers)


def _code_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).name
    except ValueError:
        return "HTTP_ERROR"


# (exception class, status, error code), most specific first
_MAPPING: tuple[tuple[type[Exception], int, str], ...] = (
    (KeyExecutionLimitError, 429, "KEY_EXECUTION_LIMIT"),
    (TooManyConcurrentExecutionsError, 429, "TOO_MANY_CONCURRENT_EXECUTIONS"),
    (UnknownInputQueueError, 400, "UNKNOWN_INPUT_QUEUE"),
    (ExecutionStateError, 409, "EXECUTION_STATE"),
    (ReplayError, 400, "REPLAY_INVALID"),
    (RetentionError, 400, "RETENTION_INVALID"),
    (SupervisorError, 500, "SUPERVISOR_ERROR"),
    (NotFoundError, 404, "NOT_FOUND"),
    (IllegalTransitionError, 409, "ILLEGAL_TRANSITION"),
    (ConflictError, 409, "CONFLICT"),
    (DatabaseNotConfiguredError, 503, "DATABASE_NOT_CONFIGURED"),
    (DatabaseUnavailableError, 503, "DATABASE_UNAVAILABLE"),
    (DatabaseError, 500, "DATABASE_ERROR"),
    (ObjectNotFoundError, 404, "OBJECT_NOT_FOUND"),
    (InvalidKeyError, 400, "INVALID_KEY"),
    (StorageUnavailableError, 503, "STORAGE_UNAVAILABLE"),
    (StorageError, 500, "STORAGE_ERROR"),
    # a value Postgres cannot take (a NUL byte in a string, a number out of range): the
    # request's fault; the API validates what it can before it gets here
    (psycopg.DataError, 400, "INVALID_VALUE"),
)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _response(
            exc.status_code, exc.detail, exc.error_code, headers=exc.headers, **exc.extra
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _response(exc.status_code, exc.detail, _code_for_status(exc.status_code))

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _response(422, exc.errors(), "REQUEST_VALIDATION_ERROR")

    async def invalid_pipeline(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidPipelineError)
        error = invalid_config(exc.report.to_dict())
        return _response(error.status_code, error.detail, error.error_code, **error.extra)

    async def missing_stored(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MissingStoredMessagesError)
        return _response(409, str(exc), "STORED_MESSAGES_MISSING", missing=exc.missing)

    async def storage_in_use(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StorageInUseError)
        return _response(409, str(exc), "STORAGE_IN_USE", kept=exc.kept)

    async def auth_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        if isinstance(exc, RateLimitedError):
            wait = max(1, math.ceil(exc.retry_after))  # Retry-After takes whole seconds
            return _response(
                429,
                exc.detail,
                exc.code,
                headers={"Retry-After": str(wait)},
                retry_after_seconds=wait,
                limit=exc.limit,
            )
        if isinstance(exc, AuthenticationError):
            # RFC 9110: a 401 names the scheme to use
            headers = {"WWW-Authenticate": 'Bearer realm="factflow"'}
            return _response(401, exc.detail, exc.code, headers=headers)
        status = 403 if isinstance(exc, PermissionDeniedError) else 400
        return _response(status, exc.detail, exc.code)

    async def mapped(_: Request, exc: Exception) -> JSONResponse:
        for cls, status, code in _MAPPING:
            if isinstance(exc, cls):
                detail = str(exc)
                if status >= 500:
                    _log.error("%s: %s", code, exc)
                elif isinstance(exc, psycopg.DataError):
                    _log.warning("%s: %s", code, exc)
                    primary = exc.diag.message_primary or detail.partition("\n")[0]
                    detail = f"a value the database cannot take: {primary}"
                return _response(status, detail, code)
        return await unexpected(_, exc)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error", exc_info=exc)
        # Starlette answers an unhandled exception outside every middleware, after
        # CorrelationIdMiddleware reset the request's id: take it back from the scope, or
        # the body and header would carry two new ids and the log line neither
        token = _correlation.set(request.scope.get(_SCOPE_KEY) or correlation_id())
        try:
            return _response(500, "internal server error", "INTERNAL_ERROR")
        finally:
            _correlation.reset(token)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(InvalidPipelineError, invalid_pipeline)
    app.add_exception_handler(MissingStoredMessagesError, missing_stored)
    app.add_exception_handler(StorageInUseError, storage_in_use)
    for auth_cls in (
        AuthenticationError, PermissionDeniedError, KeyPolicyError, PasswordPolicyError,
        RateLimitedError,
    ):  # fmt: skip
        app.add_exception_handler(auth_cls, auth_error)
    for cls, _, _ in _MAPPING:
        app.add_exception_handler(cls, mapped)
    app.add_exception_handler(Exception, unexpected)


class CorrelationIdMiddleware:
    """Takes `X-Correlation-ID` from the request (or makes one) and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(CORRELATION_HEADER.lower().encode())
        value = given.decode("latin-1")[:128] if given else uuid.uuid4().hex
        token = _correlation.set(value)
        scope[_SCOPE_KEY] = value

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != CORRELATION_HEADER.lower().encode()
                ]
                headers.append((CORRELATION_HEADER.lower().encode(), value.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            _correlation.reset(token)

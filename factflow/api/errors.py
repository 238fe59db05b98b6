"""The seed system's error body, one handler per error family, and correlation ids.

Every error response is `{"detail", "error_code", "correlation_id", "timestamp"}` (the
seed system's `ErrorResponse`); request validation keeps FastAPI's `detail[]` list and
adds the same three fields; an invalid pipeline adds the compiler's `validation_report`.
"""

from __future__ import annotations

import contextvars
import logging
import math
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

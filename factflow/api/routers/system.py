"""System: health, readiness, version, diagnostics, Prometheus metrics, mq-diagnostic."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

import factflow
from factflow.api.auth import PUBLIC, require
from factflow.api.deps import RegistryDep, SettingsDep, SupervisorDep, get_pool
from factflow.auth.settings import AuthMode, AuthSettings
from factflow.db.migrate import current_version
from factflow.db.repositories.executions import STATUSES, count_executions
from factflow.masking import mask_url
from factflow.server.diagnostics import run_diagnostic
from factflow.types import JsonDict

router = APIRouter(
    prefix="/system",
    tags=["system"],
    dependencies=[
        require(
            "system:read", routes={"health": PUBLIC, "readiness": PUBLIC, "mq_diagnostic": "admin"}
        )
    ],
)


class HealthResponse(BaseModel):
    status: str
    version: str
    database: str
    instance_id: str
    timestamp: datetime
    auth: str = Field(description="keys, keys+sso, or open (development: no checks at all)")
    checks: dict[str, Any] = {}


class ReadinessResponse(BaseModel):
    ready: bool
    database: dict[str, Any] = Field(description="status, and schema_version or error")
    supervisor: Literal["running", "down"]


def _database_check(request: Request) -> tuple[bool, JsonDict]:
    try:
        with get_pool(request).connection(timeout=5) as conn:
            return True, {"status": "ok", "schema_version": current_version(conn)}
    except Exception as exc:
        return False, {"status": "unavailable", "error": str(exc)}


def _auth_mode(request: Request) -> str:
    auth: AuthSettings = request.app.state.auth
    if auth.mode is AuthMode.OPEN:
        return "open"
    return "keys+sso" if auth.sso is not None else "keys"


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "unhealthy: no database"}},
)
async def health(request: Request, settings: SettingsDep, debug: bool = False) -> JSONResponse:
    """Liveness plus the database check; 503 when the database cannot be reached."""
    ok, database = await to_thread.run_sync(_database_check, request)
    body = HealthResponse(
        status="healthy" if ok else "unhealthy",
        version=factflow.__version__,
        database=database["status"],
        instance_id=settings.instance_id,
        timestamp=datetime.now(UTC),
        auth=_auth_mode(request),
        checks={"database": database} if debug or not ok else {},
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get(
    "/readiness",
    response_model=ReadinessResponse,
    responses={503: {"model": ReadinessResponse, "description": "not ready yet"}},
)
async def readiness(request: Request) -> JSONResponse:
    """200 once the database answers and the supervisor runs, else 503."""
    ok, database = await to_thread.run_sync(_database_check, request)
    started = getattr(request.app.state, "supervisor", None) is not None
    ready = ok and started
    return JSONResponse(
        {"ready": ready, "database": database, "supervisor": "running" if started else "down"},
        status_code=200 if ready else 503,
    )


@router.get("/version")
def version() -> JsonDict:
    import bytewax

    return {
        "version": factflow.__version__,
        "bytewax": getattr(bytewax, "__version__", "0.21.1"),
        "python": platform.python_version(),
        "api": "v1",
    }


@router.get("/diagnostics")
def diagnostics(
    request: Request, settings: SettingsDep, supervisor: SupervisorDep, registry: RegistryDep
) -> JsonDict:
    """Settings (secrets masked), executions by status, this instance's workers."""
    with get_pool(request).connection() as conn:
        counts = {status: count_executions(conn, status=status) for status in STATUSES}
        schema = current_version(conn)
    return {
        "instance_id": settings.instance_id,
        "environment": settings.environment,
        "auth": _auth_mode(request),
        "auth_trusted_proxies": [str(n) for n in settings.auth_trusted_proxies],
        "database_url": mask_url(settings.database_url or ""),
        "schema_version": schema,
        "storage_uri": settings.storage_uri,
        "data_dir": str(settings.data_dir.resolve()),
        "max_concurrent_executions": settings.max_concurrent_executions,
        "default_queue_provider": settings.default_queue_provider,
        "executions_by_status": counts,
        "local_executions": [str(e) for e in supervisor.local_executions()],
        "adapters": registry.names(),
    }


@router.post("/mq-diagnostic")
def mq_diagnostic(request: Request, settings: SettingsDep) -> JsonDict:
    """A publish/subscribe round trip on each queue provider the server can reach."""
    return run_diagnostic(get_pool(request), settings.data_dir)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format (also served at /metrics)."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )

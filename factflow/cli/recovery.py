"""`factflow recovery list|restore` and `factflow deadletters list|redrive`: the Postgres
side of an execution's recovery, from the command line."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from factflow.cli.common import OUTPUT_METAVAR, OutputFormat, emit_json
from factflow.db.connection import connect
from factflow.db.exceptions import DatabaseError
from factflow.db.settings import DatabaseSettings
from factflow.settings import Settings

recovery_app = typer.Typer(help="Recovery snapshots archived in Postgres.")
deadletters_app = typer.Typer(help="Dead letters kept in Postgres (broker-less providers).")


def _url() -> str:
    try:
        return DatabaseSettings.of(Settings()).require_url()
    except DatabaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _execution(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        msg = f"not an execution id (a UUID): {value!r}"
        raise typer.BadParameter(msg) from None


@recovery_app.command("list")
def list_command(
    execution_id: Annotated[
        str, typer.Argument(metavar="EXECUTION_ID", help="The execution (UUID).")
    ],
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", metavar=OUTPUT_METAVAR, help="text or json.")
    ] = OutputFormat.text,
) -> None:
    """The archived recovery partitions of an execution, newest first."""
    from factflow.db.repositories.recovery import list_archives

    with connect(_url()) as conn:
        archives = list_archives(conn, _execution(execution_id))
    if output is OutputFormat.json:
        emit_json([asdict(a) for a in archives])
        return
    if not archives:
        typer.echo(f"no recovery archives for execution {execution_id}")
    for a in archives:
        typer.echo(
            f"partition {a.partition_index}/{a.partition_count}  {a.taken_at:%Y-%m-%d %H:%M:%S}"
            f"  {a.size_bytes} bytes  bytewax {a.bytewax_version}"
        )


@recovery_app.command("restore")
def restore_command(
    execution_id: Annotated[
        str, typer.Argument(metavar="EXECUTION_ID", help="The execution (UUID).")
    ],
    pipeline: Annotated[
        Path, typer.Option(metavar="FILE", help="The execution's pipeline (format check).")
    ],
    directory: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Where to restore (default: the recovery dir)."),
    ] = None,
) -> None:
    """Write the newest consistent archived set into the local recovery directory."""
    from factflow.db.recovery_files import restore_directory
    from factflow.db.repositories.recovery import step_fingerprint
    from factflow.flow import load_plan

    execution = _execution(execution_id)
    target = directory or Settings().recovery_dir / str(execution)
    steps = step_fingerprint(load_plan(pipeline).step_ids)
    try:
        with connect(_url()) as conn:
            restored = restore_directory(conn, execution, target, step_fingerprint=steps)
    except DatabaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not restored:
        typer.echo(f"no recovery archives for execution {execution_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"restored {restored} partition(s) into {target}")


@deadletters_app.command("list")
def deadletters_list(
    execution_id: Annotated[
        str, typer.Argument(metavar="EXECUTION_ID", help="The execution (UUID).")
    ],
    route: Annotated[str | None, typer.Option(metavar="ROUTE_ID", help="Only this route.")] = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most N dead letters.")] = 100,
) -> None:
    """Dead letters of an execution as JSON (oldest first)."""
    from factflow.db.repositories.dead_letters import list_dead_letters

    with connect(_url()) as conn:
        letters = list_dead_letters(
            conn, execution_id=_execution(execution_id), route_id=route, limit=limit
        )
    emit_json([asdict(letter) for letter in letters])


@deadletters_app.command("redrive")
def deadletters_redrive(
    execution_id: Annotated[
        str, typer.Argument(metavar="EXECUTION_ID", help="The execution (UUID).")
    ],
    pipeline: Annotated[
        Path, typer.Option(metavar="FILE", help="The pipeline whose queues to publish on.")
    ],
    route: Annotated[
        str | None, typer.Option(metavar="ROUTE_ID", help="Only this route's dead letters.")
    ] = None,
) -> None:
    """Put dead letters back on their route's inbound queue; the new attempt's lineage
    links to the failed one. A letter is marked redriven only once its publish is
    confirmed; on a failed publish the command exits 1 and the letter can be redriven later."""
    from factflow.dataflows.exceptions import RedriveError
    from factflow.dataflows.redrive import redrive

    try:
        count = redrive(_url(), _execution(execution_id), pipeline, route)
    except RedriveError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"redrove {count} dead letter(s)")

"""`factflow event send` and `factflow schedule list|create|delete`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from factflow.cli.client.http import ConfigArg, OutputOption, call, emit, fail

event_app = typer.Typer(
    help="Events that start configs with matching triggers.", no_args_is_help=True
)
schedule_app = typer.Typer(help="Cron schedules that run configs.", no_args_is_help=True)

SCHEDULE_COLUMNS = ("schedule_id", "config_id", "cron", "timezone", "next_run_at", "last_run_at")


@event_app.command("send")
def send(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The event's name.")],
    data: Annotated[
        str, typer.Option("--data", metavar="JSON", help="The event's data, a JSON object.")
    ] = "{}",
    event_id: Annotated[
        str | None,
        typer.Option("--id", metavar="ID", help="Idempotency: an id sent before starts nothing."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Send an event; prints which configs it started (execution ids) or why not."""
    try:
        parsed: Any = json.loads(data)
    except json.JSONDecodeError as exc:
        fail(f"--data is not JSON: {exc}", 2)
    if not isinstance(parsed, dict):
        fail("--data must be a JSON object", 2)
    emit(call("POST", "/events", json={"name": name, "data": parsed, "id": event_id}), output)


@schedule_app.command("list")
def list_schedules(output: OutputOption = None) -> None:
    """Every schedule with its next run."""
    emit(call("GET", "/schedules"), output, SCHEDULE_COLUMNS)


@schedule_app.command("create")
def create(
    config_id: ConfigArg,
    cron: Annotated[str, typer.Option("--cron", metavar="EXPR", help="e.g. '0 3 * * *'.")],
    timezone: Annotated[str, typer.Option(metavar="ZONE", help="IANA time zone.")] = "UTC",
    missed: Annotated[
        str, typer.Option(metavar="POLICY", help="Ticks missed during downtime: skip|run_once.")
    ] = "skip",
    output: OutputOption = None,
) -> None:
    """Run a config on a cron schedule; prints the next run times."""
    body = {"config_id": config_id, "cron": cron, "timezone": timezone, "missed": missed}
    emit(call("POST", "/schedules", json=body), output)


@schedule_app.command("delete")
def delete(
    schedule_id: Annotated[str, typer.Argument(metavar="SCHEDULE_ID", help="The schedule.")],
) -> None:
    """Stop running the config on this schedule."""
    call("DELETE", f"/schedules/{schedule_id}")
    typer.echo(f"deleted schedule {schedule_id}", err=True)

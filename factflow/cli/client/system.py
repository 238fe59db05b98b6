"""`factflow system health|mq-diagnostic|version|diagnostics` and `factflow pipeline ...`."""

from __future__ import annotations

from typing import Annotated

import typer

from factflow.cli.client.http import OutputOption, RouteArg, call, emit, wants_json

system_app = typer.Typer(help="The server itself.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Routes across all executions.", no_args_is_help=True)


@system_app.command("health")
def health(
    debug: Annotated[bool, typer.Option("--debug", help="Include every check.")] = False,
    output: OutputOption = None,
) -> None:
    """Whether the server and its database answer; exit 1 when the database does not."""
    emit(call("GET", "/system/health", params={"debug": debug}), output)


@system_app.command("version")
def version(output: OutputOption = None) -> None:
    """The server's factflow, Bytewax and Python versions."""
    emit(call("GET", "/system/version"), output)


@system_app.command("diagnostics")
def diagnostics(output: OutputOption = None) -> None:
    """The server's settings (secrets masked), executions by status, this instance's
    workers."""
    emit(call("GET", "/system/diagnostics"), output)


@system_app.command("mq-diagnostic")
def mq_diagnostic(output: OutputOption = None) -> None:
    """A publish/subscribe round trip on each queue provider; exit 1 if one fails."""
    data = call("POST", "/system/mq-diagnostic")
    emit(data if wants_json(output) else data["providers"], output)
    raise typer.Exit(0 if data["status"] == "ok" else 1)


@pipeline_app.command("list")
def list_routes(output: OutputOption = None) -> None:
    """Every route of the active configs and running executions, and whether it is
    paused."""
    emit(call("GET", "/pipelines"), output, ("route_id", "pipeline", "queue", "status"))


@pipeline_app.command("pause")
def pause(
    route_id: RouteArg,
    reason: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Why, shown with the paused route.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Pause a route across every execution."""
    emit(
        call("PATCH", f"/pipelines/{route_id}", json={"state": "paused", "reason": reason}), output
    )


@pipeline_app.command("resume")
def resume(route_id: RouteArg, output: OutputOption = None) -> None:
    """Resume a paused route."""
    emit(call("PATCH", f"/pipelines/{route_id}", json={"state": "running"}), output)

"""`factflow execution list|get|wait|cancel|resume|replay|dag|stats|routes|start`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from factflow.cli.client.configs import parse_inputs
from factflow.cli.client.http import (
    STATE,
    ExecutionArg,
    OutputOption,
    call,
    emit,
    stream_events,
    wants_json,
)
from factflow.cli.common import InputOption, ProcessesOption, WorkersOption

execution_app = typer.Typer(help="Executions on the server.", no_args_is_help=True)

EXECUTION_COLUMNS = ("id", "pipeline_name", "status", "started_at", "completed_at", "error")
TERMINAL = ("completed", "failed", "cancelled")
LimitOption = Annotated[int, typer.Option(min=1, metavar="N", help="At most N rows.")]
OffsetOption = Annotated[int, typer.Option(min=0, metavar="N", help="Skip the first N rows.")]


@execution_app.command("list")
def list_executions(
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS",
            help="Only these: running, cancelling, completed, failed, cancelled or interrupted.",
        ),
    ] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """Executions, newest first."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status:
        params["status"] = status
    rows = call("GET", "/executions", params=params)
    if not wants_json(output):
        for row in rows:
            row["error"] = (row.get("error") or "").split("\n")[0][:80]
    emit(rows, output, EXECUTION_COLUMNS)


@execution_app.command("get")
def get(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """One execution: status, times, error (as JSON also its config snapshot)."""
    data = call("GET", f"/executions/{execution_id}")
    if not wants_json(output):
        data.pop("config_snapshot", None)
    emit(data, output)


@execution_app.command("start")
def start(
    file: Annotated[
        Path, typer.Option("--file", "-f", metavar="FILE", help="Pipeline YAML to run inline.")
    ],
    input_files: InputOption = None,
    workers: WorkersOption = 1,
    processes: ProcessesOption = 1,
    output: OutputOption = None,
) -> None:
    """Run a pipeline file without storing a config (factflow addition)."""
    body = {
        "pipeline_yaml": file.read_text(),
        "inputs": parse_inputs(input_files),
        "workers": workers,
        "processes": processes,
    }
    emit(call("POST", "/executions", json=body), output, ("execution_id", "status"))


@execution_app.command("wait")
def wait(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """Follow the execution's events live; exit 0 when it completes, 1 otherwise."""
    deadline = None if STATE.timeout is None else time.monotonic() + STATE.timeout
    console = Console(stderr=True)  # the spinner never mixes into JSON on stdout
    status = None
    with console.status(f"execution {execution_id}: waiting", spinner="dots") as spinner:
        for event in stream_events(f"/executions/{execution_id}/events", deadline=deadline):
            data = event.json()
            if wants_json(output):
                typer.echo(event.data)
            status = data.get("status", status) if isinstance(data, dict) else status
            if not wants_json(output):
                when = data.get("created_at", "")[11:19] if isinstance(data, dict) else ""
                error = (data.get("payload") or {}).get("error") if isinstance(data, dict) else None
                line = f"{when} {event.event}" + (f": {error.splitlines()[0]}" if error else "")
                console.print(line.strip(), highlight=False)
            spinner.update(f"execution {execution_id}: {status}")
    if status not in TERMINAL:
        status = call("GET", f"/executions/{execution_id}").get("status")
    if not wants_json(output):
        colour = "green" if status == "completed" else "red"
        console.print(f"[{colour}]execution {execution_id} {status}[/]")
    raise typer.Exit(0 if status == "completed" else 1)


@execution_app.command("cancel")
def cancel(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """Graceful cancel: returns `cancelling` at once."""
    emit(call("POST", f"/executions/{execution_id}/cancel"), output)


@execution_app.command("resume")
def resume(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """Relaunch an interrupted execution from its recovery snapshot (factflow addition)."""
    emit(call("POST", f"/executions/{execution_id}/resume"), output, ("execution_id", "status"))


@execution_app.command("dag")
def dag(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """Routes, adapters and queue links; as text, a Mermaid flowchart."""
    data = call("GET", f"/executions/{execution_id}/dag")
    if wants_json(output):
        emit(data, output)
    else:
        typer.echo(data["mermaid"])


@execution_app.command("stats")
def stats(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """Per-adapter counts, durations and throughput (from lineage)."""
    data = call("GET", f"/executions/{execution_id}/stats")
    if wants_json(output):
        emit(data, output)
        return
    emit(
        {
            k: data[k]
            for k in ("execution_id", "status", "duration_seconds", "throughput_per_second")
        },
        output,
    )
    emit(
        data["adapters"],
        output,
        (
            "route_id",
            "adapter_index",
            "adapter_name",
            "completed",
            "failed",
            "pending",
            "avg_duration_ms",
        ),
    )


@execution_app.command("routes")
def routes(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """Per route: queue, processor status, in-flight count."""
    emit(
        call("GET", f"/executions/{execution_id}/routes"),
        output,
        (
            "route_id",
            "queue",
            "processor_status",
            "in_flight",
            "completed",
            "failed",
            "messages_in",
        ),
    )


@execution_app.command("replay")
def replay(
    execution_id: ExecutionArg,
    from_stage: Annotated[
        str, typer.Option("--from-stage", metavar="STAGE", help="Replay this stage's outputs.")
    ],
    from_route: Annotated[
        str | None,
        typer.Option("--from-route", metavar="ROUTE", help="The stage's route, if ambiguous."),
    ] = None,
    to_route: Annotated[
        str | None,
        typer.Option("--to-route", metavar="ROUTE", help="Feed this route's first step instead."),
    ] = None,
    current: Annotated[
        bool,
        typer.Option("--current", help="Run the config's newest version, not the snapshot."),
    ] = False,
    only_failed: Annotated[
        bool, typer.Option("--only-failed", help="Only outputs a later step failed on.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count and check; start nothing.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """A new execution fed the stored outputs of STAGE: only the steps after it run."""
    body = {
        "from_stage": from_stage,
        "from_route": from_route,
        "to_route": to_route,
        "config": "current" if current else "snapshot",
        "filter": {"only_failed": only_failed},
        "dry_run": dry_run,
    }
    emit(
        call("POST", f"/executions/{execution_id}/replay", json=body),
        output,
        ("execution_id", "status", "messages", "entry_route", "after_stage"),
    )

"""`factflow lineage list|get|chain|children|failures|batch|stats`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from factflow.cli.client.http import OutputOption, call, emit, wants_json

lineage_app = typer.Typer(help="Lineage rows: one per message per adapter.", no_args_is_help=True)

COLUMNS = ("id", "route_id", "adapter_name", "stage_status", "message_id", "duration_ms")
ExecutionOption = Annotated[str | None, typer.Option("--execution", "-e", help="Execution id.")]


@lineage_app.command("list")
def list_lineage(
    execution: ExecutionOption = None,
    status: Annotated[str | None, typer.Option()] = None,
    adapter: Annotated[str | None, typer.Option()] = None,
    route: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = None,
) -> None:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    for key, value in (
        ("execution_id", execution), ("status", status), ("adapter_name", adapter),
        ("route_id", route),
    ):  # fmt: skip
        if value is not None:
            params[key] = value
    emit(call("GET", "/lineage", params=params), output, COLUMNS)


@lineage_app.command("get")
def get(entry_id: str, output: OutputOption = None) -> None:
    emit(call("GET", f"/lineage/{entry_id}"), output)


@lineage_app.command("chain")
def chain(entry_id: str, output: OutputOption = None) -> None:
    """Ancestors (nearest first), the row, and its descendants."""
    data = call("GET", f"/lineage/{entry_id}/chain")
    if wants_json(output):
        emit(data, output)
        return
    rows = [*reversed(data["ancestors"]), data["entry"], *data["descendants"]]
    emit(rows, output, COLUMNS)


@lineage_app.command("children")
def children(entry_id: str, output: OutputOption = None) -> None:
    emit(call("GET", f"/lineage/{entry_id}/children"), output, COLUMNS)


@lineage_app.command("failures")
def failures(
    execution: ExecutionOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    output: OutputOption = None,
) -> None:
    params: dict[str, Any] = {"limit": limit}
    if execution:
        params["execution_id"] = execution
    emit(call("GET", "/lineage/failures", params=params), output, (*COLUMNS, "error_info"))


@lineage_app.command("batch")
def batch(batch_id: str, output: OutputOption = None) -> None:
    emit(call("GET", f"/lineage/batch/{batch_id}"), output, COLUMNS)


@lineage_app.command("stats")
def stats(execution: ExecutionOption = None, output: OutputOption = None) -> None:
    params = {"execution_id": execution} if execution else {}
    data = call("GET", "/lineage/stats", params=params)
    if wants_json(output):
        emit(data, output)
        return
    emit(data["totals"], output)
    if data.get("adapters"):
        emit(
            data["adapters"],
            output,
            ("route_id", "adapter_index", "adapter_name", "total", "completed", "failed"),
        )

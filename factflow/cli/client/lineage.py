"""`factflow lineage list|get|chain|children|failures|batch|stats`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from factflow.cli.client.http import (
    ExecutionOption,
    LineageArg,
    OutputOption,
    call,
    emit,
    wants_json,
)

lineage_app = typer.Typer(help="Lineage rows: one per message per adapter.", no_args_is_help=True)

COLUMNS = ("id", "route_id", "adapter_name", "stage_status", "message_id", "duration_ms")
LimitOption = Annotated[
    int, typer.Option(min=1, max=1000, metavar="N", help="At most N rows (up to 1000).")
]


@lineage_app.command("list")
def list_lineage(
    execution: ExecutionOption = None,
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS",
            help="Only rows in this status: pending, processing, completed, failed, "
            "filtered, dead_lettered or cancelled.",
        ),
    ] = None,
    adapter: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only rows of this adapter type.")
    ] = None,
    route: Annotated[
        str | None, typer.Option(metavar="ROUTE_ID", help="Only rows of this route.")
    ] = None,
    limit: LimitOption = 100,
    offset: Annotated[int, typer.Option(min=0, metavar="N", help="Skip the first N rows.")] = 0,
    output: OutputOption = None,
) -> None:
    """Lineage rows, filtered by execution, status, adapter and route."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    for key, value in (
        ("execution_id", execution), ("status", status), ("adapter_name", adapter),
        ("route_id", route),
    ):  # fmt: skip
        if value is not None:
            params[key] = value
    emit(call("GET", "/lineage", params=params), output, COLUMNS)


@lineage_app.command("get")
def get(entry_id: LineageArg, output: OutputOption = None) -> None:
    """One lineage row: the invocation of one adapter on one message."""
    emit(call("GET", f"/lineage/{entry_id}"), output)


@lineage_app.command("chain")
def chain(entry_id: LineageArg, output: OutputOption = None) -> None:
    """Ancestors (nearest first), the row, and its descendants."""
    data = call("GET", f"/lineage/{entry_id}/chain")
    if wants_json(output):
        emit(data, output)
        return
    rows = [*reversed(data["ancestors"]), data["entry"], *data["descendants"]]
    emit(rows, output, COLUMNS)


@lineage_app.command("children")
def children(entry_id: LineageArg, output: OutputOption = None) -> None:
    """The rows whose parent is this one (the next adapter's invocations)."""
    emit(call("GET", f"/lineage/{entry_id}/children"), output, COLUMNS)


@lineage_app.command("failures")
def failures(
    execution: ExecutionOption = None,
    limit: LimitOption = 100,
    output: OutputOption = None,
) -> None:
    """Failed and dead-lettered rows with their error, oldest first."""
    params: dict[str, Any] = {"limit": limit}
    if execution:
        params["execution_id"] = execution
    emit(call("GET", "/lineage/failures", params=params), output, (*COLUMNS, "error_info"))


@lineage_app.command("batch")
def batch(
    batch_id: Annotated[str, typer.Argument(metavar="BATCH_ID", help="The batch's id.")],
    output: OutputOption = None,
) -> None:
    """The rows of one batch."""
    emit(call("GET", f"/lineage/batch/{batch_id}"), output, COLUMNS)


@lineage_app.command("stats")
def stats(execution: ExecutionOption = None, output: OutputOption = None) -> None:
    """Row counts per status, overall and per adapter."""
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

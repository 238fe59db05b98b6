"""`factflow deadletters queue list|peek|redrive|purge`: the brokers' dead-letter queues
through the server (`/api/v1/deadletters/queues`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from factflow.cli.client.http import ExecutionArg, OutputOption, call, emit, wants_json

queue_app = typer.Typer(
    help="Dead-letter queues on the brokers (RabbitMQ, STOMP, Pulsar, Kafka), via the server.",
    no_args_is_help=True,
)
RouteArg = Annotated[str, typer.Argument(metavar="ROUTE_ID", help="The route whose queue.")]
LimitOption = Annotated[int, typer.Option(min=1, metavar="N", help="At most N letters.")]
EveryOption = Annotated[
    bool, typer.Option("--all-executions", help="Every execution's letters, not only this one's.")
]


@queue_app.command("list")
def list_queues(execution_id: ExecutionArg, output: OutputOption = None) -> None:
    """The execution's routes with a dead-letter queue on its broker."""
    data = call("GET", "/deadletters/queues", params={"execution_id": execution_id})
    emit(data, output, ("route_id", "queue", "provider"))


@queue_app.command("peek")
def peek(
    execution_id: ExecutionArg,
    route: RouteArg,
    limit: LimitOption = 50,
    all_executions: EveryOption = False,
    output: OutputOption = None,
) -> None:
    """Letters of the route's dead-letter queue, left on it."""
    params: dict[str, Any] = {
        "execution_id": execution_id,
        "limit": limit,
        "all_executions": all_executions,
    }
    data = call("GET", f"/deadletters/queues/{route}/messages", params=params)
    if wants_json(output):
        emit(data, output)
        return
    emit(data["letters"], output, ("execution_id", "stage", "reason", "error", "failed_at"))


@queue_app.command("redrive")
def redrive(
    execution_id: ExecutionArg,
    route: RouteArg,
    limit: LimitOption = 1000,
    output: OutputOption = None,
) -> None:
    """The execution's letters back onto their route's inbound queue (confirmed, then
    taken off the dead-letter queue)."""
    body = {"execution_id": execution_id, "limit": limit}
    data = call("POST", f"/deadletters/queues/{route}/redrive", json=body)
    if wants_json(output):
        emit(data, output)
    else:
        typer.echo(f"redrove {data['count']} letter(s) from {data['queue']}")


@queue_app.command("purge")
def purge(
    execution_id: ExecutionArg,
    route: RouteArg,
    limit: LimitOption = 1000,
    all_executions: EveryOption = False,
    output: OutputOption = None,
) -> None:
    """Discard the execution's (or every execution's) letters; the server records them."""
    params: dict[str, Any] = {
        "execution_id": execution_id,
        "limit": limit,
        "all_executions": all_executions,
    }
    data = call("DELETE", f"/deadletters/queues/{route}", params=params)
    if wants_json(output):
        emit(data, output)
    else:
        typer.echo(f"purged {data['count']} letter(s) from {data['queue']}")

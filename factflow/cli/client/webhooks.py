"""`factflow webhook create|list|get|delete|pause|resume|deliveries|redeliver|test`."""

from __future__ import annotations

from typing import Annotated

import typer

from factflow.cli.client.http import OutputOption, call, emit

webhook_app = typer.Typer(help="Webhook subscriptions and their deliveries.", no_args_is_help=True)

WebhookArg = Annotated[str, typer.Argument(metavar="WEBHOOK_ID", help="The webhook's id.")]
WEBHOOK_COLUMNS = ("webhook_id", "url", "event_types", "is_active", "created_at")
DELIVERY_COLUMNS = (
    "delivery_id", "event_type", "status", "attempts", "last_status_code", "created_at",
)  # fmt: skip


@webhook_app.command("create")
def create(
    url: Annotated[str, typer.Option("--url", metavar="URL", help="Where to POST events.")],
    events: Annotated[
        str,
        typer.Option(
            "--events",
            metavar="EVENTS",
            help="Comma-separated, e.g. execution.completed,execution.failed; * for all.",
        ),
    ],
    secret: Annotated[
        str | None,
        typer.Option("--secret", metavar="SECRET", help="Signing secret (default: generated)."),
    ] = None,
    config_id: Annotated[
        str | None, typer.Option("--config", metavar="CONFIG_ID", help="Only this config.")
    ] = None,
    execution_id: Annotated[
        str | None,
        typer.Option("--execution", metavar="EXECUTION_ID", help="Only this execution."),
    ] = None,
    route_id: Annotated[
        str | None, typer.Option("--route", metavar="ROUTE_ID", help="Only this route.")
    ] = None,
    adapter_name: Annotated[
        str | None, typer.Option("--adapter", metavar="NAME", help="Only this adapter.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Subscribe a URL to events; prints the webhook with its secret (shown only now)."""
    filters = {
        "config_id": config_id, "execution_id": execution_id,
        "route_id": route_id, "adapter_name": adapter_name,
    }  # fmt: skip
    body = {
        "url": url,
        "event_types": [e.strip() for e in events.split(",") if e.strip()],
        "secret": secret,
        "filters": {k: v for k, v in filters.items() if v is not None},
    }
    emit(call("POST", "/webhooks", json=body), output)


@webhook_app.command("list")
def list_webhooks(output: OutputOption = None) -> None:
    """Every subscription (secrets are never shown)."""
    emit(call("GET", "/webhooks"), output, WEBHOOK_COLUMNS)


@webhook_app.command("get")
def get(webhook_id: WebhookArg, output: OutputOption = None) -> None:
    """One subscription: URL, events, filters, whether it is active."""
    emit(call("GET", f"/webhooks/{webhook_id}"), output)


@webhook_app.command("delete")
def delete(webhook_id: WebhookArg) -> None:
    """Delete the subscription and its deliveries."""
    call("DELETE", f"/webhooks/{webhook_id}")
    typer.echo(f"deleted webhook {webhook_id}", err=True)


@webhook_app.command("pause")
def pause(webhook_id: WebhookArg, output: OutputOption = None) -> None:
    """Hold deliveries (new events queue nothing) until `resume`."""
    emit(call("POST", f"/webhooks/{webhook_id}/pause"), output)


@webhook_app.command("resume")
def resume(webhook_id: WebhookArg, output: OutputOption = None) -> None:
    """Deliver again, the held deliveries first."""
    emit(call("POST", f"/webhooks/{webhook_id}/resume"), output)


@webhook_app.command("deliveries")
def deliveries(
    webhook_id: WebhookArg,
    status: Annotated[
        str | None,
        typer.Option(metavar="STATUS", help="pending, delivered, failed or dead_lettered."),
    ] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most N.")] = 100,
    output: OutputOption = None,
) -> None:
    """The subscription's deliveries, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    if status:
        params["status"] = status
    rows = call("GET", f"/webhooks/{webhook_id}/deliveries", params=params)
    emit(rows, output, DELIVERY_COLUMNS)


@webhook_app.command("redeliver")
def redeliver(
    webhook_id: WebhookArg,
    delivery_id: Annotated[str, typer.Argument(metavar="DELIVERY_ID", help="The delivery.")],
    output: OutputOption = None,
) -> None:
    """Send a delivery again now (dead-lettered ones too), with the same delivery id."""
    emit(call("POST", f"/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"), output)


@webhook_app.command("test")
def test(webhook_id: WebhookArg, output: OutputOption = None) -> None:
    """Queue a signed `webhook.test` delivery to the subscription."""
    emit(call("POST", f"/webhooks/{webhook_id}/test"), output, DELIVERY_COLUMNS)

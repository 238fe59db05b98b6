"""Making and rotating subscriptions: the URL allow rule, event names, secrets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from factflow.db.connection import DbConnection
from factflow.db.repositories import webhooks as repo
from factflow.webhooks.events import ALL_EVENTS, EVENT_TYPES
from factflow.webhooks.exceptions import WebhookError
from factflow.webhooks.settings import WebhookSettings
from factflow.webhooks.signing import new_secret
from factflow.webhooks.urls import check_url

FILTER_KEYS = ("config_id", "execution_id", "route_id", "adapter_name")


def check_event_types(event_types: Sequence[str]) -> None:
    """Raise WebhookError naming the unknown event types (and the known ones)."""
    unknown = [e for e in event_types if e != ALL_EVENTS and e not in EVENT_TYPES]
    if unknown:
        msg = (
            f"unknown event type(s) {', '.join(unknown)}; known: "
            f"{', '.join(EVENT_TYPES)}, or {ALL_EVENTS} for all"
        )
        raise WebhookError(msg)


def create(
    conn: DbConnection,
    settings: WebhookSettings,
    *,
    url: str,
    event_types: Sequence[str],
    secret: str | None = None,
    filters: dict[str, str] | None = None,
    description: str | None = None,
) -> tuple[repo.Subscription, str]:
    """The new subscription and its secret (generated when none is given): the only time
    the secret is handed out."""
    check_url(url, allow_private=settings.allow_private_urls)
    check_event_types(event_types)
    chosen = secret or new_secret()
    kept = {k: v for k, v in (filters or {}).items() if v is not None}
    created = repo.create_subscription(
        conn,
        url=url,
        event_types=list(dict.fromkeys(event_types)),
        secret=chosen,
        filters=kept,
        description=description,
    )
    return created, chosen


def rotate(
    conn: DbConnection,
    settings: WebhookSettings,
    subscription_id: uuid.UUID,
    secret: str | None = None,
) -> tuple[repo.Subscription, str]:
    """A new secret; the old one keeps signing (a second signature) for the grace period."""
    chosen = secret or new_secret()
    grace = timedelta(seconds=settings.secret_grace_seconds)
    return repo.rotate_secret(conn, subscription_id, chosen, grace=grace), chosen

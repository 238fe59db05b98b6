"""Webhooks: subscriptions (create, list, get, update, delete, pause, resume, rotate the
secret), their deliveries with every attempt, redelivery and a test delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from factflow.api.auth import require
from factflow.api.bodies import RequestBody
from factflow.api.compiling import bad_request
from factflow.api.deps import DbDep, Offset, SettingsDep
from factflow.api.errors import error_responses
from factflow.db.exceptions import NotFoundError
from factflow.db.repositories import webhooks as repo
from factflow.types import JsonDict
from factflow.webhooks import subscriptions
from factflow.webhooks.events import EVENT_TYPES, TEST_EVENT
from factflow.webhooks.exceptions import WebhookError
from factflow.webhooks.settings import WebhookSettings
from factflow.webhooks.urls import check_url

router = APIRouter(prefix="/webhooks", tags=["webhooks"], dependencies=[require("webhooks:manage")])

Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[^\x00]*$")]
EventName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
FilterValue = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00]*$")]
Secret = Annotated[str, Field(min_length=8, max_length=500, pattern=r"^[^\x00]*$")]


class WebhookFilters(RequestBody):
    """ANDed; a filter left out matches every event."""

    config_id: uuid.UUID | None = None
    execution_id: uuid.UUID | None = None
    route_id: FilterValue | None = None
    adapter_name: FilterValue | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}


class WebhookCreate(RequestBody):
    url: Url
    event_types: list[EventName] = Field(
        min_length=1, max_length=len(EVENT_TYPES) + 1, description=f"of {', '.join(EVENT_TYPES)}"
    )
    secret: Secret | None = Field(
        default=None, description="signs every delivery; generated (whsec_...) when left out"
    )
    filters: WebhookFilters = Field(default_factory=WebhookFilters)
    description: Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")] | None = None


class WebhookUpdate(RequestBody):
    url: Url | None = None
    event_types: list[EventName] | None = Field(
        default=None, min_length=1, max_length=len(EVENT_TYPES) + 1
    )
    filters: WebhookFilters | None = None
    description: Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")] | None = None
    is_active: bool | None = None


class SecretRotate(RequestBody):
    secret: Secret | None = Field(default=None, description="the new secret; generated if left out")


class WebhookResponse(BaseModel):
    webhook_id: uuid.UUID
    id: uuid.UUID
    url: str
    event_types: list[str]
    filters: JsonDict
    description: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="only in the answers to create and rotate-secret"
    )


class AttemptResponse(BaseModel):
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    response_excerpt: str | None
    instance: str


class DeliveryResponse(BaseModel):
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: int | None
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    body: JsonDict
    attempt_log: list[AttemptResponse] | None = None


def _webhook(sub: repo.Subscription, secret: str | None = None) -> WebhookResponse:
    return WebhookResponse(
        webhook_id=sub.id,
        id=sub.id,
        url=sub.url,
        event_types=sub.event_types,
        filters=sub.filters,
        description=sub.description,
        is_active=sub.is_active,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
        secret=secret,
    )


def _delivery(d: repo.Delivery, attempts: list[repo.Attempt] | None = None) -> DeliveryResponse:
    return DeliveryResponse(
        delivery_id=d.id,
        webhook_id=d.subscription_id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        completed_at=d.completed_at,
        body=d.body,
        attempt_log=None
        if attempts is None
        else [
            AttemptResponse(
                attempt=a.attempt,
                started_at=a.started_at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error,
                response_excerpt=a.response_excerpt,
                instance=a.instance,
            )
            for a in attempts
        ],
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_webhook(body: WebhookCreate, db: DbDep, settings: SettingsDep) -> WebhookResponse:
    """Subscribe `url` to `event_types`; the answer holds the secret, the only time it is
    shown. 400 for an unknown event type or a URL the allow rule refuses."""
    try:
        sub, secret = subscriptions.create(
            db,
            WebhookSettings.of(settings),
            url=body.url,
            event_types=body.event_types,
            secret=body.secret,
            filters=body.filters.as_dict(),
            description=body.description,
        )
    except WebhookError as exc:
        raise bad_request(str(exc), "WEBHOOK_INVALID") from exc
    return _webhook(sub, secret)


@router.get("")
def list_webhooks(
    db: DbDep,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[WebhookResponse]:
    """Subscriptions, oldest first (secrets are never shown)."""
    rows = repo.list_subscriptions(db, active=active, limit=limit, offset=offset)
    return [_webhook(s) for s in rows]


@router.get("/events")
def list_event_types() -> list[str]:
    """The event types a subscription can name (factflow addition)."""
    return list(EVENT_TYPES)


@router.get("/{webhook_id}", responses=error_responses(404))
def get_webhook(webhook_id: uuid.UUID, db: DbDep) -> WebhookResponse:
    return _webhook(repo.get_subscription(db, webhook_id))


@router.patch("/{webhook_id}", responses=error_responses(404))
def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, db: DbDep, settings: SettingsDep
) -> WebhookResponse:
    """Change the URL, events, filters, description or `is_active`."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    try:
        if body.url is not None:
            check_url(body.url, allow_private=WebhookSettings.of(settings).allow_private_urls)
        if body.event_types is not None:
            subscriptions.check_event_types(body.event_types)
    except WebhookError as exc:
        raise bad_request(str(exc), "WEBHOOK_INVALID") from exc
    if body.filters is not None:
        changes["filters"] = body.filters.as_dict()
    return _webhook(repo.update_subscription(db, webhook_id, changes))


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
def delete_webhook(webhook_id: uuid.UUID, db: DbDep) -> Response:
    """Delete the subscription and its deliveries."""
    repo.delete_subscription(db, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/pause", responses=error_responses(404))
def pause_webhook(webhook_id: uuid.UUID, db: DbDep) -> WebhookResponse:
    """Stop delivering: no deliveries are made for new events, queued ones wait."""
    return _webhook(repo.update_subscription(db, webhook_id, {"is_active": False}))


@router.post("/{webhook_id}/resume", responses=error_responses(404))
def resume_webhook(webhook_id: uuid.UUID, db: DbDep) -> WebhookResponse:
    """Deliver again, the queued deliveries first."""
    return _webhook(repo.update_subscription(db, webhook_id, {"is_active": True}))


@router.post("/{webhook_id}/rotate-secret", responses=error_responses(404))
def rotate_webhook_secret(
    webhook_id: uuid.UUID, db: DbDep, settings: SettingsDep, body: SecretRotate | None = None
) -> WebhookResponse:
    """A new secret (shown once); the old one still signs, as a second `webhook-signature`,
    for FACTFLOW's grace period (24 h) so receivers can switch without a gap."""
    chosen = body.secret if body is not None else None
    sub, secret = subscriptions.rotate(db, WebhookSettings.of(settings), webhook_id, chosen)
    return _webhook(sub, secret)


@router.get("/{webhook_id}/deliveries", responses=error_responses(404))
def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    db: DbDep,
    status_filter: Annotated[repo.DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[DeliveryResponse]:
    """The subscription's deliveries, newest first."""
    repo.get_subscription(db, webhook_id)
    rows = repo.list_deliveries(
        db, subscription_id=webhook_id, status=status_filter, limit=limit, offset=offset
    )
    return [_delivery(d) for d in rows]


@router.get("/{webhook_id}/deliveries/{delivery_id}", responses=error_responses(404))
def get_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, db: DbDep
) -> DeliveryResponse:
    """One delivery with every attempt (status, latency, response excerpt)."""
    delivery = _owned(db, webhook_id, delivery_id)
    return _delivery(delivery, repo.list_attempts(db, delivery_id))


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", responses=error_responses(404))
def redeliver_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, db: DbDep
) -> DeliveryResponse:
    """Send a delivery again now (a dead-lettered one too), the retry schedule restarted;
    the delivery id, the receivers' idempotency key, stays."""
    _owned(db, webhook_id, delivery_id)
    return _delivery(repo.redeliver(db, delivery_id))


@router.post(
    "/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(404)
)
def test_webhook(webhook_id: uuid.UUID, db: DbDep) -> DeliveryResponse:
    """Queue a `webhook.test` delivery to the subscription (factflow addition)."""
    data: JsonDict = {"webhook_id": str(webhook_id), "message": "a test delivery from factflow"}
    return _delivery(repo.enqueue_delivery(db, webhook_id, TEST_EVENT, data))


def _owned(db: DbDep, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> repo.Delivery:
    delivery = repo.get_delivery(db, delivery_id)
    if delivery.subscription_id != webhook_id:
        msg = f"webhook delivery {delivery_id} does not exist for webhook {webhook_id}"
        raise NotFoundError(msg)
    return delivery

"""Webhook subscriptions, the delivery queue (claimed with SKIP LOCKED) and every attempt.

Deliveries are queued by the `events_webhook_fanout` trigger (migration 0006) in the
transaction that records the event; this module claims, records and lists them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError
from factflow.types import JsonDict

WEBHOOKS_CHANNEL = "factflow_webhooks"
DeliveryStatus = Literal["pending", "delivered", "failed", "dead_lettered"]

_SUB_COLUMNS = (
    "id, url, event_types, filters, secret, previous_secret, previous_expires_at,"
    " description, is_active, created_at, updated_at"
)
_DELIVERY_COLUMNS = (
    "id, subscription_id, event_id, event_type, body, status, attempts, retry_base,"
    " next_attempt_at, claimed_by, last_status_code, last_error, created_at, completed_at"
)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: uuid.UUID
    url: str
    event_types: list[str]
    filters: JsonDict
    secret: str
    previous_secret: str | None
    previous_expires_at: datetime | None
    description: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: int | None
    event_type: str
    body: JsonDict
    status: DeliveryStatus
    attempts: int
    retry_base: int
    next_attempt_at: datetime
    claimed_by: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery taken for one attempt, with what sending it needs."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_type: str
    body: JsonDict
    attempt: int
    """This attempt's number, from 1 (counts every attempt, redeliveries included)."""
    retry_index: int
    """This attempt's number since the last redelivery by hand, from 1."""
    url: str
    secrets: list[str]
    """The current secret, then the previous one while a rotation's grace lasts."""


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: uuid.UUID
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    response_excerpt: str | None
    instance: str


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt did, and what happens to the delivery next."""

    started_at: datetime
    latency_ms: float
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    outcome: DeliveryStatus
    """`pending` means: try again after `retry_after`."""
    retry_after: timedelta | None = None


def _notify(conn: DbConnection) -> None:
    conn.execute(f"NOTIFY {WEBHOOKS_CHANNEL}")


# --- subscriptions ----------------------------------------------------------------------


def create_subscription(
    conn: DbConnection,
    *,
    url: str,
    event_types: Sequence[str],
    secret: str,
    filters: JsonDict | None = None,
    description: str | None = None,
) -> Subscription:
    with conn.transaction(), conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            "INSERT INTO webhook_subscriptions (url, event_types, filters, secret, description)"
            f" VALUES (%s, %s, %s, %s, %s) RETURNING {_SUB_COLUMNS}",
            (url, list(event_types), Jsonb(filters or {}), secret, description),
        )
        created = cur.fetchone()
    assert created is not None
    return created


def get_subscription(conn: DbConnection, subscription_id: uuid.UUID) -> Subscription:
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            f"SELECT {_SUB_COLUMNS} FROM webhook_subscriptions WHERE id = %s", (subscription_id,)
        )
        found = cur.fetchone()
    if found is None:
        msg = f"webhook {subscription_id} does not exist"
        raise NotFoundError(msg)
    return found


def list_subscriptions(
    conn: DbConnection, *, active: bool | None = None, limit: int = 100, offset: int = 0
) -> list[Subscription]:
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            f"SELECT {_SUB_COLUMNS} FROM webhook_subscriptions"
            " WHERE (%s::boolean IS NULL OR is_active = %s::boolean)"
            " ORDER BY created_at, id LIMIT %s OFFSET %s",
            (active, active, limit, offset),
        )
        return cur.fetchall()


def update_subscription(
    conn: DbConnection, subscription_id: uuid.UUID, changes: JsonDict
) -> Subscription:
    """Set the given columns (`url`, `event_types`, `filters`, `description`,
    `is_active`); resuming wakes the dispatchers for the deliveries held meanwhile."""
    allowed = ("url", "event_types", "filters", "description", "is_active")
    values: dict[str, Any] = {k: v for k, v in changes.items() if k in allowed}
    if "filters" in values:
        values["filters"] = Jsonb(values["filters"])
    if "event_types" in values:
        values["event_types"] = list(values["event_types"])
    sets = "".join(f"{column} = %({column})s, " for column in values)
    with conn.transaction(), conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            f"UPDATE webhook_subscriptions SET {sets}updated_at = now()"
            f" WHERE id = %(id)s RETURNING {_SUB_COLUMNS}",
            {**values, "id": subscription_id},
        )
        updated = cur.fetchone()
        if updated is not None and values.get("is_active"):
            _notify(conn)
    if updated is None:
        msg = f"webhook {subscription_id} does not exist"
        raise NotFoundError(msg)
    return updated


def rotate_secret(
    conn: DbConnection, subscription_id: uuid.UUID, secret: str, *, grace: timedelta
) -> Subscription:
    """Sign with `secret` from now on, and with the old one too until `grace` has passed."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            "UPDATE webhook_subscriptions SET previous_secret = secret, secret = %s,"
            " previous_expires_at = now() + %s, updated_at = now()"
            f" WHERE id = %s RETURNING {_SUB_COLUMNS}",
            (secret, grace, subscription_id),
        )
        updated = cur.fetchone()
    if updated is None:
        msg = f"webhook {subscription_id} does not exist"
        raise NotFoundError(msg)
    return updated


def delete_subscription(conn: DbConnection, subscription_id: uuid.UUID) -> None:
    """Delete the subscription with its deliveries and their attempts."""
    with conn.transaction():
        deleted = conn.execute(
            "DELETE FROM webhook_subscriptions WHERE id = %s", (subscription_id,)
        ).rowcount
    if not deleted:
        msg = f"webhook {subscription_id} does not exist"
        raise NotFoundError(msg)


# --- deliveries -------------------------------------------------------------------------


def enqueue_delivery(
    conn: DbConnection, subscription_id: uuid.UUID, event_type: str, data: JsonDict
) -> Delivery:
    """A delivery outside the event fan-out (`webhook test`)."""
    get_subscription(conn, subscription_id)
    with conn.transaction(), conn.cursor(row_factory=class_row(Delivery)) as cur:
        cur.execute(
            "INSERT INTO webhook_deliveries (subscription_id, event_type, body)"
            " VALUES (%s, %s, jsonb_build_object('type', %s::text, 'timestamp', now(),"
            f" 'event_id', NULL, 'data', %s::jsonb)) RETURNING {_DELIVERY_COLUMNS}",
            (subscription_id, event_type, event_type, Jsonb(data)),
        )
        created = cur.fetchone()
        _notify(conn)
    assert created is not None
    return created


def claim_deliveries(
    conn: DbConnection,
    *,
    instance: str,
    limit: int,
    per_subscription: int,
    lease: timedelta,
    busy: Sequence[uuid.UUID] = (),
) -> list[ClaimedDelivery]:
    """Take up to `limit` due deliveries for one attempt each (at most `per_subscription`
    of one subscription, none of the `busy` ones), oldest due first.

    SKIP LOCKED lets any number of dispatchers claim at once without taking the same row;
    the claim pushes `next_attempt_at` forward by `lease`, so a delivery whose dispatcher
    dies before recording the attempt is claimed again after the lease.
    """
    with conn.transaction():
        rows = conn.execute(
            """
            WITH locked AS (
                SELECT d.id, d.subscription_id, d.next_attempt_at
                FROM webhook_deliveries d
                JOIN webhook_subscriptions s ON s.id = d.subscription_id
                WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND s.is_active
                  AND NOT (d.subscription_id = ANY(%(busy)s::uuid[]))
                ORDER BY d.next_attempt_at
                LIMIT %(scan)s
                FOR UPDATE OF d SKIP LOCKED
            ), picked AS (
                SELECT id FROM (
                    SELECT id, next_attempt_at, row_number() OVER (
                        PARTITION BY subscription_id ORDER BY next_attempt_at) AS n
                    FROM locked) ranked
                WHERE n <= %(per_subscription)s
                ORDER BY next_attempt_at
                LIMIT %(limit)s
            )
            UPDATE webhook_deliveries d
            SET attempts = d.attempts + 1, claimed_by = %(instance)s,
                next_attempt_at = now() + %(lease)s
            FROM picked, webhook_subscriptions s
            WHERE d.id = picked.id AND s.id = d.subscription_id
            RETURNING d.id, d.subscription_id, d.event_type, d.body, d.attempts,
                      d.attempts - d.retry_base, s.url, s.secret,
                      CASE WHEN s.previous_expires_at > now() THEN s.previous_secret END
            """,
            {
                "busy": list(busy),
                "scan": limit * 4,
                "per_subscription": per_subscription,
                "limit": limit,
                "instance": instance,
                "lease": lease,
            },
        ).fetchall()
    return [
        ClaimedDelivery(
            id=r[0],
            subscription_id=r[1],
            event_type=r[2],
            body=r[3],
            attempt=r[4],
            retry_index=r[5],
            url=r[6],
            secrets=[r[7]] if r[8] is None else [r[7], r[8]],
        )
        for r in rows
    ]


def record_attempt(
    conn: DbConnection, delivery: ClaimedDelivery, result: AttemptResult, *, instance: str
) -> bool:
    """Record the attempt and move the delivery on; False when the delivery was claimed
    again meanwhile (this attempt outlived its lease), which then decides its fate."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code,"
            " latency_ms, error, response_excerpt, instance)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                delivery.id,
                delivery.attempt,
                result.started_at,
                result.status_code,
                result.latency_ms,
                result.error,
                result.response_excerpt,
                instance,
            ),
        )
        updated = conn.execute(
            "UPDATE webhook_deliveries SET status = %(status)s,"
            " next_attempt_at = CASE WHEN %(status)s = 'pending'"
            "   THEN now() + %(retry)s ELSE next_attempt_at END,"
            " completed_at = CASE WHEN %(status)s = 'pending' THEN NULL ELSE now() END,"
            " last_status_code = %(code)s, last_error = %(error)s, claimed_by = NULL"
            " WHERE id = %(id)s AND attempts = %(attempt)s AND status = 'pending'",
            {
                "status": result.outcome,
                "retry": result.retry_after or timedelta(0),
                "code": result.status_code,
                "error": result.error,
                "id": delivery.id,
                "attempt": delivery.attempt,
            },
        ).rowcount
    return bool(updated)


def get_delivery(conn: DbConnection, delivery_id: uuid.UUID) -> Delivery:
    with conn.cursor(row_factory=class_row(Delivery)) as cur:
        cur.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = %s", (delivery_id,)
        )
        found = cur.fetchone()
    if found is None:
        msg = f"webhook delivery {delivery_id} does not exist"
        raise NotFoundError(msg)
    return found


def list_deliveries(
    conn: DbConnection,
    *,
    subscription_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Delivery]:
    """Deliveries, newest first."""
    with conn.cursor(row_factory=class_row(Delivery)) as cur:
        cur.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
            " WHERE (%s::uuid IS NULL OR subscription_id = %s::uuid)"
            " AND (%s::text IS NULL OR status = %s::text)"
            " ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
            (subscription_id, subscription_id, status, status, limit, offset),
        )
        return cur.fetchall()


def list_attempts(conn: DbConnection, delivery_id: uuid.UUID) -> list[Attempt]:
    with conn.cursor(row_factory=class_row(Attempt)) as cur:
        cur.execute(
            "SELECT delivery_id, attempt, started_at, status_code, latency_ms, error,"
            " response_excerpt, instance FROM webhook_attempts WHERE delivery_id = %s"
            " ORDER BY attempt",
            (delivery_id,),
        )
        return cur.fetchall()


def redeliver(conn: DbConnection, delivery_id: uuid.UUID) -> Delivery:
    """Queue a delivery again now, with the retry schedule from its start; the delivery id
    (the receivers' idempotency key) stays the same."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Delivery)) as cur:
        cur.execute(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),"
            " retry_base = attempts, completed_at = NULL, claimed_by = NULL"
            f" WHERE id = %s RETURNING {_DELIVERY_COLUMNS}",
            (delivery_id,),
        )
        updated = cur.fetchone()
        if updated is not None:
            _notify(conn)
    if updated is None:
        msg = f"webhook delivery {delivery_id} does not exist"
        raise NotFoundError(msg)
    return updated


def next_due_in(conn: DbConnection) -> timedelta | None:
    """How long until the next pending delivery is due (<= 0: now); None when none is."""
    row = conn.execute(
        "SELECT min(d.next_attempt_at) - now() FROM webhook_deliveries d"
        " JOIN webhook_subscriptions s ON s.id = d.subscription_id"
        " WHERE d.status = 'pending' AND s.is_active"
    ).fetchone()
    return None if row is None or row[0] is None else row[0]

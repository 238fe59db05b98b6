"""The `postgres` queue provider's primitives: a durable table queue.

A message is a row of `queue_messages`. Consumers claim batches with
`FOR UPDATE SKIP LOCKED`, so concurrent consumers never claim the same row; a claim is a
lease that pushes `visible_at` forward by the visibility timeout, so a message whose
consumer died becomes claimable again when the lease expires. `ack` deletes, which is
done after the epoch that processed the message closed. Publishing NOTIFYs
`factflow_queue` (payload: the queue name) on commit, so idle consumers wake at once
instead of polling.

Delivery is at-least-once: a message is delivered again only if its claim expired.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from factflow.db.connection import DbConnection
from factflow.types import JsonDict

QUEUE_CHANNEL = "factflow_queue"


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A claimed message; `attempts` counts deliveries, 1 on the first."""

    id: int
    queue: str
    body: bytes
    headers: JsonDict
    attempts: int
    enqueued_at: datetime


@dataclass(frozen=True, slots=True)
class QueueDepth:
    ready: int
    in_flight: int


def publish_batch(
    conn: DbConnection,
    queue: str,
    bodies: Sequence[bytes],
    headers: Sequence[JsonDict] | None = None,
    *,
    delay_seconds: float = 0.0,
) -> list[int]:
    """Enqueue `bodies` in one statement (one round trip) and notify consumers.

    In autocommit the batch is durable on return; inside a caller's transaction it is
    durable (and consumers are notified) when that commits. Returns the ids in order.
    """
    if not bodies:
        return []
    if headers is not None and len(headers) != len(bodies):
        msg = f"{len(headers)} headers for {len(bodies)} bodies"
        raise ValueError(msg)
    header_texts = [json.dumps(h) for h in headers] if headers else ["{}"] * len(bodies)
    row = conn.execute(
        """
        WITH ins AS (
            INSERT INTO queue_messages (queue, body, headers, visible_at)
            SELECT %(queue)s, b, h::jsonb, now() + %(delay)s * interval '1 second'
            FROM unnest(%(bodies)s::bytea[], %(headers)s::text[]) WITH ORDINALITY AS t(b, h, n)
            ORDER BY n
            RETURNING id
        )
        SELECT array_agg(id ORDER BY id), pg_notify(%(channel)s, %(queue)s) FROM ins
        """,
        {
            "queue": queue,
            "delay": delay_seconds,
            "bodies": list(bodies),
            "headers": header_texts,
            "channel": QUEUE_CHANNEL,
        },
    ).fetchone()
    assert row is not None
    return list(row[0])


def claim_batch(
    conn: DbConnection,
    queue: str,
    consumer: str,
    *,
    limit: int = 100,
    visibility_timeout: float = 30.0,
) -> list[QueueMessage]:
    """Claim up to `limit` visible messages for `visibility_timeout` seconds, oldest first.

    The timeout must cover an epoch: a message not acked (or extended) by then is
    delivered again, to any consumer. Never blocks on rows other consumers hold.
    """
    rows = conn.execute(
        """
        WITH picked AS (
            SELECT id FROM queue_messages
            WHERE queue = %(queue)s AND visible_at <= now()
            ORDER BY visible_at, id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE queue_messages m
        SET visible_at = now() + %(timeout)s * interval '1 second',
            attempts = m.attempts + 1,
            locked_by = %(consumer)s
        FROM picked WHERE m.id = picked.id
        RETURNING m.id, m.queue, m.body, m.headers, m.attempts, m.enqueued_at
        """,
        {"queue": queue, "limit": limit, "timeout": visibility_timeout, "consumer": consumer},
    ).fetchall()
    messages = [QueueMessage(*r) for r in rows]
    messages.sort(key=lambda m: m.id)
    return messages


def ack(conn: DbConnection, ids: Sequence[int]) -> int:
    """Delete processed messages; returns how many were still there."""
    if not ids:
        return 0
    cur = conn.execute("DELETE FROM queue_messages WHERE id = ANY(%s::bigint[])", (list(ids),))
    return cur.rowcount


def release(conn: DbConnection, ids: Sequence[int], *, delay_seconds: float = 0.0) -> int:
    """Give claimed messages back (visible again after `delay_seconds`), e.g. on shutdown."""
    if not ids:
        return 0
    rows = conn.execute(
        "UPDATE queue_messages SET visible_at = now() + %s * interval '1 second',"
        " locked_by = NULL WHERE id = ANY(%s::bigint[]) RETURNING queue",
        (delay_seconds, list(ids)),
    ).fetchall()
    if delay_seconds <= 0:
        for queue in {r[0] for r in rows}:
            conn.execute("SELECT pg_notify(%s, %s)", (QUEUE_CHANNEL, queue))
    return len(rows)


def extend(
    conn: DbConnection, ids: Sequence[int], consumer: str, *, visibility_timeout: float
) -> int:
    """Renew `consumer`'s claims (an epoch running long); returns how many it still held."""
    if not ids:
        return 0
    cur = conn.execute(
        "UPDATE queue_messages SET visible_at = now() + %s * interval '1 second'"
        " WHERE id = ANY(%s::bigint[]) AND locked_by = %s",
        (visibility_timeout, list(ids), consumer),
    )
    return cur.rowcount


def reclaim_expired(conn: DbConnection, queue: str) -> int:
    """Clear expired claims and wake consumers; returns how many claims had expired.

    Claiming already takes expired messages; this makes them visible to monitoring
    (`queue_depth`) and wakes idle consumers, so run it from time to time.
    """
    cur = conn.execute(
        "UPDATE queue_messages SET locked_by = NULL"
        " WHERE queue = %s AND locked_by IS NOT NULL AND visible_at <= now()",
        (queue,),
    )
    if cur.rowcount:
        conn.execute("SELECT pg_notify(%s, %s)", (QUEUE_CHANNEL, queue))
    return cur.rowcount


def queue_depth(conn: DbConnection, queue: str) -> QueueDepth:
    """Messages ready to claim, and claimed ones not yet acked (leases still running)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE visible_at <= now()),"
        " count(*) FILTER (WHERE visible_at > now() AND locked_by IS NOT NULL)"
        " FROM queue_messages WHERE queue = %s",
        (queue,),
    ).fetchone()
    assert row is not None
    return QueueDepth(ready=int(row[0]), in_flight=int(row[1]))


def listen(conn: DbConnection) -> None:
    """Subscribe an autocommit connection to queue notifications (see `wait_for_messages`)."""
    conn.execute(f"LISTEN {QUEUE_CHANNEL}")


def wait_for_messages(conn: DbConnection, queue: str, timeout: float) -> bool:
    """Block until `queue` gets a notification or `timeout` passes; True when notified.

    `conn` must have called `listen`. A False return does not mean the queue is empty
    (delayed or expired messages notify nobody): claim again after it.
    """
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        for notify in conn.notifies(timeout=remaining, stop_after=1):
            if notify.payload == queue:
                return True
    return False

"""The `postgres` provider: a durable table queue (factflow/db/pgqueue.py), and the
dead-letter table for providers without a broker.

Sources claim batches with SKIP LOCKED under a visibility timeout that must cover an
epoch, and delete (ack) them after the epoch, as broker sources do; a consumer that dies
leaves its claims to expire and be delivered again. NOTIFY wakes idle consumers. Sinks
insert a batch in one statement: durable when `write_batch` returns.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from typing import Any

from bytewax.inputs import FixedPartitionedSource
from bytewax.outputs import DynamicSink

from factflow.compiler.plan import QueueSettings
from factflow.connectors.base import BrokerSinkPartition, BrokerSourcePartition, Received
from factflow.connectors.batching import BatchSizer
from factflow.connectors.codec import decode_body, encode_body
from factflow.connectors.protocol import SourceSpec
from factflow.db import pgqueue
from factflow.db.connection import DbConnection, connect
from factflow.db.repositories.dead_letters import NewDeadLetter, add_dead_letters
from factflow.deadletter import DeadLetter, Undecodable
from factflow.exceptions import ConfigurationError
from factflow.masking import mask_url
from factflow.messages import Message
from factflow.outage import postgres_what

DEFAULT_VISIBILITY_SECONDS = 60.0
CLAIM_LIMIT = 2000
IDLE_WAIT_SECONDS = 0.05


def database_url(url: str | None) -> str:
    resolved = os.path.expandvars(url or os.environ.get("FACTFLOW_DATABASE_URL", ""))
    if not resolved:
        msg = (
            "the postgres queue provider needs a database: set `queue.url` or "
            "FACTFLOW_DATABASE_URL (`factflow db embedded` starts one)"
        )
        raise ConfigurationError(msg)
    return resolved


def _close(conn: DbConnection | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):  # a broken connection may fail to close
            conn.close()


class _PostgresPartition(BrokerSourcePartition[int, None]):
    def __init__(
        self,
        url: str,
        queue: str,
        consumer: str,
        raw: bool,
        visibility: float,
        idle_timeout: float | None,
        sizer: BatchSizer,
    ) -> None:
        super().__init__(self._decode_one, idle_timeout, sizer)
        self._url, self._queue, self._consumer = url, queue, consumer
        self._raw, self._visibility = raw, visibility
        self._conn: DbConnection | None = None

    def __str__(self) -> str:
        return f"postgres queue {self._queue} at {mask_url(self._url)}"

    def _outage_what(self) -> str:
        return postgres_what(self._url)

    def _decode_one(self, received: Received[int]) -> Message | Undecodable:
        return decode_body(
            received.body,
            received.headers,
            raw=self._raw,
            queue=self._queue,
            fallback_id=f"pg-{received.token}",
        )

    def _connect(self) -> None:
        self._conn = connect(self._url)
        pgqueue.listen(self._conn)

    def _fetch(self, limit: int) -> list[Received[int]]:
        assert self._conn is not None
        # claims only what this batch hands out: the rest stay visible to other consumers
        claimed = self._claim(limit)
        if not claimed and pgqueue.wait_for_messages(self._conn, self._queue, IDLE_WAIT_SECONDS):
            claimed = self._claim(limit)
        return [Received(m.id, bytes(m.body), dict(m.headers)) for m in claimed]

    def _claim(self, limit: int) -> list[pgqueue.QueueMessage]:
        assert self._conn is not None
        return pgqueue.claim_batch(
            self._conn,
            self._queue,
            self._consumer,
            limit=limit,
            visibility_timeout=self._visibility,
        )

    def _ack(self, tokens: list[int]) -> None:
        assert self._conn is not None
        pgqueue.ack(self._conn, tokens)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        _close(conn)


class PostgresSource(FixedPartitionedSource[Message | Undecodable, None]):
    """`prefetch`: the most messages one claim takes. Claims are sized so a batch takes
    about a quarter second (connectors/batching.py), and an epoch must end well within the
    visibility timeout, or its leases expire and another consumer gets them too."""

    def __init__(
        self,
        queue: str,
        *,
        url: str | None = None,
        raw: bool = False,
        consumers: int = 1,
        visibility_timeout: float = DEFAULT_VISIBILITY_SECONDS,
        idle_timeout: float | None = None,
        prefetch: int = CLAIM_LIMIT,
        min_batch: int = 1,
    ) -> None:
        if consumers < 1 or prefetch < 1:
            msg = f"consumers and prefetch must be >= 1, got {consumers} and {prefetch}"
            raise ValueError(msg)
        self.queue, self.url, self.raw = queue, database_url(url), raw
        self.consumers, self.visibility_timeout = consumers, visibility_timeout
        self.idle_timeout, self.prefetch, self.min_batch = idle_timeout, prefetch, min_batch

    def list_parts(self) -> list[str]:
        return [str(k) for k in range(self.consumers)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _PostgresPartition:
        consumer = f"{socket.gethostname()}-{os.getpid()}-{for_part}-{uuid.uuid4().hex[:8]}"
        return _PostgresPartition(
            self.url,
            self.queue,
            consumer,
            self.raw,
            self.visibility_timeout,
            self.idle_timeout,
            BatchSizer(self.prefetch, minimum=self.min_batch),
        )


class _PostgresSinkPartition(BrokerSinkPartition):
    def __init__(self, url: str, queue: str, raw: bool) -> None:
        super().__init__()
        self._url, self._queue, self._raw = url, queue, raw
        self._conn: DbConnection | None = None

    def __str__(self) -> str:
        return f"postgres queue sink {self._queue} at {mask_url(self._url)}"

    def _outage_what(self) -> str:
        return postgres_what(self._url)

    def _connect(self) -> None:
        self._conn = connect(self._url)

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        assert self._conn is not None
        encoded = [encode_body(item, raw=self._raw) for item in items]
        pgqueue.publish_batch(
            self._conn, self._queue, [body for body, _ in encoded], [h for _, h in encoded]
        )

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        _close(conn)


class PostgresSink(DynamicSink[Message | DeadLetter]):
    def __init__(self, queue: str, *, url: str | None = None, raw: bool = False) -> None:
        self.queue, self.url, self.raw = queue, database_url(url), raw

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PostgresSinkPartition:
        return _PostgresSinkPartition(self.url, self.queue, self.raw)


class _DeadLetterTablePartition(BrokerSinkPartition):
    def __init__(self, url: str, execution_id: uuid.UUID, inbound: dict[str, str]) -> None:
        super().__init__()
        self._url, self._execution_id, self._inbound = url, execution_id, inbound
        self._conn: DbConnection | None = None

    def __str__(self) -> str:
        return f"dead-letter table at {mask_url(self._url)}"

    def _outage_what(self) -> str:
        return postgres_what(self._url)

    def _connect(self) -> None:
        self._conn = connect(self._url)

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        assert self._conn is not None
        letters = [
            NewDeadLetter(
                execution_id=self._execution_id,
                route_id=item.route_id,
                queue=self._inbound.get(item.route_id, item.route_id),
                message=item.message,
                error=item.error,
                error_type=item.error_type,
                attempts=item.attempts,
                reason=item.reason,
                lineage_id=uuid.UUID(item.lineage_id) if item.lineage_id else None,
            )
            for item in items
            if isinstance(item, DeadLetter)
        ]
        add_dead_letters(self._conn, letters)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        _close(conn)


class DeadLetterTableSink(DynamicSink[Message | DeadLetter]):
    """Dead letters into the `dead_letters` table; a redrive puts them back on `inbound`."""

    def __init__(self, url: str, execution_id: uuid.UUID, inbound: dict[str, str]) -> None:
        self.url, self.execution_id, self.inbound = url, execution_id, inbound

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _DeadLetterTablePartition:
        return _DeadLetterTablePartition(self.url, self.execution_id, self.inbound)


def make_source(spec: SourceSpec, settings: QueueSettings) -> PostgresSource:
    options = settings.options
    return PostgresSource(
        spec.queue,
        url=settings.url,
        raw=spec.raw,
        consumers=spec.consumers(options),
        visibility_timeout=float(options.get("visibility_timeout", DEFAULT_VISIBILITY_SECONDS)),
        idle_timeout=spec.idle_timeout,
        min_batch=spec.min_batch,
        prefetch=int(options.get("prefetch", spec.prefetch or CLAIM_LIMIT)),
    )


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> PostgresSink:
    return PostgresSink(queue, url=settings.url, raw=raw)

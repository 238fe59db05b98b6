"""RabbitMQ (AMQP 0-9-1) with aio-pika: manual acks after the epoch, publisher confirms.

Each source partition is one consumer (its own connection and channel, prefetch covering
an epoch); all partitions of all workers and processes compete for the queue. Acks go out
once per epoch as one `multiple` ack of the highest sealed delivery tag: tags grow
monotonically on a channel, and everything delivered before the seal is sealed.

aio-pika opens connections and declares queues; deliveries, acks and publishes go through
its underlying aiormq channel, which costs about half as much CPU per message (no
IncomingMessage / Message wrappers). A batch is published as a few large socket writes
(`_publish_frames`: aiormq's own bookkeeping for confirms, without its per-message lock,
timeout and write), and `write_batch` returns once the broker confirmed every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import datetime
from typing import Any, cast

import aio_pika
import aiormq.abc
from aio_pika.abc import AbstractConnection
from aio_pika.connection import make_url
from aiormq.abc import ChannelFrame
from bytewax.inputs import FixedPartitionedSource
from bytewax.outputs import DynamicSink
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from factflow.compiler.plan import QueueSettings
from factflow.connectors.base import BrokerSinkPartition, BrokerSourcePartition, Received
from factflow.connectors.batching import BatchSizer
from factflow.connectors.codec import decode_body, encode_body
from factflow.connectors.protocol import SourceSpec
from factflow.deadletter import DeadLetter, Original, Undecodable
from factflow.ids import record_position
from factflow.loop import worker_loop
from factflow.masking import mask_url
from factflow.messages import Message

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_PREFETCH = 5000
FETCH_WAIT_SECONDS = 0.05
MAX_BATCH = 5000
FRAMES_PER_WRITE = 500  # messages per socket write when publishing
CLOSE_SECONDS = 5.0
LAG_TIMEOUT_SECONDS = 1.0
"""How long a lag sample (a passive declare) may hold up the worker."""
_BATCH_ATTRIBUTES = ("lock", "delivery_tag", "confirmations", "write_queue", "number")


def rabbitmq_url(url: str | None) -> str:
    """The URL from the pipeline (with ${ENV} expanded) or FACTFLOW_RABBITMQ_URL."""
    return os.path.expandvars(url or os.environ.get("FACTFLOW_RABBITMQ_URL", DEFAULT_URL))


def _close_quietly(connection: AbstractConnection | None) -> None:
    if connection is not None and not connection.is_closed:
        # closing a broken connection may fail too; there is nothing left to do then.
        # On the loop it was opened on: a partition may be closed from another thread
        # than the one that connected it, whose own loop cannot close it.
        with contextlib.suppress(Exception):
            loop = cast(asyncio.AbstractEventLoop, getattr(connection, "loop", None))
            if loop is None or loop.is_closed():
                return
            asyncio.run_coroutine_threadsafe(connection.close(), loop).result(CLOSE_SECONDS)


async def open_connection(url: str, timeout: float | None = None) -> AbstractConnection:
    """`aio_pika.connect` without its leak: when the connect fails, aio_pika drops its
    Connection unclosed, and that one's __del__ then schedules the close on whatever loop
    the garbage collector's thread has (a stray loop that warns at exit)."""
    connection = aio_pika.Connection(make_url(url))
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            await connection.close()
        raise
    return connection


@contextlib.asynccontextmanager
async def _closed_on_failure(connection: AbstractConnection) -> AsyncIterator[None]:
    """Closes `connection` if setting it up fails: each retry of a failed connect opens
    a new one, and a dropped one stays open at the broker until garbage collection."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await connection.close()
        raise


class _RabbitPartition(BrokerSourcePartition[int, None]):
    def __init__(
        self,
        url: str,
        queue: str,
        prefetch: int,
        durable: bool,
        raw: bool,
        idle_timeout: float | None,
        sizer: BatchSizer,
    ) -> None:
        super().__init__(self._decode_one, idle_timeout, sizer)
        self._url, self._queue, self._prefetch, self._durable, self._raw = (
            url, queue, prefetch, durable, raw,
        )  # fmt: skip
        self._connection: AbstractConnection | None = None
        self._channel: aiormq.Channel | None = None
        self._buffer: list[aiormq.abc.DeliveredMessage] = []
        self._arrived: asyncio.Event | None = None

    def __str__(self) -> str:
        return f"rabbitmq source {self._queue} at {mask_url(self._url)}"

    def _decode_one(self, received: Received[int]) -> Message | Undecodable:
        headers = received.headers
        return decode_body(
            received.body,
            headers,
            raw=self._raw,
            queue=self._queue,
            # delivery tags count per channel: without a message id the id comes from
            # the content and what the publisher set, the same on every redelivery
            fallback_id=record_position(
                headers.get("amqp-message-id"),
                received.body,
                headers.get("amqp-correlation-id"),
                headers.get("amqp-timestamp"),
            ),
        )

    def _outage_what(self) -> str:
        return f"rabbitmq at {mask_url(self._url)}"

    def _connect(self) -> None:
        worker_loop().run(self._aconnect())

    async def _aconnect(self) -> None:
        connection = await open_connection(self._url)
        async with _closed_on_failure(connection):
            channel = await connection.channel()
            await channel.declare_queue(self._queue, durable=self._durable)
            raw = cast(aiormq.Channel, await channel.get_underlay_channel())
            await raw.basic_qos(prefetch_count=self._prefetch)
            buffer: list[aiormq.abc.DeliveredMessage] = []
            arrived = asyncio.Event()

            async def delivered(message: aiormq.abc.DeliveredMessage) -> None:
                buffer.append(message)
                arrived.set()

            await raw.basic_consume(self._queue, delivered, no_ack=False)
        self._connection = connection
        self._buffer, self._arrived, self._channel = buffer, arrived, raw

    def _fetch(self, limit: int) -> list[Received[int]]:
        return worker_loop().run(self._afetch(limit))

    async def _afetch(self, limit: int) -> list[Received[int]]:
        assert self._arrived is not None and self._channel is not None
        if self._channel.is_closed or self._connection is None or self._connection.is_closed:
            msg = "connection closed"
            raise ConnectionError(msg)
        if not self._buffer:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), FETCH_WAIT_SECONDS)
            except TimeoutError:
                return []
        # the rest stay buffered, unacked: the ack of a batch's highest tag covers none of
        # them, since tags grow in delivery order
        out, self._buffer[:] = self._buffer[:limit], self._buffer[limit:]
        return [_received(m) for m in out]

    def _ack(self, tokens: list[int]) -> None:
        assert self._channel is not None
        worker_loop().run(_ack_up_to(self._channel, max(tokens)))

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        _close_quietly(connection)

    lag_covers_queue = True  # the partitions are competing consumers of one queue

    def lag(self) -> int | None:
        """The messages ready in the queue (a passive declare), for
        `factflow_source_lag_messages`; those already prefetched by consumers are not
        counted. None when not connected or the broker does not answer in time (the next
        fetch notices a broken connection)."""
        channel = self._channel
        if channel is None or channel.is_closed:
            return None
        try:
            declared = worker_loop().run(_message_count(channel, self._queue))
        except Exception:  # each failure is the fetch's to handle, not the metric's
            return None
        return int(declared.message_count or 0)


async def _message_count(channel: aiormq.Channel, queue: str) -> Any:
    return await asyncio.wait_for(channel.queue_declare(queue, passive=True), LAG_TIMEOUT_SECONDS)


async def _ack_up_to(channel: aiormq.Channel, delivery_tag: int) -> None:
    await channel.basic_ack(delivery_tag, multiple=True)


def _received(message: aiormq.abc.DeliveredMessage) -> Received[int]:
    properties = message.header.properties
    headers: dict[str, Any] = dict(properties.headers or {})
    if properties.message_id:
        headers.setdefault("amqp-message-id", properties.message_id)
    if properties.correlation_id:
        headers.setdefault("amqp-correlation-id", properties.correlation_id)
    if properties.timestamp:
        headers.setdefault("amqp-timestamp", properties.timestamp.isoformat())
    tag = int(message.delivery.delivery_tag or 0)  # type: ignore[union-attr]
    return Received(tag, message.body, headers)


class RabbitMQSource(FixedPartitionedSource[Message | Undecodable, None]):
    """`consumers` competing consumer slots on `queue` (spread over all workers)."""

    def __init__(
        self,
        queue: str,
        *,
        url: str | None = None,
        raw: bool = False,
        consumers: int = 1,
        prefetch: int = DEFAULT_PREFETCH,
        durable: bool = True,
        idle_timeout: float | None = None,
        min_batch: int = 1,
    ) -> None:
        if consumers < 1 or prefetch < 1:
            msg = f"consumers and prefetch must be >= 1, got {consumers} and {prefetch}"
            raise ValueError(msg)
        self.queue, self.url, self.raw = queue, rabbitmq_url(url), raw
        self.consumers, self.prefetch, self.durable = consumers, prefetch, durable
        self.idle_timeout, self.min_batch = idle_timeout, min_batch

    def list_parts(self) -> list[str]:
        return [str(k) for k in range(self.consumers)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _RabbitPartition:
        return _RabbitPartition(
            self.url,
            self.queue,
            self.prefetch,
            self.durable,
            self.raw,
            self.idle_timeout,
            BatchSizer(min(self.prefetch, MAX_BATCH), minimum=self.min_batch),
        )


class _RabbitSinkPartition(BrokerSinkPartition):
    def __init__(self, url: str, queue: str, raw: bool, durable: bool, exchange: str) -> None:
        super().__init__()
        self._url, self._queue, self._raw, self._durable = url, queue, raw, durable
        self._exchange_name = exchange
        self._connection: AbstractConnection | None = None
        self._channel: aiormq.Channel | None = None

    def __str__(self) -> str:
        return f"rabbitmq sink {self._queue} at {mask_url(self._url)}"

    def _outage_what(self) -> str:
        return f"rabbitmq at {mask_url(self._url)}"

    def _connect(self) -> None:
        worker_loop().run(self._aconnect())

    async def _aconnect(self) -> None:
        connection = await open_connection(self._url)
        async with _closed_on_failure(connection):
            channel = await connection.channel(publisher_confirms=True)
            if self._exchange_name:
                await channel.get_exchange(self._exchange_name)  # it must exist
            else:
                await channel.declare_queue(self._queue, durable=self._durable)
            underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
        self._connection, self._channel = connection, underlay

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        worker_loop().run(self._apublish(items))

    async def _apublish(self, items: list[Message | DeadLetter]) -> None:
        channel = self._channel
        assert channel is not None
        mode = 2 if self._durable else 1  # persistent / transient
        messages = []
        for item in items:
            body, headers = encode_body(item, raw=self._raw)
            message_id = item.message_id if isinstance(item, Message) else None
            replayed: dict[str, Any] = {}
            if isinstance(item, Original):
                # a record replayed as it arrived: its AMQP properties back where they were
                message_id = headers.pop("amqp-message-id", None)
                replayed["correlation_id"] = headers.pop("amqp-correlation-id", None)
                if (timestamp := headers.pop("amqp-timestamp", None)) is not None:
                    replayed["timestamp"] = datetime.fromisoformat(timestamp)
            properties = Basic.Properties(
                headers=headers,  # type: ignore[arg-type]
                delivery_mode=mode,
                message_id=message_id,
                **replayed,
            )
            messages.append((body, properties))
        confirmations: Sequence[Awaitable[Any]]
        if all(hasattr(channel, a) for a in _BATCH_ATTRIBUTES):
            confirmations = await _publish_frames(
                channel, self._exchange_name, self._queue, messages
            )
        else:  # an aiormq without the attributes used there: one publish per message
            confirmations = [
                channel.basic_publish(
                    body,
                    exchange=self._exchange_name,
                    routing_key=self._queue,
                    properties=properties,
                )
                for body, properties in messages
            ]
        # every confirmation resolves when the broker acks that message; a nack fails it,
        # and the channel closing cancels it
        try:
            await asyncio.gather(*confirmations)
        except asyncio.CancelledError:
            if channel.is_closed:
                msg = "the channel closed before the broker confirmed the batch"
                raise ConnectionError(msg) from None
            raise

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        _close_quietly(connection)


async def _publish_frames(
    channel: Any, exchange: str, routing_key: str, messages: list[tuple[bytes, Any]]
) -> list[asyncio.Future[Any]]:
    """Publish `messages` (body, properties) as aiormq's basic_publish does, but with one
    lock and one socket write per FRAMES_PER_WRITE messages; returns the confirmation
    futures, which aiormq resolves from the broker's acks and fails when the channel
    closes."""
    confirmations: list[asyncio.Future[Any]] = []
    async with channel.lock:
        if channel.is_closed:
            msg = f"{channel!r} closed"
            raise ConnectionError(msg)
        for start in range(0, len(messages), FRAMES_PER_WRITE):
            frames: list[Any] = []
            for body, properties in messages[start : start + FRAMES_PER_WRITE]:
                channel.delivery_tag += 1
                confirmation = channel.create_future()
                channel.confirmations[channel.delivery_tag] = confirmation
                confirmations.append(confirmation)
                frames.append(Basic.Publish(exchange=exchange, routing_key=routing_key))
                frames.append(ContentHeader(properties=properties, body_size=len(body)))
                frames.extend(channel._split_body(body))
            await channel.write_queue.put(ChannelFrame.marshall(channel.number, frames))
    return confirmations


class RabbitMQSink(DynamicSink[Message | DeadLetter]):
    def __init__(
        self,
        queue: str,
        *,
        url: str | None = None,
        raw: bool = False,
        durable: bool = True,
        exchange: str = "",
    ) -> None:
        self.queue, self.url, self.raw = queue, rabbitmq_url(url), raw
        self.durable, self.exchange = durable, exchange

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RabbitSinkPartition:
        return _RabbitSinkPartition(self.url, self.queue, self.raw, self.durable, self.exchange)


def delete_queues(url: str | None, queues: list[str]) -> list[str]:
    """Delete `queues` where they are empty and unused (an execution's scoped queues once
    it drained); returns the ones deleted."""

    async def delete() -> list[str]:
        deleted = []
        async with await open_connection(rabbitmq_url(url)) as connection:
            channel = await connection.channel()
            for queue in queues:
                try:
                    await channel.queue_delete(queue, if_unused=True, if_empty=True)
                except aio_pika.exceptions.ChannelClosed:
                    channel = await connection.channel()  # not empty or in use: keep it
                else:
                    deleted.append(queue)
        return deleted

    return worker_loop().run(delete())


def make_source(spec: SourceSpec, settings: QueueSettings) -> RabbitMQSource:
    options = settings.options
    return RabbitMQSource(
        spec.queue,
        url=settings.url,
        raw=spec.raw,
        consumers=spec.consumers(options),
        prefetch=spec.prefetch_or(options, DEFAULT_PREFETCH),
        durable=bool(options.get("durable", True)),
        idle_timeout=spec.idle_timeout,
        min_batch=spec.min_batch,
    )


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> RabbitMQSink:
    return RabbitMQSink(
        queue,
        url=settings.url,
        raw=raw,
        durable=bool(settings.options.get("durable", True)),
        exchange=str(settings.options.get("exchange", "")),
    )

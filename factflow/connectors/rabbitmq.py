"""RabbitMQ (AMQP 0-9-1) with aio-pika: manual acks after the epoch, publisher confirms.

Each source partition is one consumer (its own connection and channel, prefetch covering
an epoch); all partitions of all workers and processes compete for the queue. Acks go out
once per epoch as one `multiple` ack of the highest sealed delivery tag: tags grow
monotonically on a channel, and everything delivered before the seal is sealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    FieldValue,
)
from bytewax.inputs import FixedPartitionedSource
from bytewax.outputs import DynamicSink

from factflow.connectors.base import BrokerSinkPartition, BrokerSourcePartition, Received, mask_url
from factflow.connectors.codec import decode_body, encode_body
from factflow.dataflows.deadletter import DeadLetter, Undecodable
from factflow.dataflows.loop import worker_loop
from factflow.messages import Message

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_PREFETCH = 5000
FETCH_WAIT_SECONDS = 0.05
MAX_BATCH = 5000


def rabbitmq_url(url: str | None) -> str:
    """The URL from the pipeline (with ${ENV} expanded) or FACTFLOW_RABBITMQ_URL."""
    return os.path.expandvars(url or os.environ.get("FACTFLOW_RABBITMQ_URL", DEFAULT_URL))


def _close_quietly(connection: AbstractConnection | None) -> None:
    if connection is not None and not connection.is_closed:
        # closing a broken connection may fail too; there is nothing left to do then
        with contextlib.suppress(Exception):
            worker_loop().run(connection.close())


class _RabbitPartition(BrokerSourcePartition[AbstractIncomingMessage, None]):
    def __init__(
        self,
        url: str,
        queue: str,
        prefetch: int,
        durable: bool,
        raw: bool,
        idle_timeout: float | None,
    ) -> None:
        super().__init__(self._decode_one, idle_timeout)
        self._url, self._queue, self._prefetch, self._durable, self._raw = (
            url, queue, prefetch, durable, raw,
        )  # fmt: skip
        self._connection: AbstractConnection | None = None
        self._buffer: asyncio.Queue[AbstractIncomingMessage] | None = None

    def __str__(self) -> str:
        return f"rabbitmq source {self._queue} at {mask_url(self._url)}"

    def _decode_one(self, received: Received[AbstractIncomingMessage]) -> Message | Undecodable:
        return decode_body(
            received.body,
            received.headers,
            raw=self._raw,
            queue=self._queue,
            fallback_id=str(received.token.message_id or hash(received.body)),
        )

    def _connect(self) -> None:
        worker_loop().run(self._aconnect())

    async def _aconnect(self) -> None:
        self._connection = await aio_pika.connect(self._url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.declare_queue(self._queue, durable=self._durable)
        buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._buffer = buffer
        await queue.consume(buffer.put, no_ack=False)

    def _fetch(self) -> list[Received[AbstractIncomingMessage]]:
        return worker_loop().run(self._afetch())

    async def _afetch(self) -> list[Received[AbstractIncomingMessage]]:
        assert self._buffer is not None and self._connection is not None
        if self._connection.is_closed:
            msg = "connection closed"
            raise ConnectionError(msg)
        out: list[AbstractIncomingMessage] = []
        if self._buffer.empty():
            try:
                out.append(await asyncio.wait_for(self._buffer.get(), FETCH_WAIT_SECONDS))
            except TimeoutError:
                return []
        while not self._buffer.empty() and len(out) < MAX_BATCH:
            out.append(self._buffer.get_nowait())
        return [Received(m, m.body, dict(m.headers or {})) for m in out]

    def _ack(self, tokens: list[AbstractIncomingMessage]) -> None:
        last = max(tokens, key=lambda m: m.delivery_tag or 0)
        worker_loop().run(last.ack(multiple=True))

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        _close_quietly(connection)


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
    ) -> None:
        if consumers < 1 or prefetch < 1:
            msg = f"consumers and prefetch must be >= 1, got {consumers} and {prefetch}"
            raise ValueError(msg)
        self.queue, self.url, self.raw = queue, rabbitmq_url(url), raw
        self.consumers, self.prefetch, self.durable = consumers, prefetch, durable
        self.idle_timeout = idle_timeout

    def list_parts(self) -> list[str]:
        return [str(k) for k in range(self.consumers)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _RabbitPartition:
        return _RabbitPartition(
            self.url, self.queue, self.prefetch, self.durable, self.raw, self.idle_timeout
        )


class _RabbitSinkPartition(BrokerSinkPartition):
    def __init__(self, url: str, queue: str, raw: bool, durable: bool, exchange: str) -> None:
        super().__init__()
        self._url, self._queue, self._raw, self._durable = url, queue, raw, durable
        self._exchange_name = exchange
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    def __str__(self) -> str:
        return f"rabbitmq sink {self._queue} at {mask_url(self._url)}"

    def _connect(self) -> None:
        worker_loop().run(self._aconnect())

    async def _aconnect(self) -> None:
        self._connection = await aio_pika.connect(self._url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        if not self._exchange_name:
            await self._channel.declare_queue(self._queue, durable=self._durable)

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        worker_loop().run(self._apublish(items))

    async def _apublish(self, items: list[Message | DeadLetter]) -> None:
        assert self._channel is not None
        exchange = (
            await self._channel.get_exchange(self._exchange_name)
            if self._exchange_name
            else self._channel.default_exchange
        )
        mode = aio_pika.DeliveryMode.PERSISTENT if self._durable else None
        publishes = []
        for item in items:
            body, headers = encode_body(item, raw=self._raw)
            message_id = item.message_id if isinstance(item, Message) else None
            amqp_headers: dict[str, FieldValue] = dict(headers)
            amqp = aio_pika.Message(
                body, headers=amqp_headers, delivery_mode=mode, message_id=message_id
            )
            publishes.append(exchange.publish(amqp, routing_key=self._queue))
        # every publish resolves when the broker confirms it
        await asyncio.gather(*publishes)

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        _close_quietly(connection)


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

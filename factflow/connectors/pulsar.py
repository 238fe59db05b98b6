"""Apache Pulsar with pulsar-client: Shared (or Key_Shared) subscriptions, individual
acks after the epoch, sends awaited before `write_batch` returns.

Every consumer slot subscribes with the route's subscription name, so all slots of all
workers and processes share the topic's messages.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import pulsar
from bytewax.inputs import FixedPartitionedSource
from bytewax.outputs import DynamicSink

from factflow.compiler.plan import QueueSettings
from factflow.connectors.base import (
    BrokerSinkPartition,
    BrokerSourcePartition,
    Received,
)
from factflow.connectors.batching import BatchSizer
from factflow.connectors.codec import decode_body, encode_body
from factflow.connectors.protocol import SourceSpec
from factflow.deadletter import DeadLetter, Undecodable
from factflow.masking import mask_url
from factflow.messages import Message

DEFAULT_URL = "pulsar://127.0.0.1:6650"
DEFAULT_PREFETCH = 5000
FETCH_WAIT_MS = 50
MAX_BATCH = 5000
SEND_TIMEOUT_SECONDS = 30.0

_SUBSCRIPTION_TYPES = {
    "shared": pulsar.ConsumerType.Shared,
    "key_shared": pulsar.ConsumerType.KeyShared,
}


def _client(url: str) -> Any:
    # the C++ client logs every connection at INFO to stdout
    logger = pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn)
    return pulsar.Client(url, operation_timeout_seconds=10, logger=logger)


def _close_quietly(client: Any) -> None:
    if client is not None:
        with contextlib.suppress(pulsar.PulsarException):  # already broken: nothing to close
            client.close()


def pulsar_url(url: str | None) -> str:
    return os.path.expandvars(url or os.environ.get("FACTFLOW_PULSAR_URL", DEFAULT_URL))


def consumer_type(name: str) -> Any:
    try:
        return _SUBSCRIPTION_TYPES[name.lower()]
    except KeyError:
        msg = f"Pulsar subscription type must be shared or key_shared, got {name!r}"
        raise ValueError(msg) from None


class _PulsarPartition(BrokerSourcePartition[Any, None]):
    def __init__(self, source: PulsarSource) -> None:
        sizer = BatchSizer(min(source.prefetch, MAX_BATCH), minimum=source.min_batch)
        super().__init__(self._decode_one, source.idle_timeout, sizer)
        self._source = source
        self._client: Any = None
        self._consumer: Any = None

    def __str__(self) -> str:
        return f"pulsar source {self._source.topic} at {mask_url(self._source.url)}"

    def _decode_one(self, received: Received[Any]) -> Message | Undecodable:
        return decode_body(
            received.body,
            received.headers,
            raw=self._source.raw,
            queue=self._source.topic,
            fallback_id=str(received.token.message_id()),
        )

    def _connect(self) -> None:
        source = self._source
        self._client = _client(source.url)
        self._consumer = self._client.subscribe(
            source.topic,
            source.subscription,
            consumer_type=consumer_type(source.subscription_type),
            receiver_queue_size=source.prefetch,
            initial_position=pulsar.InitialPosition.Earliest,
        )

    def _fetch(self, limit: int) -> list[Received[Any]]:
        messages: list[Any] = []
        try:
            messages.append(self._consumer.receive(timeout_millis=FETCH_WAIT_MS))
        except pulsar.Timeout:
            return []
        while len(messages) < limit:  # the rest wait in the receiver queue, unacked
            try:
                messages.append(self._consumer.receive(timeout_millis=0))
            except pulsar.Timeout:
                break
        return [Received(m, m.data(), dict(m.properties())) for m in messages]

    def _ack(self, tokens: list[Any]) -> None:
        for message in tokens:
            self._consumer.acknowledge(message)

    def _disconnect(self) -> None:
        client, self._client, self._consumer = self._client, None, None
        _close_quietly(client)


class PulsarSource(FixedPartitionedSource[Message | Undecodable, None]):
    def __init__(
        self,
        topic: str,
        *,
        subscription: str,
        url: str | None = None,
        raw: bool = False,
        consumers: int = 1,
        prefetch: int = DEFAULT_PREFETCH,
        subscription_type: str = "shared",
        idle_timeout: float | None = None,
        min_batch: int = 1,
    ) -> None:
        if consumers < 1 or prefetch < 1:
            msg = f"consumers and prefetch must be >= 1, got {consumers} and {prefetch}"
            raise ValueError(msg)
        consumer_type(subscription_type)  # reject a bad name before any worker starts
        self.topic, self.subscription, self.url = topic, subscription, pulsar_url(url)
        self.raw, self.consumers, self.prefetch = raw, consumers, prefetch
        self.subscription_type, self.idle_timeout = subscription_type, idle_timeout
        self.min_batch = min_batch

    def list_parts(self) -> list[str]:
        return [str(k) for k in range(self.consumers)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _PulsarPartition:
        return _PulsarPartition(self)


class _PulsarSinkPartition(BrokerSinkPartition):
    def __init__(self, url: str, topic: str, raw: bool) -> None:
        super().__init__()
        self._url, self._topic, self._raw = url, topic, raw
        self._client: Any = None
        self._producer: Any = None

    def __str__(self) -> str:
        return f"pulsar sink {self._topic} at {mask_url(self._url)}"

    def _connect(self) -> None:
        self._client = _client(self._url)
        self._producer = self._client.create_producer(
            self._topic, block_if_queue_full=True, batching_enabled=True
        )

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        done = threading.Semaphore(0)
        failures: list[str] = []

        def sent(result: Any, _message_id: Any) -> None:
            if result != pulsar.Result.Ok:
                failures.append(str(result))
            done.release()

        for item in items:
            body, headers = encode_body(item, raw=self._raw)
            self._producer.send_async(body, sent, properties=headers)
        self._producer.flush()
        for _ in items:
            if not done.acquire(timeout=SEND_TIMEOUT_SECONDS):
                msg = f"{self}: no send result within {SEND_TIMEOUT_SECONDS}s"
                raise ConnectionError(msg)
        if failures:
            msg = f"{self}: {len(failures)} send(s) failed: {failures[0]}"
            raise ConnectionError(msg)

    def _disconnect(self) -> None:
        client, self._client, self._producer = self._client, None, None
        _close_quietly(client)


class PulsarSink(DynamicSink[Message | DeadLetter]):
    def __init__(self, topic: str, *, url: str | None = None, raw: bool = False) -> None:
        self.topic, self.url, self.raw = topic, pulsar_url(url), raw

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PulsarSinkPartition:
        return _PulsarSinkPartition(self.url, self.topic, self.raw)


def make_source(spec: SourceSpec, settings: QueueSettings) -> PulsarSource:
    options = settings.options
    return PulsarSource(
        spec.queue,
        subscription=spec.subscription,
        url=settings.url,
        raw=spec.raw,
        consumers=spec.consumers(options),
        prefetch=spec.prefetch_or(options, DEFAULT_PREFETCH),
        subscription_type=str(options.get("subscription_type", "shared")),
        idle_timeout=spec.idle_timeout,
        min_batch=spec.min_batch,
    )


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> PulsarSink:
    return PulsarSink(queue, url=settings.url, raw=raw)

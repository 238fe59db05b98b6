"""Apache Pulsar with pulsar-client: Shared (or Key_Shared) subscriptions, individual
acks after the epoch, sends awaited before `write_batch` returns.

Every consumer slot subscribes with the route's subscription name, so all slots of all
workers and processes share the topic's messages.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from factflow.connectors.codec import (
    ENVELOPE_HEADERS,
    decode_body,
    decode_envelope,
    encode_body,
    envelope_packer,
)
from factflow.connectors.protocol import SourceSpec
from factflow.deadletter import DeadLetter, Undecodable
from factflow.masking import mask_url
from factflow.messages import Message

DEFAULT_URL = "pulsar://127.0.0.1:6650"
DEFAULT_PREFETCH = 5000
FETCH_WAIT_MS = 50
WATCH_SECONDS = 0.05
"""How often a consumer's connection state is looked at, from a thread of its own: the
worker may be busy in a sink for the whole of a broker outage."""
ACK_FLUSH_SECONDS = 0.3
"""pulsar-client writes grouped acks every 100 ms (and every 1,000 acks); an ack counts
as delivered once its connection outlived that, with room for a busy machine."""
MAX_BATCH = 5000
SEND_TIMEOUT_SECONDS = 30.0
"""The producer's own send timeout: every send ends with its callback, confirmed or failed,
within it (the client resends pending messages by itself after a reconnect until then)."""
SEND_WAIT_SECONDS = SEND_TIMEOUT_SECONDS + 10.0
"""How long `_publish` waits for those callbacks: longer than the producer's send timeout,
so that it never gives up on a send the client still resends (issue 21: a wait as long as
the send timeout gave up on a batch 30 s into an outage that the client stored a moment
later, and the batch went out twice, 998 duplicates)."""
MAX_PENDING_SENDS = 2 * MAX_BATCH
"""How many sends the producer holds unconfirmed: a whole sink batch (Bytewax hands a sink
up to 1,024 items at a time). At the client's default of 1,000, the 1,001st send blocked
the worker until the broker confirmed the first ones: two round trips per batch. What is
pending is bounded by the batch anyway, `_publish` waits for all of it."""
PRODUCER_BATCH_BYTES = 1 << 20
"""The most bytes the producer puts in one batch (one broker entry; the broker's limit is
5 MB): 4,000 envelopes of 250 bytes, a few large messages."""
PRODUCER_BATCH_DELAY_MS = 250
"""The producer's own batch timer, which `_publish`'s flush forestalls: at the client's
10 ms, a batch that takes longer than that to send went out in pieces."""
_OK = pulsar.Result.Ok
_ENVELOPE_PROPERTIES = dict(ENVELOPE_HEADERS)
_MessageBuilder = pulsar._pulsar.MessageBuilder

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


def message_key(message_id: Any) -> tuple[int, int, int, int]:
    """A message's position on its topic (ledger, entry, partition, index in its batch):
    what the broker redelivers it with, on every delivery and after a restart, as a
    hashable key (MessageId is not hashable)."""
    return (
        message_id.ledger_id(),
        message_id.entry_id(),
        message_id.partition(),
        message_id.batch_index(),
    )


def pulsar_url(url: str | None) -> str:
    return os.path.expandvars(url or os.environ.get("FACTFLOW_PULSAR_URL", DEFAULT_URL))


def consumer_type(name: str) -> Any:
    try:
        return _SUBSCRIPTION_TYPES[name.lower()]
    except KeyError:
        msg = f"Pulsar subscription type must be shared or key_shared, got {name!r}"
        raise ValueError(msg) from None


@dataclass
class _Connection:
    """One client and its consumer, with what the watcher saw of the consumer's broker
    connection (the client reconnects by itself and says nothing: `receive()` only times
    out and `acknowledge()` does not raise while the broker is away)."""

    client: Any
    consumer: Any
    dropped: bool = False
    connected_at: float = field(default_factory=time.monotonic)
    """When the watcher last saw the consumer connected."""
    stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        while not self.stop.wait(WATCH_SECONDS):
            if not self.consumer.is_connected():
                self.dropped = True
                return
            self.connected_at = time.monotonic()


class _PulsarPartition(BrokerSourcePartition[Any, None]):
    """Acks are confirmed by the connection staying up: pulsar-client groups acks for up
    to ACK_FLUSH_SECONDS before it writes them, cannot wait for the broker's receipt (its
    Python binding has no ack-receipt setting, and `acknowledge_async` reports the ack
    queued, not received), and drops them silently when the connection goes meanwhile. So
    acked messages count as not done until the watcher saw the consumer connected
    ACK_FLUSH_SECONDS after the acks; on a dropped connection the partition closes the
    client (its receiver queue goes back to the broker) and reconnects, like any lost
    connection (connectors/base.py), counting the unconfirmed acks among the messages it
    expects redelivered.

    The broker redelivers a message with the MessageId it had (its ledger, entry,
    partition and batch index), also after a broker restart, so what the lost connection
    had processed is recognised by `_processed_key` when it comes again and acked instead
    of output twice (issue 21: a restart repeated the whole first epoch, 7,500 of 20,000
    messages, none of whose acks had been sent when the broker went)."""

    def __init__(self, source: PulsarSource) -> None:
        sizer = BatchSizer(min(source.prefetch, MAX_BATCH), minimum=source.min_batch)
        super().__init__(self._decode_one, source.idle_timeout, sizer)
        self._source = source
        self._connection: _Connection | None = None
        self._unconfirmed: list[tuple[float, list[Any]]] = []

    def __str__(self) -> str:
        return f"pulsar source {self._source.topic} at {mask_url(self._source.url)}"

    def _decode_one(self, received: Received[Any]) -> Message | Undecodable:
        raw = self._source.raw
        if not raw:
            # what factflow publishes: neither the properties nor the fallback id needed
            message = decode_envelope(received.body)
            if message is not None:
                return message
        return decode_body(
            received.body,
            received.token.properties(),  # not read in `_fetch`: see there
            raw=raw,
            queue=self._source.topic,
            fallback_id=str(received.token.message_id()),
        )

    def _processed_key(self, token: Any) -> tuple[int, int, int, int]:
        return message_key(token.message_id())

    def _connect(self) -> None:
        source = self._source
        client = _client(source.url)
        try:
            consumer = client.subscribe(
                source.topic,
                source.subscription,
                consumer_type=consumer_type(source.subscription_type),
                receiver_queue_size=source.prefetch,
                initial_position=pulsar.InitialPosition.Earliest,
            )
        except Exception:
            _close_quietly(client)  # a failed attempt must not leave its client's threads
            raise
        # the library's own consumer: its wrapper re-checks types and re-wraps every
        # message, a few microseconds each
        connection = _Connection(client, consumer._consumer)
        threading.Thread(target=connection.watch, daemon=True, name=f"watch {self}").start()
        self._connection = connection

    def _live(self) -> _Connection:
        """The connection, if it has not dropped since it was made; acks the watcher saw
        the connection outlive are done."""
        connection = self._connection
        if connection is not None:
            self._confirm(connection)
        if connection is None or connection.dropped or not connection.consumer.is_connected():
            msg = "the consumer's broker connection dropped"
            raise ConnectionError(msg)
        return connection

    def _confirm(self, connection: _Connection) -> None:
        """Acks sent ACK_FLUSH_SECONDS before the watcher last saw the connection up
        reached the broker: they are done. Looked at before a drop is acted on, too: the
        worker may have been busy in a sink for a whole outage after its last acks had
        gone out."""
        flushed = connection.connected_at - ACK_FLUSH_SECONDS
        while self._unconfirmed and self._unconfirmed[0][0] <= flushed:
            self._unconfirmed.pop(0)

    def _fetch(self, limit: int) -> list[Received[Any]]:
        consumer = self._live().consumer
        try:
            first = consumer.receive(FETCH_WAIT_MS)
        except pulsar.Timeout:
            return []
        messages = [first]
        while len(messages) < limit:  # the rest wait in the receiver queue, unacked
            try:
                messages.append(consumer.receive(0))
            except pulsar.Timeout:
                break
        # the properties (a dict built from the client's map, ~1.5 us) are read from the
        # message in `_decode_one`, only for a record that is not a factflow envelope
        return [Received(m, m.data(), {}) for m in messages]

    def _ack(self, tokens: list[Any]) -> None:
        acknowledge = self._live().consumer.acknowledge  # if it raises, the ledger counts them
        self._unconfirmed.append((time.monotonic(), tokens))
        for message in tokens:
            acknowledge(message)

    def _lost(self, exc: BaseException) -> None:
        # acks not known to have reached the broker: their messages come again
        for _, tokens in self._unconfirmed:
            self._ledger.delivered(tokens)
        self._unconfirmed = []
        super()._lost(exc)

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.stop.set()
            _close_quietly(connection.client)


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


class _Sends:
    """The send callbacks of one batch: count the broker's confirmations and keep the
    positions of the failed sends, so `_publish` waits once, not once per message, and a
    batch published again sends only what failed. The client calls them from its one I/O
    thread (`io_threads` 1, the default), so the count needs no lock."""

    def __init__(self, expected: int) -> None:
        self.expected, self.done = expected, 0
        self.failed: list[int] = []
        self.first_failure: Any = None
        self.finished = threading.Event()

    def callback(self, index: int) -> Callable[[Any, Any], None]:
        def sent(result: Any, _message_id: Any) -> None:
            if result != _OK:
                self.failed.append(index)
                self.first_failure = self.first_failure or result
            self.done += 1
            if self.done == self.expected:
                self.finished.set()

        return sent


class _PulsarSinkPartition(BrokerSinkPartition):
    def __init__(self, url: str, topic: str, raw: bool) -> None:
        super().__init__()
        self._url, self._topic, self._raw = url, topic, raw
        self._client: Any = None
        self._producer: Any = None
        # the batch `write_batch` publishes again after a failure, and the positions in it
        # the broker did not confirm: the confirmed ones are stored and are not sent twice
        self._unsent: tuple[list[Message | DeadLetter], list[int]] | None = None
        self._pack = envelope_packer()

    def __str__(self) -> str:
        return f"pulsar sink {self._topic} at {mask_url(self._url)}"

    def _connect(self) -> None:
        client = _client(self._url)
        try:
            producer = client.create_producer(
                self._topic,
                block_if_queue_full=True,
                batching_enabled=True,
                send_timeout_millis=int(SEND_TIMEOUT_SECONDS * 1000),
                max_pending_messages=MAX_PENDING_SENDS,
                # a sink batch goes out as few producer batches as its size allows, sent
                # by the flush: confirmations arrive while `_publish` waits, not while it
                # sends (each is a callback that takes the GIL from the sending thread)
                batching_max_messages=MAX_PENDING_SENDS,
                batching_max_allowed_size_in_bytes=PRODUCER_BATCH_BYTES,
                batching_max_publish_delay_ms=PRODUCER_BATCH_DELAY_MS,
            )
        except Exception:
            _close_quietly(client)
            raise
        # the library's own producer: its wrapper's send_async checks ten arguments and
        # builds each message property by property
        self._client, self._producer = client, producer._producer

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        unsent = self._unsent
        indexes = unsent[1] if unsent is not None and unsent[0] is items else range(len(items))
        sends = _Sends(len(indexes))
        send, builder, raw, pack = self._producer.send_async, _MessageBuilder, self._raw, self._pack
        headers: dict[str, str]
        for index in indexes:
            item = items[index]
            if type(item) is Message and not raw:
                # the builder copies the properties: one dict serves every envelope
                body, headers = pack(item.to_envelope()), _ENVELOPE_PROPERTIES
            else:
                body, headers = encode_body(item, raw=raw)
            send(builder().content(body).properties(headers).build(), sends.callback(index))
        self._producer.flush()  # the open producer batch goes now, not after the delay
        if not sends.finished.wait(SEND_WAIT_SECONDS):
            # the client is stuck: which sends it stored is unknown, all go again
            self._unsent = None
            msg = f"{self}: {sends.done} of {len(indexes)} sends ended in {SEND_WAIT_SECONDS}s"
            raise ConnectionError(msg)
        if sends.failed:
            self._unsent = (items, sorted(sends.failed))
            msg = f"{self}: {len(sends.failed)} send(s) failed: {sends.first_failure}"
            raise ConnectionError(msg)
        self._unsent = None

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

"""STOMP 1.2 (ActiveMQ Artemis; RabbitMQ's STOMP plugin too) with stomp.py.

Sources subscribe with `client` acks, which are cumulative: after an epoch one ACK of its
last sealed message acks all of them (each partition has its own connection, on RabbitMQ
one channel for all of its subscriptions, and hands messages out in the order they
arrived, which is the order the broker numbered them in, so the sealed ones are always the
oldest unacked). The ACK asks for a RECEIPT, and the acks count as done only
once it arrived: an ack written into a connection that is dying is known not done, and the
reconnect says how many messages will come again.

RabbitMQ's window is a count (`prefetch-count`), Artemis's bytes. With acks once an epoch,
the count caps a partition near that many messages a second (5000: a relay ran at 4,900
msg/s). So on RabbitMQ a partition that used up its count on messages small enough that
Artemis's window (`prefetch` x WINDOW_BYTES_PER_MESSAGE) would hold more subscribes again
on the same connection for the difference, up to RABBITMQ_MAX_PREFETCH in all
(`UnackedWindow`): its unread messages stay within about the window's bytes. The
subscriptions share the connection's channel, whose cumulative ack of the newest delivery
acks every older one; none is ever unsubscribed (RabbitMQ refuses acks that name a
cancelled subscription). When the messages grow so that the count holds more than twice
the window, the partition reconnects, right after an epoch's ack (nothing it handed out is
unacked then; what it had not read goes back to the queue), with the count it started
with. Each subscription is one more share of a queue that other consumers compete for.

Artemis gives each message a server id, the same on every delivery (its `message-id` and
`ack` headers are `<consumer>,<server id>`): after a lost connection the source recognises
the processed messages that come again and acks them without output (connectors/base.py),
and a raw message's fallback id is that server id. RabbitMQ's `message-id` counts
deliveries: its fallback id is the `amqp-message-id` a publisher set, else the content
(factflow/ids.py).

Sinks write a batch's SEND frames in one socket write and wait for the broker's RECEIPT of
the last frame: a broker processes a connection's frames in order, so that receipt covers
the batch. Bodies are the msgpack envelope, or the payload with `factflow-*` headers (`raw`).
On Artemis each SEND carries a duplicate id (`_AMQ_DUPL_ID`, one per message of a batch):
a batch sent again after its receipt was lost (the broker went away after storing it) is
dropped by the broker's duplicate detection, not stored twice.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import stomp
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
from factflow.ids import record_position
from factflow.masking import mask_url
from factflow.messages import Message

log = logging.getLogger(__name__)

DEFAULT_URL = "stomp://artemis:artemis@127.0.0.1:61614"
DEFAULT_PREFETCH = 5000
RABBITMQ_MAX_PREFETCH = 20_000
"""The most unacked messages a partition widens its RabbitMQ subscriptions to (see above)
when no `options.prefetch` fixes the count."""
RABBITMQ_SERVER = "RabbitMQ"
"""How RabbitMQ's CONNECTED frame's `server` header starts."""
FETCH_WAIT_SECONDS = 0.05
RECEIPT_TIMEOUT_SECONDS = 30.0
MAX_BATCH = 5000
WINDOW_BYTES_PER_MESSAGE = 2048
"""Artemis's consumer window is bytes of unacked messages, not a count: `prefetch` of
these (10 MiB by default). Acks free it once per epoch, so it must hold what the pipeline
reads in about two epochs: at the default that is 40,000 messages of 250 bytes (more than
any STOMP client here reads per second) and 100 of 100 kB; bounded, a large backlog is not
pushed into one consumer's memory, and competing consumers share it."""
WRITE_CHUNK_BYTES = 1 << 20
"""A sink batch is written in pieces of about this size, not joined whole."""
ARTEMIS_SERVER = "ActiveMQ-Artemis"
"""How Artemis's CONNECTED frame's `server` header starts."""
DUPLICATE_ID_HEADER = "_AMQ_DUPL_ID"
"""Artemis's duplicate detection id: a second message with one it has seen on the address
(its id cache, 20,000 by default) is dropped."""


@dataclass(slots=True)
class UnackedWindow:
    """The count of unacked messages a RabbitMQ partition's subscriptions allow, sized to
    `window_bytes` at the mean size of the messages since the last ack."""

    window_bytes: int
    initial: int
    most: int
    limit: int = field(init=False)
    """The sum of the subscriptions' prefetch-counts."""
    fetched_since_ack: int = 0
    bytes_since_ack: int = 0

    def __post_init__(self) -> None:
        self.limit = self.initial

    def fetched(self, count: int, size: int) -> int:
        """Counts `count` messages of `size` bytes in all; how many more unacked messages
        to subscribe for now: none until the count is used up (the broker sends no more
        before the epoch's ack), then as many more as the window holds at the mean size,
        if that adds at least a quarter."""
        self.fetched_since_ack += count
        self.bytes_since_ack += size
        if self.fetched_since_ack < self.limit or self.limit >= self.most:
            return 0
        size = max(self.bytes_since_ack, 1)
        fits = min(self.most, self.window_bytes * self.fetched_since_ack // size)
        more = fits - self.limit
        return more if more * 4 >= self.limit else 0

    def widened(self, more: int) -> None:
        self.limit += more

    def acked(self) -> bool:
        """After an epoch's ack: whether the messages grew so that the count, widened
        before, holds more than twice the window at their mean size now."""
        grown = (
            self.limit > self.initial
            and self.fetched_since_ack > 0
            and self.limit * self.bytes_since_ack > 2 * self.window_bytes * self.fetched_since_ack
        )
        self.fetched_since_ack = self.bytes_since_ack = 0
        return grown


@dataclass(frozen=True, slots=True)
class StompEndpoint:
    host: str
    port: int
    user: str | None
    password: str | None
    url: str
    vhost: str = "/"

    @classmethod
    def parse(cls, url: str | None) -> StompEndpoint:
        """`stomp://user:pass@host:port` (${ENV} expanded), or FACTFLOW_STOMP_URL."""
        resolved = os.path.expandvars(url or os.environ.get("FACTFLOW_STOMP_URL", DEFAULT_URL))
        parts = urlsplit(resolved)
        if parts.scheme not in ("stomp", "tcp") or not parts.hostname:
            msg = f"not a STOMP URL (stomp://user:pass@host:port): {mask_url(resolved)}"
            raise ValueError(msg)
        return cls(
            host=parts.hostname,
            port=parts.port or 61613,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            url=resolved,
            vhost=unquote(parts.path) if parts.path not in ("", "/") else "/",
        )

    def connect(self, listener: stomp.ConnectionListener) -> stomp.Connection12:
        # RabbitMQ reads the STOMP host header as its vhost; Artemis ignores it
        # auto_decode=False: bodies stay bytes (stomp.py would decode them as UTF-8 with
        # replacement characters, which corrupts msgpack envelopes)
        conn = stomp.Connection12(
            [(self.host, self.port)], reconnect_attempts_max=1, vhost=self.vhost, auto_decode=False
        )
        conn.set_listener("factflow", listener)
        conn.connect(self.user, self.password, wait=True)
        return conn


def routing_type(destination: str) -> str:
    """Artemis without address prefixes auto-creates `/queue/x` as a MULTICAST address
    (messages sent before a subscriber are dropped, every subscriber gets every message):
    SEND names the routing type in `destination-type`, SUBSCRIBE in `subscription-type`.
    RabbitMQ ignores both."""
    return "MULTICAST" if destination.startswith("/topic/") else "ANYCAST"


class _Inbox(stomp.ConnectionListener):  # type: ignore[misc]
    """Collects frames and receipts from stomp.py's receiver thread."""

    def __init__(self) -> None:
        # a deque and an event rather than a queue.Queue, whose lock and condition cost
        # more per frame than the frame's decoding
        self.frames: deque[Any] = deque()
        self.arrived = threading.Event()
        self.receipts: set[str] = set()
        self.receipt_arrived = threading.Condition()
        self.error: str | None = None
        self.artemis = self.rabbitmq = False

    def on_connected(self, frame: Any) -> None:
        server = str(frame.headers.get("server", ""))
        self.artemis = server.startswith(ARTEMIS_SERVER)
        self.rabbitmq = server.startswith(RABBITMQ_SERVER)

    def on_message(self, frame: Any) -> None:
        self.frames.append(frame)
        # set after the append, so a reader that cleared the event and then found no
        # frame is woken; the lock-taking set is skipped while nobody waits
        if not self.arrived.is_set():
            self.arrived.set()

    def take(self, limit: int, wait: float) -> list[Any]:
        """Up to `limit` frames in arrival order, waiting up to `wait` seconds for the
        first; the rest stay in the inbox."""
        frames = self.frames
        if not frames:
            self.arrived.clear()
            if not frames and not self.arrived.wait(wait):
                return []
        popleft = frames.popleft
        return [popleft() for _ in range(min(limit, len(frames)))]

    def on_receipt(self, frame: Any) -> None:
        with self.receipt_arrived:
            self.receipts.add(frame.headers.get("receipt-id", ""))
            self.receipt_arrived.notify_all()

    def on_error(self, frame: Any) -> None:
        body = (
            frame.body.decode("utf-8", "replace") if isinstance(frame.body, bytes) else frame.body
        )
        self.error = frame.headers.get("message") or body or "STOMP ERROR frame"

    def on_disconnected(self) -> None:
        with self.receipt_arrived:
            self.error = self.error or "disconnected"
            self.receipt_arrived.notify_all()

    def await_receipt(self, receipt: str, what: str) -> None:
        """Until the broker's RECEIPT for `receipt`; a ConnectionError naming `what` when the
        connection failed or none came within RECEIPT_TIMEOUT_SECONDS."""
        with self.receipt_arrived:
            arrived = self.receipt_arrived.wait_for(
                lambda: receipt in self.receipts or self.error is not None,
                timeout=RECEIPT_TIMEOUT_SECONDS,
            )
            if self.error is not None or not arrived:
                msg = f"{what} not confirmed: {self.error or 'no receipt'}"
                raise ConnectionError(msg)
            self.receipts.discard(receipt)


_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"})


def _escape(text: str) -> str:
    """STOMP 1.2 header escaping (names and values)."""
    return text.translate(_ESCAPES)


def header_lines(headers: dict[str, str]) -> bytes:
    """`name:value` lines of STOMP headers, escaped."""
    return "".join(f"{_escape(k)}:{_escape(v)}\n" for k, v in headers.items()).encode()


_ENVELOPE_LINES = header_lines(dict(ENVELOPE_HEADERS))
"""The headers of every envelope a sink sends, as frame lines."""


def _received(frame: Any) -> Received[str]:
    # stomp.py makes a headers dict per frame and keeps no other reference to it
    headers = frame.headers
    body = frame.body
    return Received(
        headers.get("ack") or headers["message-id"],
        body if type(body) is bytes else str(body).encode(),
        headers,
    )


class _StompPartition(BrokerSourcePartition[str, None]):
    def __init__(
        self,
        endpoint: StompEndpoint,
        destination: str,
        prefetch: int,
        raw: bool,
        idle_timeout: float | None,
        sizer: BatchSizer,
        max_prefetch: int | None = None,
    ) -> None:
        super().__init__(self._decode_one, idle_timeout, sizer)
        self._endpoint, self._destination = endpoint, destination
        self._prefetch, self._raw = prefetch, raw
        # a second subscription to a topic would be a second queue of the same messages
        queue = destination.startswith(("/queue/", "/amq/queue/"))
        self._max_prefetch = max(max_prefetch or prefetch, prefetch) if queue else prefetch
        self._conn: stomp.Connection12 | None = None
        self._inbox = _Inbox()
        self._subscription_count = 0
        self._window: UnackedWindow | None = None
        """RabbitMQ's count, where it may widen; None on Artemis, topics, a fixed count."""
        self._more = 0
        """Unacked messages to subscribe for at the next fetch."""
        self._narrow = False
        """Reconnect at the next fetch, with the count the partition started with."""

    def __str__(self) -> str:
        return f"stomp source {self._destination} at {mask_url(self._endpoint.url)}"

    def _decode_one(self, received: Received[str]) -> Message | Undecodable:
        if not self._raw:
            # what factflow publishes: no fallback id needed (a SHA-256 of the body on
            # RabbitMQ), nor the headers
            message = decode_envelope(received.body)
            if message is not None:
                return message
        headers = received.headers
        return decode_body(
            received.body,
            headers,
            raw=self._raw,
            queue=self._destination,
            # the same on every redelivery: Artemis's server id, else what the publisher
            # set and the content (RabbitMQ's `message-id` counts deliveries)
            fallback_id=record_position(
                self._processed_key(received.token) or headers.get("amqp-message-id"),
                received.body,
                headers.get("correlation-id"),
                headers.get("timestamp"),
            ),
        )

    def _processed_key(self, token: str) -> str | None:
        if not self._inbox.artemis:
            return None
        return token.rpartition(",")[2] or None

    def _connect(self) -> None:
        self._inbox = _Inbox()
        self._conn = self._endpoint.connect(self._inbox)
        self._subscription_count, self._more, self._narrow = 0, 0, False
        try:
            self._subscribe(self._prefetch)
        except Exception:
            self._disconnect()  # not left open (with its receiver thread) for the retry
            raise
        widens = self._inbox.rabbitmq and self._max_prefetch > self._prefetch
        self._window = (
            UnackedWindow(
                self._prefetch * WINDOW_BYTES_PER_MESSAGE, self._prefetch, self._max_prefetch
            )
            if widens
            else None
        )

    def _subscribe(self, count: int) -> None:
        assert self._conn is not None
        self._subscription_count += 1
        n = self._subscription_count
        self._conn.subscribe(
            self._destination,
            id="factflow" if n == 1 else f"factflow-{n}",
            ack="client",
            headers={
                "subscription-type": routing_type(self._destination),
                # Artemis's window is bytes (it ignores prefetch-count), RabbitMQ's a count
                "consumer-window-size": str(self._prefetch * WINDOW_BYTES_PER_MESSAGE),
                "prefetch-count": str(count),
            },
        )

    def _fetch(self, limit: int) -> list[Received[str]]:
        if self._conn is None or not self._conn.is_connected():
            msg = self._inbox.error or "not connected"
            raise ConnectionError(msg)
        # before anything is taken: a failing SUBSCRIBE or reconnect then loses no record
        self._resize()
        # the rest wait in the inbox, unacked
        received = [_received(f) for f in self._inbox.take(limit, FETCH_WAIT_SECONDS)]
        window = self._window
        if received and window is not None:
            self._more = window.fetched(len(received), sum(len(r.body) for r in received))
        return received

    def _resize(self) -> None:
        """What the last fetch or ack decided about RabbitMQ's count."""
        window = self._window
        if window is None:
            return
        if self._narrow:
            # only ever set by the ack just before this fetch: nothing handed out is unacked
            log.info("%s: messages grew: back to %d unacked messages", self, window.initial)
            self._disconnect()
            self._connect()
        elif self._more:
            log.info(
                "%s: %d unacked messages (was %d)", self, window.limit + self._more, window.limit
            )
            self._subscribe(self._more)
            window.widened(self._more)
            self._more = 0

    def _ack(self, tokens: list[str]) -> None:
        assert self._conn is not None
        receipt = uuid.uuid4().hex
        # cumulative (`client` mode): the newest acks all before it on the connection's
        # channel (RabbitMQ) or this subscription (Artemis)
        self._conn.ack(tokens[-1], receipt=receipt)
        self._inbox.await_receipt(receipt, f"{self}: acks of {len(tokens)} messages")
        if self._window is not None:
            self._narrow = self._window.acked()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.is_connected():
            conn.disconnect()


class StompSource(FixedPartitionedSource[Message | Undecodable, None]):
    """`consumers` competing subscriptions on `destination` (`/queue/...`, `/topic/...`)."""

    def __init__(
        self,
        destination: str,
        *,
        url: str | None = None,
        raw: bool = False,
        consumers: int = 1,
        prefetch: int = DEFAULT_PREFETCH,
        max_prefetch: int = RABBITMQ_MAX_PREFETCH,
        idle_timeout: float | None = None,
        min_batch: int = 1,
    ) -> None:
        """`prefetch`: Artemis's window (x WINDOW_BYTES_PER_MESSAGE) and RabbitMQ's count of
        unacked messages, which widens up to `max_prefetch` for small messages."""
        if consumers < 1 or prefetch < 1:
            msg = f"consumers and prefetch must be >= 1, got {consumers} and {prefetch}"
            raise ValueError(msg)
        self.endpoint = StompEndpoint.parse(url)
        self.destination, self.raw = destination, raw
        self.consumers, self.prefetch, self.idle_timeout = consumers, prefetch, idle_timeout
        self.max_prefetch = max_prefetch
        self.min_batch = min_batch

    def list_parts(self) -> list[str]:
        return [str(k) for k in range(self.consumers)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _StompPartition:
        return _StompPartition(
            self.endpoint,
            self.destination,
            self.prefetch,
            self.raw,
            self.idle_timeout,
            # at most `prefetch` a batch: Artemis ignores prefetch-count (its window is bytes)
            BatchSizer(min(self.prefetch, MAX_BATCH), minimum=self.min_batch),
            self.max_prefetch,
        )


class _StompSinkPartition(BrokerSinkPartition):
    def __init__(self, endpoint: StompEndpoint, destination: str, raw: bool) -> None:
        super().__init__()
        self._endpoint, self._destination, self._raw = endpoint, destination, raw
        self._routing = routing_type(destination)
        self._conn: stomp.Connection12 | None = None
        self._inbox = _Inbox()
        self._batch_key = ""
        self._pack = envelope_packer()

    def __str__(self) -> str:
        return f"stomp sink {self._destination} at {mask_url(self._endpoint.url)}"

    def _connect(self) -> None:
        self._inbox = _Inbox()
        self._conn = self._endpoint.connect(self._inbox)

    def write_batch(self, items: list[Message | DeadLetter]) -> None:
        # one key for the batch's publishes: every retry of it sends the same duplicate ids
        self._batch_key = uuid.uuid4().hex
        super().write_batch(items)

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        """The batch's SEND frames in a few large socket writes, then the RECEIPT of the
        last one. Each frame is a prefix shared by the batch (destination, persistence,
        routing type), its length, its own headers and the body: for an envelope, no
        header dict or escaping per message (stomp.py's `send` costs a socket write and
        a header dict walk per frame)."""
        assert self._conn is not None
        transport, raw, pack = self._conn.transport, self._raw, self._pack
        receipt = uuid.uuid4().hex
        # Artemis's duplicate ids: the batch's key and the frame's index in the batch
        duplicate = f"{DUPLICATE_ID_HEADER}:{self._batch_key}:".encode()
        artemis = self._inbox.artemis
        prefix = (
            f"SEND\ndestination:{_escape(self._destination)}\n"
            f"persistent:true\ndestination-type:{self._routing}\ncontent-length:"
        ).encode()
        last = len(items) - 1
        pending: list[bytes] = []
        size = 0
        for index, item in enumerate(items):
            if type(item) is Message and not raw:
                body, lines = pack(item.to_envelope()), _ENVELOPE_LINES
            else:
                body, headers = encode_body(item, raw=raw)
                headers.pop("persistent", None)  # the prefix's, and a header counts once
                headers.pop("destination-type", None)
                lines = header_lines(headers)
            pending += (prefix, b"%d\n" % len(body), lines)
            if artemis:
                pending += (duplicate, b"%d\n" % index)
            if index == last:
                pending.append(b"receipt:%s\n" % receipt.encode())
            pending += (b"\n", body, b"\0")
            size += len(prefix) + len(lines) + len(body) + 64
            if size >= WRITE_CHUNK_BYTES or index == last:
                transport.send(b"".join(pending))
                pending, size = [], 0
        self._inbox.await_receipt(receipt, f"{self}: batch of {len(items)}")

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.is_connected():
            conn.disconnect()


class StompSink(DynamicSink[Message | DeadLetter]):
    def __init__(self, destination: str, *, url: str | None = None, raw: bool = False) -> None:
        self.endpoint = StompEndpoint.parse(url)
        self.destination, self.raw = destination, raw

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StompSinkPartition:
        return _StompSinkPartition(self.endpoint, self.destination, self.raw)


def make_source(spec: SourceSpec, settings: QueueSettings) -> StompSource:
    options = settings.options
    return StompSource(
        spec.queue,
        url=settings.url,
        raw=spec.raw,
        consumers=spec.consumers(options),
        prefetch=spec.prefetch_or(options, DEFAULT_PREFETCH),
        # options.prefetch fixes RabbitMQ's count; a routes' prefetch above the most is kept
        max_prefetch=spec.prefetch_or(options, RABBITMQ_MAX_PREFETCH),
        idle_timeout=spec.idle_timeout,
        min_batch=spec.min_batch,
    )


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> StompSink:
    return StompSink(queue, url=settings.url, raw=raw)

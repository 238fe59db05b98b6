"""Kafka with confluent-kafka: offsets live in the source snapshot, so a resumed run seeks
to them; the consumer group only shows progress to monitoring. Sinks hand a whole batch to
the producer's own buffer, flush once inside `write_batch` and fail the batch on any failed
delivery report (the client reports only failures: no Python call per message).

One source partition per topic partition (spread over all workers and processes).

Outages: librdkafka reconnects by itself, so a broker that goes away only makes the
consumer return nothing and the producer's flush wait. Both notice it (the client's error
callback, a flush that does not finish, a watermark query that times out), log a WARNING
"waiting for kafka since ..." and keep waiting (the source does not count the outage as
idleness); past the outage limit (FACTFLOW_OUTAGE_LIMIT_SECONDS, factflow/outage.py) they
raise, and the run fails, resumable: nothing unconfirmed was acked (the source's offsets
live in the last completed snapshot).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from factflow.compiler.plan import QueueSettings
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
from factflow.messages import Message
from factflow.outage import Outage
from factflow.outage import limit as outage_limit

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
FETCH_WAIT_SECONDS = 0.05
MAX_BATCH = 5000
METADATA_TIMEOUT_SECONDS = 10.0
FLUSH_STEP_SECONDS = 1.0
"""A sink's flush waits this long at a time, checking the outage limit in between."""
SLOW_FLUSH_SECONDS = 3.0
"""A flush unfinished after this long is waiting for the broker: the WARNING says so."""
PROBE_SECONDS = 1.0
"""During an outage the source asks for the partition's watermarks at most this often: an
answer means the broker is back."""
PROBE_TIMEOUT_SECONDS = 0.25
"""How long such a probe blocks the worker (whose other steps wait meanwhile)."""
IDLE_CHECK_TIMEOUT_SECONDS = 2.0
"""How long the check that an idle partition was read to its end waits for the broker."""
CLOSE_FLUSH_SECONDS = 1.0
"""`close()` after a failed batch: what is still queued belongs to an epoch that did not
close, which a resumed run produces again, so the close does not wait for it."""
_BROKER_DOWN = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._TIMED_OUT,
}
"""Client error codes that mean the broker cannot be reached (librdkafka keeps retrying)."""
_NO_PARTITION = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION}
# librdkafka repeats a failing connection's line every second per client; the outage
# itself is reported once by Outage, so each kind of client line shows once a minute
CLIENT_LOG_REPEAT_SECONDS = 60.0


class _OncePerInterval(logging.Filter):
    """Lets a librdkafka log line through once per interval per (facility, client)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._seconds = seconds
        self._last: dict[tuple[object, ...], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        key, now = args[:2], time.monotonic()
        if now - self._last.get(key, -self._seconds) < self._seconds:
            return False
        self._last[key] = now
        return True


# the clients' own lines go through logging (level, time, JSON when configured) instead
# of straight to stderr; they are handed over inside poll/consume/flush
client_log = logging.getLogger(f"{__name__}.client")
client_log.addFilter(_OncePerInterval(CLIENT_LOG_REPEAT_SECONDS))


_ENVELOPE_HEADERS = [(k, v.encode()) for k, v in ENVELOPE_HEADERS.items()]
"""As the client takes them (a dict or a list), shared by every envelope it produces; the
values as bytes, which the client copies as they are (a str it encodes per message)."""


def bootstrap_servers(url: str | None) -> str:
    """`kafka://host:port[,host:port]` or `host:port`, else FACTFLOW_KAFKA_BOOTSTRAP."""
    value = url or os.environ.get("FACTFLOW_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP)
    return os.path.expandvars(value).removeprefix("kafka://").rstrip("/")


def _headers(raw: Any) -> dict[str, Any]:
    pairs: list[tuple[str, Any]] = list(raw or [])
    return {str(k): v.decode() if isinstance(v, bytes) else v for k, v in pairs}


class _KafkaPartition(StatefulSourcePartition[Message | Undecodable, int]):
    def __init__(self, source: KafkaSource, partition: int, offset: int | None) -> None:
        self._source, self._partition = source, partition
        self._where = TopicPartition(source.topic, partition)
        self._outage = Outage(f"kafka at {source.servers}", queue=source.topic)
        self._fatal: str | None = None
        self._down: str | None = None
        self._consumer = Consumer(
            {
                "bootstrap.servers": source.servers,
                "group.id": source.group,
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "error_cb": self._on_error,
                "logger": client_log,
            }
        )
        start = OFFSET_BEGINNING if offset is None else offset
        self._consumer.assign([TopicPartition(source.topic, partition, start)])
        self._next: int | None = offset
        self._last_message_at = time.monotonic()
        self._probed_at = 0.0
        self._sizer = BatchSizer(source.max_batch, minimum=source.min_batch)

    def _on_error(self, error: KafkaError) -> None:
        # called by the client inside consume(), on this thread; next_batch acts on it
        if error.fatal():
            self._fatal = error.str()
        elif error.code() in _BROKER_DOWN:
            self._down = error.str()

    def next_batch(self) -> list[Message | Undecodable]:
        # the client keeps what it fetched beyond the limit; the snapshot's offset covers
        # only what was handed out, so a resume reads the rest again
        records = self._consumer.consume(
            num_messages=self._sizer.limit(), timeout=FETCH_WAIT_SECONDS
        )
        if self._fatal is not None:
            msg = f"kafka {self._source.topic}[{self._partition}]: {self._fatal}"
            raise ConnectionError(msg)
        batch = self._decode(records)
        down, self._down = self._down, None
        if batch:
            self._last_message_at = time.monotonic()
            self._outage.recovered()
        elif down is not None and not self._outage.failing:
            self._outage.failed(down)
        elif self._outage.failing:
            # not idleness: the idle timeout counts from the broker's return
            self._last_message_at = time.monotonic()
            self._probe()
        elif self._idle() and self._at_end():
            raise StopIteration
        self._sizer.handed_out(len(batch))
        return batch

    def _decode(self, records: list[Any]) -> list[Message | Undecodable]:
        """The batch's messages; advances the next offset past the last record read. A
        msgpack envelope, what factflow publishes, is decoded without its headers (built
        as a dict per record only for the records that need them)."""
        source, partition = self._source, self._partition
        batch: list[Message | Undecodable] = []
        append, envelope = batch.append, None if source.raw else decode_envelope
        last: Any = None
        for record in records:
            error = record.error()
            if error is not None:
                if error.fatal():
                    msg = f"kafka {source.topic}[{partition}]: {error.str()}"
                    raise ConnectionError(msg)
                continue  # transient (or end of partition): librdkafka retries by itself
            last = record
            body = record.value() or b""
            message: Message | Undecodable | None = None if envelope is None else envelope(body)
            if message is None:
                message = decode_body(
                    body,
                    _headers(record.headers()),
                    raw=source.raw,
                    queue=source.topic,
                    fallback_id=f"{partition}@{record.offset()}",
                )
            append(message)
        if last is not None:
            self._next = last.offset() + 1
        return batch

    def _idle(self) -> bool:
        timeout = self._source.idle_timeout
        return timeout is not None and time.monotonic() - self._last_message_at >= timeout

    def _unread(self, timeout: float) -> int | None:
        """How many records the partition holds beyond what was handed out, or None when
        the broker did not answer in time."""
        try:
            low, high = self._consumer.get_watermark_offsets(
                self._where, timeout=timeout, cached=False
            )
        except KafkaException as exc:
            if exc.args[0].code() in _NO_PARTITION:
                return 0  # not created yet: nothing to read
            self._outage.failed(str(exc.args[0].str()))
            return None
        return int(high) - (self._next if self._next is not None else int(low))

    lag_covers_queue = False  # one topic partition per source partition

    def lag(self) -> int | None:
        """Records not handed out yet: the high watermark of the consumer's last fetch
        minus the next offset (`factflow_source_lag_messages`; no broker round trip)."""
        try:
            low, high = self._consumer.get_watermark_offsets(self._where, cached=True)
        except KafkaException:
            return None
        if high < 0:
            return None  # nothing fetched yet
        return max(int(high) - (self._next if self._next is not None else max(int(low), 0)), 0)

    def _probe(self) -> None:
        if time.monotonic() - self._probed_at < PROBE_SECONDS:
            return
        self._probed_at = time.monotonic()
        if self._unread(PROBE_TIMEOUT_SECONDS) is not None:
            self._outage.recovered()

    def _at_end(self) -> bool:
        """Quiet because everything was read, not because the broker went away."""
        unread = self._unread(IDLE_CHECK_TIMEOUT_SECONDS)
        if unread is None:
            return False
        if unread > 0:
            self._last_message_at = time.monotonic()  # the client is still fetching
            return False
        return True

    def snapshot(self) -> int:
        if self._next is not None:
            # for monitoring only: the snapshot, not the group, is where a resume starts
            self._consumer.commit(
                offsets=[TopicPartition(self._source.topic, self._partition, self._next)],
                asynchronous=True,
            )
        return self._next if self._next is not None else 0

    def close(self) -> None:
        self._outage.forget()
        self._consumer.close()


class KafkaSource(FixedPartitionedSource[Message | Undecodable, int]):
    def __init__(
        self,
        topic: str,
        *,
        url: str | None = None,
        group: str = "factflow",
        raw: bool = False,
        idle_timeout: float | None = None,
        max_batch: int = MAX_BATCH,
        partitions: int | None = None,
        min_batch: int = 1,
    ) -> None:
        if max_batch < 1:
            msg = f"prefetch must be >= 1, got {max_batch}"
            raise ValueError(msg)
        self.topic, self.servers, self.group = topic, bootstrap_servers(url), group
        self.raw, self.idle_timeout, self.max_batch = raw, idle_timeout, max_batch
        self.partitions, self.min_batch = partitions, min_batch

    def list_parts(self) -> list[str]:
        if self.partitions is not None:
            ensure_topic(self.servers, self.topic, self.partitions)
        admin = AdminClient({"bootstrap.servers": self.servers})
        metadata = admin.list_topics(topic=self.topic, timeout=METADATA_TIMEOUT_SECONDS)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            # auto-created on first use with the broker's default partition count
            return ["0"]
        return [str(p) for p in sorted(topic.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _KafkaPartition:
        return _KafkaPartition(self, int(for_part), resume_state)


class _KafkaSinkPartition(StatelessSinkPartition[Message | DeadLetter]):
    def __init__(self, servers: str, topic: str, raw: bool) -> None:
        self._topic, self._raw = topic, raw
        self._outage = Outage(f"kafka at {servers}", queue=topic)
        self._failures: list[str] = []
        self._down: str | None = None
        self._producer = Producer(
            {
                "bootstrap.servers": servers,
                "acks": "all",
                "enable.idempotence": True,
                # librdkafka retries a message until the outage limit (and a little):
                # only then does a delivery fail for want of a broker
                "message.timeout.ms": int((outage_limit() + 2 * FLUSH_STEP_SECONDS) * 1000),
                "delivery.report.only.error": True,
                "on_delivery": self._delivered,
                "error_cb": self._on_error,
                "logger": client_log,
            }
        )
        self._pack = envelope_packer()

    def _delivered(self, error: Any, _record: Any) -> None:
        if error is not None:
            self._failures.append(str(error))

    def _on_error(self, error: KafkaError) -> None:
        # a client error alone is no outage (librdkafka also reports idle connections the
        # broker closed): it says why a flush is slow
        if error.code() in _BROKER_DOWN:
            self._down = error.str()

    def write_batch(self, items: list[Message | DeadLetter]) -> None:
        self._failures.clear()
        started = time.monotonic()
        producer, topic, raw, pack = self._producer, self._topic, self._raw, self._pack
        produce = producer.produce
        headers: dict[str, str] | list[tuple[str, bytes]]
        for item in items:
            if type(item) is Message and not raw:
                # the common case without encode_body's dict per message
                body, headers = pack(item.to_envelope()), _ENVELOPE_HEADERS
            else:
                body, headers = encode_body(item, raw=raw)
            key = item.message_id.encode() if isinstance(item, Message) else None
            while True:
                try:
                    produce(topic, body, key=key, headers=headers)  # type: ignore[arg-type]
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    producer.poll(0.1)
                    self._waiting(started)
        # durable before the epoch can close: Bytewax calls nothing on a stateless sink at
        # an epoch's end, so each batch is flushed (and its delivery reports checked)
        while producer.flush(FLUSH_STEP_SECONDS) > 0:
            self._waiting(started)
        self._raise_failures()
        self._outage.recovered()
        self._down = None

    def _waiting(self, started: float) -> None:
        """The batch is not confirmed yet: an outage once it took long; fails past the
        limit or on a failed delivery."""
        self._raise_failures()
        if time.monotonic() - started >= SLOW_FLUSH_SECONDS:
            reason = self._down or "no delivery confirmed"
            self._outage.failed(
                f"kafka sink {self._topic}: {len(self._producer)} unconfirmed; {reason}"
            )

    def _raise_failures(self) -> None:
        if self._failures:
            msg = f"kafka sink {self._topic}: batch not delivered: {self._failures[0]}"
            raise ConnectionError(msg)

    def close(self) -> None:
        self._outage.forget()
        # every batch that returned was flushed: anything left is from one that failed
        if self._producer.flush(CLOSE_FLUSH_SECONDS):
            self._producer.purge()
            self._producer.flush(0)
            log.warning(
                "kafka sink %s: dropped undelivered messages of a failed batch; a resumed "
                "run produces them again",
                self._topic,
            )


class KafkaSink(DynamicSink[Message | DeadLetter]):
    def __init__(
        self,
        topic: str,
        *,
        url: str | None = None,
        raw: bool = False,
        partitions: int | None = None,
    ) -> None:
        self.topic, self.servers, self.raw = topic, bootstrap_servers(url), raw
        self.partitions = partitions

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _KafkaSinkPartition:
        if self.partitions is not None:
            ensure_topic(self.servers, self.topic, self.partitions)
        return _KafkaSinkPartition(self.servers, self.topic, self.raw)


def ensure_topic(servers: str, topic: str, partitions: int) -> None:
    """Create `topic` with `partitions` partitions unless it exists (`options.partitions`);
    an existing topic keeps its own count."""
    admin = AdminClient({"bootstrap.servers": servers})
    # all topics: asking for one by name makes a broker with auto-creation create it
    if topic in admin.list_topics(timeout=METADATA_TIMEOUT_SECONDS).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    try:
        futures[topic].result(METADATA_TIMEOUT_SECONDS)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            msg = f"kafka: cannot create topic {topic} with {partitions} partitions: {exc}"
            raise ConnectionError(msg) from exc


def delete_queues(url: str | None, topics: list[str]) -> list[str]:
    """Delete `topics` (an execution's scoped topics once it drained); returns those
    deleted. Offsets live in the recovery snapshot, so nothing else refers to them."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers(url)})
    deleted = []
    for topic, future in admin.delete_topics(topics, operation_timeout=10).items():
        try:
            future.result(timeout=METADATA_TIMEOUT_SECONDS)
        except Exception:
            continue
        deleted.append(topic)
    return deleted


def make_source(spec: SourceSpec, settings: QueueSettings) -> KafkaSource:
    options = settings.options
    return KafkaSource(
        spec.queue,
        url=settings.url,
        group=spec.subscription,
        raw=spec.raw,
        idle_timeout=spec.idle_timeout,
        min_batch=spec.min_batch,
        max_batch=spec.prefetch_or(options, MAX_BATCH),
        partitions=_partitions(options),
    )


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> KafkaSink:
    return KafkaSink(queue, url=settings.url, raw=raw, partitions=_partitions(settings.options))


def _partitions(options: dict[str, Any]) -> int | None:
    """`options.partitions`: how many partitions new topics get."""
    value = options.get("partitions")
    return None if value is None else int(value)

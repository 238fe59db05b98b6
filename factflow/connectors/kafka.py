"""Kafka with confluent-kafka: offsets live in the source snapshot, so a resumed run seeks
to them; the consumer group only shows progress to monitoring. Sinks flush the producer
inside `write_batch` and check every delivery report.

One source partition per topic partition (spread over all workers and processes).
"""

from __future__ import annotations

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
from factflow.connectors.codec import decode_body, encode_body
from factflow.connectors.protocol import SourceSpec
from factflow.deadletter import DeadLetter, Undecodable
from factflow.messages import Message

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
FETCH_WAIT_SECONDS = 0.05
MAX_BATCH = 5000
FLUSH_TIMEOUT_SECONDS = 30.0
METADATA_TIMEOUT_SECONDS = 10.0


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
        self._consumer = Consumer(
            {
                "bootstrap.servers": source.servers,
                "group.id": source.group,
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        start = OFFSET_BEGINNING if offset is None else offset
        self._consumer.assign([TopicPartition(source.topic, partition, start)])
        self._next: int | None = offset
        self._last_message_at = time.monotonic()
        self._sizer = BatchSizer(source.max_batch, minimum=source.min_batch)

    def next_batch(self) -> list[Message | Undecodable]:
        # the client keeps what it fetched beyond the limit; the snapshot's offset covers
        # only what was handed out, so a resume reads the rest again
        records = self._consumer.consume(
            num_messages=self._sizer.limit(), timeout=FETCH_WAIT_SECONDS
        )
        batch: list[Message | Undecodable] = []
        for record in records:
            error = record.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal():
                    msg = f"kafka {self._source.topic}[{self._partition}]: {error.str()}"
                    raise ConnectionError(msg)
                continue  # transient: librdkafka retries by itself
            headers = _headers(record.headers())
            batch.append(
                decode_body(
                    record.value() or b"",
                    headers,
                    raw=self._source.raw,
                    queue=self._source.topic,
                    fallback_id=f"{self._partition}@{record.offset()}",
                )
            )
            offset = record.offset()
            if offset is not None:
                self._next = offset + 1
        if batch:
            self._last_message_at = time.monotonic()
        elif self._idle():
            raise StopIteration
        self._sizer.handed_out(len(batch))
        return batch

    def _idle(self) -> bool:
        timeout = self._source.idle_timeout
        return timeout is not None and time.monotonic() - self._last_message_at >= timeout

    def snapshot(self) -> int:
        if self._next is not None:
            # for monitoring only: the snapshot, not the group, is where a resume starts
            self._consumer.commit(
                offsets=[TopicPartition(self._source.topic, self._partition, self._next)],
                asynchronous=True,
            )
        return self._next if self._next is not None else 0

    def close(self) -> None:
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
        self._producer = Producer(
            {"bootstrap.servers": servers, "acks": "all", "enable.idempotence": True}
        )

    def write_batch(self, items: list[Message | DeadLetter]) -> None:
        failures: list[str] = []

        def delivered(error: Any, _record: Any) -> None:
            if error is not None:
                failures.append(str(error))

        for item in items:
            body, text_headers = encode_body(item, raw=self._raw)
            headers: dict[str, str | bytes | None] = dict(text_headers)
            key = item.message_id.encode() if isinstance(item, Message) else None
            while True:
                try:
                    self._producer.produce(
                        self._topic, body, key=key, headers=headers, on_delivery=delivered
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)  # local queue full: let deliveries drain
        remaining = self._producer.flush(FLUSH_TIMEOUT_SECONDS)
        if remaining or failures:
            reason = failures[0] if failures else f"{remaining} not delivered in time"
            msg = f"kafka sink {self._topic}: batch not delivered: {reason}"
            raise ConnectionError(msg)

    def close(self) -> None:
        self._producer.flush(FLUSH_TIMEOUT_SECONDS)


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

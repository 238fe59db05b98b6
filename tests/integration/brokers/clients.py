"""Plain broker clients for the broker tests: publish records, collect what a flow wrote.

They speak to each broker with its own client library and know nothing of factflow's
codec, so the tests check the bytes and headers on the wire. Each broker answers at its
FACTFLOW_TEST_* endpoint (`scripts/services.sh env`); `unreachable()` says why a broker
cannot be used, for the skip message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from factflow.connectors.rabbitmq import open_connection

TIMEOUT = 20.0


@dataclass(frozen=True)
class Record:
    """One broker message: its body and its headers (properties), as strings."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def tag() -> str:
    return uuid.uuid4().hex[:10]


class Collector:
    """Drains one queue in a background thread; `records` grows as messages arrive."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, target: Any) -> Collector:
        def run() -> None:
            try:
                target(self)
            except BaseException as exc:  # reported by wait_ready / stop
                self.error = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, daemon=True, name="collector")
        self._thread.start()
        if not self._ready.wait(TIMEOUT):
            msg = "collector did not subscribe in time"
            raise TimeoutError(msg)
        if self.error is not None:
            raise self.error
        return self

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def ready(self) -> None:
        self._ready.set()

    def add(self, record: Record) -> None:
        self.records.append(record)

    def wait_for(self, count: int, timeout: float) -> list[Record]:
        """Until `count` records arrived (or `timeout`), then until none came for 1 s."""
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            if self.error is not None:
                raise self.error
            time.sleep(0.05)
        return self.settle()

    def settle(self, quiet: float = 1.0) -> list[Record]:
        seen, since = len(self.records), time.monotonic()
        while time.monotonic() - since < quiet:
            time.sleep(0.05)
            if len(self.records) != seen:
                seen, since = len(self.records), time.monotonic()
        return list(self.records)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


class Broker(ABC):
    """One broker peer: its pipeline `queue:` block, names, publishing and collecting."""

    name: str
    provider: str

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    @abstractmethod
    def address(self) -> tuple[str, int]: ...

    def unreachable(self) -> str | None:
        host, port = self.address
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError as exc:
            return (
                f"{self.name} not reachable at {host}:{port} ({exc}); "
                f"start it with `scripts/services.sh start`"
            )
        return None

    def queue(self, stem: str) -> str:
        """A queue name in the provider's shape."""
        return stem

    def queue_block(self, options: dict[str, Any] | None = None) -> str:
        opts = f", options: {_flow(options)}" if options else ""
        return f'queue: {{provider: {self.provider}, url: "{self.url}"{opts}}}'

    def prepare(self, queues: list[str], partitions: int = 1) -> None:  # noqa: B027
        """Make the queues exist before anything is published (a no-op where publishing
        or subscribing creates them)."""

    @abstractmethod
    def publish(self, queue: str, records: list[Record]) -> None:
        """Publish durably; returns once the broker confirmed every record."""

    @abstractmethod
    def _collect(self, queue: str, collector: Collector) -> None: ...

    def leftover(self, queue: str, subscription: str) -> int:
        """How many messages a new consumer (on the flow's `subscription` where the broker
        has them) still gets from `queue`: what the flow did not ack. None where the broker
        keeps no acks (Kafka: offsets live in the flow's snapshots)."""
        collector = self.collect(queue)
        try:
            return len(collector.settle(1.5))
        finally:
            collector.stop()

    def collect(self, queue: str) -> Collector:
        return Collector().start(lambda c: self._collect(queue, c))


def _flow(options: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- RabbitMQ (AMQP) ---------------------------------------------------------------------


class RabbitMQ(Broker):
    name = "rabbitmq"
    provider = "rabbitmq"

    def __init__(self) -> None:
        super().__init__(_env("FACTFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 5672

    def prepare(self, queues: list[str], partitions: int = 1) -> None:
        async def declare() -> None:

            async with await open_connection(self.url, timeout=TIMEOUT) as connection:
                channel = await connection.channel()
                for name in queues:
                    await channel.declare_queue(name, durable=True)

        asyncio.run(declare())

    def publish(self, queue: str, records: list[Record]) -> None:
        async def publish() -> None:
            import aio_pika

            async with await open_connection(self.url, timeout=TIMEOUT) as connection:
                channel = await connection.channel(publisher_confirms=True)
                await channel.declare_queue(queue, durable=True)
                for start in range(0, len(records), 1000):
                    await asyncio.gather(
                        *(
                            channel.default_exchange.publish(
                                aio_pika.Message(
                                    r.body,
                                    headers=dict(r.headers),
                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                ),
                                routing_key=queue,
                            )
                            for r in records[start : start + 1000]
                        )
                    )

        asyncio.run(publish())

    def _collect(self, queue: str, collector: Collector) -> None:
        async def consume() -> None:

            async with await open_connection(self.url, timeout=TIMEOUT) as connection:
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=1000)
                declared = await channel.declare_queue(queue, durable=True)

                async def on_message(message: Any) -> None:
                    headers = {k: _text(v) for k, v in (message.headers or {}).items()}
                    collector.add(Record(bytes(message.body), headers))
                    await message.ack()

                await declared.consume(on_message)
                collector.ready()
                while not collector.stopping:
                    await asyncio.sleep(0.05)

        asyncio.run(consume())

    def leftover(self, queue: str, subscription: str) -> int:
        return self.message_count(queue)

    def message_count(self, queue: str) -> int:
        """Ready messages in `queue` (not counting unacked deliveries)."""

        async def count() -> int:

            async with await open_connection(self.url, timeout=TIMEOUT) as connection:
                channel = await connection.channel()
                declared = await channel.declare_queue(queue, durable=True, passive=True)
                return int(declared.declaration_result.message_count or 0)

        return asyncio.run(count())


# --- STOMP (Artemis, RabbitMQ's STOMP plugin) --------------------------------------------


class Stomp(Broker):
    provider = "stomp"

    def __init__(self, name: str, url: str, vhost: str | None) -> None:
        super().__init__(url)
        self.name, self._vhost = name, vhost
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 61613
        self._user, self._password = parts.username, parts.password

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._port

    def queue(self, stem: str) -> str:
        return f"/queue/{stem}"

    def _connect(self, listener: Any) -> Any:
        import stomp

        connection = stomp.Connection12(
            [(self._host, self._port)], vhost=self._vhost, heartbeats=(0, 0), auto_decode=False
        )
        connection.set_listener("test", listener)
        connection.connect(self._user, self._password, wait=True)
        return connection

    def publish(self, queue: str, records: list[Record]) -> None:
        import stomp

        done = threading.Event()
        errors: list[str] = []

        class Listener(stomp.ConnectionListener):  # type: ignore[misc]
            def on_receipt(self, frame: Any) -> None:
                done.set()

            def on_error(self, frame: Any) -> None:
                errors.append(str(frame.headers.get("message") or frame.body))
                done.set()

        connection = self._connect(Listener())
        try:
            for index, record in enumerate(records):
                headers = {"persistent": "true", "destination-type": "ANYCAST", **record.headers}
                if index == len(records) - 1:
                    headers["receipt"] = "last"
                connection.send(queue, record.body, headers=headers)
            assert done.wait(TIMEOUT), f"{self.name}: no receipt for the published batch"
            assert not errors, errors
        finally:
            connection.disconnect()

    def _collect(self, queue: str, collector: Collector) -> None:
        import stomp

        skip = {"destination", "message-id", "subscription", "ack", "content-length"}

        class Listener(stomp.ConnectionListener):  # type: ignore[misc]
            def on_message(self, frame: Any) -> None:
                headers = {k: v for k, v in frame.headers.items() if k not in skip}
                collector.add(Record(bytes(frame.body), headers))

        connection = self._connect(Listener())
        try:
            connection.subscribe(
                queue, id="collector", ack="auto", headers={"subscription-type": "ANYCAST"}
            )
            collector.ready()
            while not collector.stopping:
                time.sleep(0.05)
        finally:
            with contextlib.suppress(Exception):
                connection.disconnect()


def artemis() -> Stomp:
    return Stomp(
        "stomp-artemis",
        _env("FACTFLOW_TEST_STOMP_URL", "stomp://artemis:artemis@127.0.0.1:61614"),
        None,
    )


def rabbitmq_stomp() -> Stomp:
    # RabbitMQ reads the STOMP host header as its vhost: "/" (factflow's default too)
    return Stomp(
        "stomp-rabbitmq",
        _env("FACTFLOW_TEST_RABBITMQ_STOMP_URL", "stomp://guest:guest@127.0.0.1:61613"),
        "/",
    )


# --- Pulsar ------------------------------------------------------------------------------


class Pulsar(Broker):
    name = "pulsar"
    provider = "pulsar"

    def __init__(self) -> None:
        super().__init__(_env("FACTFLOW_TEST_PULSAR_URL", "pulsar://127.0.0.1:6650"))

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 6650

    def queue(self, stem: str) -> str:
        return f"persistent://public/default/{stem}"

    def _client(self) -> Any:
        import pulsar

        return pulsar.Client(
            self.url,
            operation_timeout_seconds=int(TIMEOUT),
            logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error),
        )

    def prepare(self, queues: list[str], partitions: int = 1) -> None:
        # a subscription keeps what is published before the flow subscribes
        import pulsar

        client = self._client()
        try:
            for topic in queues:
                client.subscribe(
                    topic,
                    "test-keep",
                    consumer_type=pulsar.ConsumerType.Shared,
                    initial_position=pulsar.InitialPosition.Earliest,
                ).close()
        finally:
            client.close()

    def publish(self, queue: str, records: list[Record]) -> None:
        import pulsar

        client = self._client()
        try:
            # unbatched: Pulsar (without batch-index acks on the broker) redelivers a whole
            # producer batch when any message of it was not acked, which would blur the
            # duplicate bounds the tests check
            producer = client.create_producer(
                queue, batching_enabled=False, block_if_queue_full=True
            )
            failures: list[str] = []
            done = threading.Semaphore(0)

            def sent(result: Any, _id: Any) -> None:
                if result != pulsar.Result.Ok:
                    failures.append(str(result))
                done.release()

            for record in records:
                producer.send_async(record.body, sent, properties=dict(record.headers))
            producer.flush()
            for _ in records:
                assert done.acquire(timeout=TIMEOUT), "pulsar: a send was not confirmed"
            assert not failures, failures[:3]
        finally:
            client.close()

    def leftover(self, queue: str, subscription: str) -> int:
        import pulsar

        client = self._client()
        try:
            consumer = client.subscribe(
                queue, subscription, consumer_type=pulsar.ConsumerType.Shared
            )
            count = 0
            while True:
                try:
                    consumer.receive(timeout_millis=1500)
                except pulsar.Timeout:
                    return count
                count += 1
        finally:
            client.close()

    def _collect(self, queue: str, collector: Collector) -> None:
        import pulsar

        client = self._client()
        try:
            consumer = client.subscribe(
                queue,
                f"collector-{tag()}",
                consumer_type=pulsar.ConsumerType.Exclusive,
                initial_position=pulsar.InitialPosition.Earliest,
            )
            collector.ready()
            while not collector.stopping:
                try:
                    message = consumer.receive(timeout_millis=50)
                except pulsar.Timeout:
                    continue
                collector.add(Record(message.data(), dict(message.properties())))
                consumer.acknowledge(message)
        finally:
            client.close()


# --- Kafka -------------------------------------------------------------------------------


class Kafka(Broker):
    name = "kafka"
    provider = "kafka"

    def __init__(self) -> None:
        super().__init__(_env("FACTFLOW_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(f"kafka://{self.url.removeprefix('kafka://')}")
        return parts.hostname or "127.0.0.1", parts.port or 9092

    def prepare(self, queues: list[str], partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.url})
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in queues]
        )
        for future in futures.values():
            future.result(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # until every topic's leader is known
            metadata = admin.list_topics(timeout=TIMEOUT)
            topics = [metadata.topics.get(t) for t in queues]
            if all(
                t is not None and t.error is None and len(t.partitions) == partitions
                for t in topics
            ):
                return
            time.sleep(0.1)

    def publish(self, queue: str, records: list[Record]) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.url, "acks": "all", "linger.ms": 5})
        failures: list[str] = []

        def delivered(error: Any, _record: Any) -> None:
            if error is not None:
                failures.append(str(error))

        for index, record in enumerate(records):
            producer.produce(
                queue,
                record.body,
                key=str(index).encode(),
                headers=list(record.headers.items()),
                on_delivery=delivered,
            )
            producer.poll(0)
        assert producer.flush(TIMEOUT) == 0, "kafka: records not delivered"
        assert not failures, failures

    def leftover(self, queue: str, subscription: str) -> int:
        """The group's lag: factflow keeps offsets in its snapshots and commits them to
        the group only for monitoring, so after a finished run the lag must be 0."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.url, "group.id": subscription})
        try:
            metadata = consumer.list_topics(queue, timeout=TIMEOUT)
            partitions = [TopicPartition(queue, p) for p in metadata.topics[queue].partitions]
            committed = consumer.committed(partitions, timeout=TIMEOUT)
            lag = 0
            for part in committed:
                _low, high = consumer.get_watermark_offsets(part, timeout=TIMEOUT)
                lag += high - max(part.offset, 0)
            return lag
        finally:
            consumer.close()

    def _collect(self, queue: str, collector: Collector) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer(
            {"bootstrap.servers": self.url, "group.id": f"collector-{tag()}", "log_level": 0}
        )
        try:
            metadata = consumer.list_topics(queue, timeout=TIMEOUT)
            partitions = sorted(metadata.topics[queue].partitions)
            consumer.assign([TopicPartition(queue, p, OFFSET_BEGINNING) for p in partitions])
            collector.ready()
            while not collector.stopping:
                for message in consumer.consume(500, timeout=0.05):
                    if message.error() is None:
                        headers = {k: _text(v) for k, v in (message.headers() or [])}
                        collector.add(Record(message.value() or b"", headers))
        finally:
            consumer.close()


def all_brokers() -> list[Broker]:
    return [RabbitMQ(), artemis(), rabbitmq_stomp(), Pulsar(), Kafka()]

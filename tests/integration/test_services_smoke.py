"""Smoke round trips against the local services of `scripts/services.sh start`.

One publish-then-consume per broker (S3: put then get), each against whatever answers at
the FACTFLOW_TEST_* endpoint (defaults: `scripts/services.sh env`). A service that does
not answer is skipped, with the reason printed; a service that answers but loses the
message fails.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _url(raw: str, scheme: str) -> tuple[str, int, str | None, str | None]:
    parts = urlsplit(raw if "://" in raw else f"{scheme}://{raw}")
    return parts.hostname or "127.0.0.1", parts.port or 0, parts.username, parts.password


def _require(service: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        reason = (
            f"{service} not reachable at {host}:{port} ({exc}); "
            f"start it with `scripts/services.sh start {service.split()[0]}`"
        )
        print(reason)
        pytest.skip(reason)


def _tag() -> str:
    return uuid.uuid4().hex[:12]


# --- RabbitMQ -------------------------------------------------------------------------


def test_rabbitmq_amqp_round_trip() -> None:
    aio_pika = pytest.importorskip("aio_pika")
    url = _env("FACTFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    host, port, _, _ = _url(url, "amqp")
    _require("rabbitmq", host, port or 5672)

    async def round_trip() -> bytes | None:
        connection = await aio_pika.connect(url, timeout=TIMEOUT)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"factflow-smoke-{_tag()}", exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                message = await queue.get(no_ack=True, fail=False)
                if message is not None:
                    return bytes(message.body)
                await asyncio.sleep(0.05)
        return None

    body = uuid.uuid4().bytes
    assert asyncio.run(asyncio.wait_for(round_trip(), TIMEOUT + 5)) == body


def _stomp_round_trip(service: str, url: str, default_port: int, vhost: str | None) -> None:
    stomp = pytest.importorskip("stomp")
    host, port, user, password = _url(url, "stomp")
    port = port or default_port
    _require(service, host, port)
    body = f"factflow-smoke-{_tag()}"
    received: list[str] = []
    errors: list[str] = []
    done = threading.Event()

    class Listener(stomp.ConnectionListener):  # type: ignore[misc, name-defined]
        def on_message(self, frame: object) -> None:
            received.append(frame.body)  # type: ignore[attr-defined]
            if received[-1] == body:
                done.set()

        def on_error(self, frame: object) -> None:
            errors.append(str(frame.headers.get("message") or frame.body))  # type: ignore[attr-defined]
            done.set()

    connection = stomp.Connection12([(host, port)], vhost=vhost, heartbeats=(0, 0), timeout=TIMEOUT)
    connection.set_listener("smoke", Listener())
    connection.connect(user, password, wait=True)
    try:
        # one fixed queue (RabbitMQ keeps the queues STOMP creates); older bodies are skipped
        destination = "/queue/factflow-smoke"
        connection.subscribe(destination, id="1", ack="auto")
        connection.send(destination, body=body)
        assert done.wait(TIMEOUT), f"{service}: no message back within {TIMEOUT}s"
        assert not errors, errors
        assert body in received
    finally:
        connection.disconnect()


def test_rabbitmq_stomp_round_trip() -> None:
    # RabbitMQ reads the STOMP `host` header as the vhost: it has to be "/"
    url = _env("FACTFLOW_TEST_RABBITMQ_STOMP_URL", "stomp://guest:guest@127.0.0.1:61613")
    _stomp_round_trip("rabbitmq (STOMP)", url, 61613, "/")


# --- Artemis --------------------------------------------------------------------------


def test_artemis_stomp_round_trip() -> None:
    url = _env("FACTFLOW_TEST_STOMP_URL", "stomp://artemis:artemis@127.0.0.1:61614")
    _stomp_round_trip("artemis", url, 61614, None)


def test_artemis_all_protocols_acceptor_speaks_stomp() -> None:
    raw = _env("FACTFLOW_TEST_ARTEMIS_URL", "tcp://artemis:artemis@127.0.0.1:61616")
    _stomp_round_trip("artemis", "stomp://" + raw.split("://", 1)[-1], 61616, None)


# --- Kafka ----------------------------------------------------------------------------


def test_kafka_round_trip_on_a_three_partition_topic() -> None:
    kafka = pytest.importorskip("confluent_kafka")
    admin_mod = pytest.importorskip("confluent_kafka.admin")
    bootstrap = _env("FACTFLOW_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    host, port, _, _ = _url(bootstrap, "kafka")
    _require("kafka", host, port or 9092)
    topic = f"factflow-smoke-{_tag()}"
    admin = admin_mod.AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([admin_mod.NewTopic(topic, num_partitions=3, replication_factor=1)])[
        topic
    ].result(TIMEOUT)
    try:
        producer = kafka.Producer({"bootstrap.servers": bootstrap})
        value = uuid.uuid4().bytes
        producer.produce(topic, value, key=b"k", partition=2)
        assert producer.flush(TIMEOUT) == 0, "produce not acknowledged"
        consumer = kafka.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"factflow-smoke-{_tag()}",
                "auto.offset.reset": "earliest",
            }
        )
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + TIMEOUT
            message = None
            while time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    break
            assert message is not None and not message.error(), "no message back"
            assert (message.value(), message.partition()) == (value, 2)
        finally:
            consumer.close()
        metadata = admin.list_topics(topic, timeout=TIMEOUT)
        assert len(metadata.topics[topic].partitions) == 3
    finally:
        admin.delete_topics([topic])[topic].result(TIMEOUT)


# --- Pulsar ---------------------------------------------------------------------------


def test_pulsar_round_trip() -> None:
    pulsar = pytest.importorskip("pulsar")
    url = _env("FACTFLOW_TEST_PULSAR_URL", "pulsar://127.0.0.1:6650")
    host, port, _, _ = _url(url, "pulsar")
    _require("pulsar", host, port or 6650)
    client = pulsar.Client(
        url,
        operation_timeout_seconds=int(TIMEOUT),
        logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error),
    )
    try:
        topic = f"persistent://public/default/factflow-smoke-{_tag()}"
        consumer = client.subscribe(
            topic, "smoke", initial_position=pulsar.InitialPosition.Earliest
        )
        value = uuid.uuid4().bytes
        client.create_producer(topic).send(value)
        message = consumer.receive(timeout_millis=int(TIMEOUT * 1000))
        consumer.acknowledge(message)
        assert message.data() == value
    finally:
        client.close()


# --- S3 -------------------------------------------------------------------------------


def test_s3_put_get() -> None:
    minio = pytest.importorskip("minio")
    raw = _env("FACTFLOW_TEST_S3_ENDPOINT", "127.0.0.1:9000")
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    _require("s3", parts.hostname or "127.0.0.1", parts.port or 9000)
    client = minio.Minio(
        parts.netloc,
        _env("FACTFLOW_TEST_S3_ACCESS_KEY", "minioadmin"),
        _env("FACTFLOW_TEST_S3_SECRET_KEY", "minioadmin"),
        secure=parts.scheme == "https",
    )
    bucket, key, value = f"factflow-smoke-{_tag()}", "a/b.bin", uuid.uuid4().bytes
    client.make_bucket(bucket)
    try:
        client.put_object(bucket, key, io.BytesIO(value), len(value))
        response = client.get_object(bucket, key)
        try:
            assert response.read() == value
        finally:
            response.close()
            response.release_conn()
    finally:
        for obj in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, obj.object_name)
        client.remove_bucket(bucket)

"""Broker relay throughput: factflow's identity route against a hand-written client loop
with the same guarantee, per broker, same message count.

    python bench/brokers.py [--messages 20000] [--brokers rabbitmq,stomp-artemis,...]

Brokers at the FACTFLOW_TEST_* endpoints of `scripts/services.sh env` (127.0.0.1); one
that does not answer is skipped with the reason. For each broker the input queue is filled
with the same msgpack envelopes (not timed), then each case relays it to an output queue:

  raw loop        one client, this process: fetch a batch (up to BATCH), publish it to the
                  output and wait for the broker's confirmation (AMQP publisher confirms,
                  a STOMP receipt, Pulsar send callbacks after flush, Kafka delivery reports
                  after flush), then ack the batch (one multiple ack / individual acks /
                  synchronous offset commit). The same guarantee as factflow's connectors.
  factflow        `python -m bytewax.run factflow.flow -s 1 -w 1`: one passthrough route
                  (msgpack decode, adapter step, encode), acks once per epoch.
  factflow 2 proc RabbitMQ only: two worker processes, `options.consumers: 2`.

Timing: the raw loop from its first fetch to its last ack. A factflow run is timed as a
process (interpreter start, imports, compile, connect, and the 1 s idle timeout that ends
it); the same pipeline is also run on an empty queue, and msg/s is messages over the
difference, so start-up and the idle wait cancel out. "cpu us/msg" is the client's CPU
time (the raw loop's process over its loop, factflow's worker processes minus the empty
run's) per message: the broker's own CPU is not in it, and it stays meaningful when other
work shares the machine, which msg/s does not. Every case checks that the output
queue holds exactly the input's count afterwards (none lost; no duplicates without
faults). Target: RabbitMQ factflow >= 1.0x the raw loop (exit status 1 when missed).

`--profile DIR` runs each factflow worker under py-spy (`py-spy record -f raw`, all
threads, idle ones left out) and prints, per broker, the functions that take the most of
the samples, on their own and with what they call; the collapsed stacks stay in DIR (for
flamegraph.pl or speedscope). py-spy slows the worker a little: the msg/s of a profiled
run are not the ones to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgpack

REPO_ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000
IDLE_SECONDS = 1
RUN_TIMEOUT = 120.0
RABBITMQ_TARGET = 1.0


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def bodies(count: int) -> list[bytes]:
    """The seed system's envelope, ~250 bytes each."""
    stamp = "2024-01-01T00:00:00.000000+00:00"
    return [
        msgpack.packb(
            {
                "message_id": str(uuid.uuid4()),
                "correlation_id": None,
                "execution_id": None,
                "route_id": None,
                "stage": None,
                "timestamp": stamp,
                "payload": {"i": i, "text": "lorem ipsum dolor sit amet " * 3},
                "metadata": {"source": "bench"},
            }
        )
        for i in range(count)
    ]


class Broker(ABC):
    name: str
    provider: str
    url: str
    host: str
    port: int

    def unreachable(self) -> str | None:
        try:
            socket.create_connection((self.host, self.port), timeout=2).close()
        except OSError as exc:
            return f"{self.host}:{self.port} does not answer ({exc})"
        return None

    def queue(self, stem: str) -> str:
        return stem

    def options(self, consumers: int) -> str:
        return f"{{consumers: {consumers}}}"

    def prepare(self, queues: list[str]) -> None:  # noqa: B027 (a no-op for most)
        """Create the queues where publishing alone would not keep messages."""

    @abstractmethod
    def fill(self, queue: str, data: list[bytes]) -> None: ...

    @abstractmethod
    def count(self, queue: str, expected: int) -> int:
        """Messages in `queue` (consumed and acked here): waits until `expected` or 10 s
        without a new one."""

    @abstractmethod
    def raw_relay(self, source: str, sink: str, total: int) -> float:
        """Relays `total` messages; returns the seconds from the first fetch to the last ack."""


# --- RabbitMQ ------------------------------------------------------------------------------


class RabbitMQ(Broker):
    name = "rabbitmq"
    provider = "rabbitmq"

    def __init__(self) -> None:
        self.url = _env("FACTFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5672

    def prepare(self, queues: list[str]) -> None:
        async def declare() -> None:
            import aio_pika

            async with await aio_pika.connect(self.url) as connection:
                channel = await connection.channel()
                for name in queues:
                    await channel.declare_queue(name, durable=True)

        asyncio.run(declare())

    def fill(self, queue: str, data: list[bytes]) -> None:
        async def fill() -> None:
            import aio_pika

            async with await aio_pika.connect(self.url) as connection:
                channel = await connection.channel(publisher_confirms=True)
                await channel.declare_queue(queue, durable=True)
                persistent = aio_pika.DeliveryMode.PERSISTENT
                headers: dict[str, Any] = {"factflow-format": "envelope"}
                for start in range(0, len(data), 5000):
                    await asyncio.gather(
                        *(
                            channel.default_exchange.publish(
                                aio_pika.Message(body, headers=headers, delivery_mode=persistent),
                                routing_key=queue,
                            )
                            for body in data[start : start + 5000]
                        )
                    )

        asyncio.run(fill())

    def count(self, queue: str, expected: int) -> int:
        async def count() -> int:
            import aio_pika

            async with await aio_pika.connect(self.url) as connection:
                channel = await connection.channel()
                declared = await channel.declare_queue(queue, durable=True)
                total = int(declared.declaration_result.message_count or 0)
                await declared.purge()
                await declared.delete(if_unused=False, if_empty=False)
                return total

        return asyncio.run(count())

    def raw_relay(self, source: str, sink: str, total: int) -> float:
        async def relay() -> float:
            import aio_pika

            async with await aio_pika.connect(self.url) as inbound_connection:
                outbound_connection = await aio_pika.connect(self.url)
                async with outbound_connection:
                    inbound = await inbound_connection.channel()
                    await inbound.set_qos(prefetch_count=5000)
                    outbound = await outbound_connection.channel(publisher_confirms=True)
                    queue = await inbound.declare_queue(source, durable=True)
                    await outbound.declare_queue(sink, durable=True)
                    buffer: asyncio.Queue[Any] = asyncio.Queue()
                    await queue.consume(buffer.put)
                    exchange = outbound.default_exchange
                    persistent = aio_pika.DeliveryMode.PERSISTENT
                    done = 0
                    batch = [await buffer.get()]
                    started = time.perf_counter()
                    while True:
                        while len(batch) < BATCH and not buffer.empty():
                            batch.append(buffer.get_nowait())
                        await asyncio.gather(
                            *(
                                exchange.publish(
                                    aio_pika.Message(
                                        m.body, headers=m.headers, delivery_mode=persistent
                                    ),
                                    routing_key=sink,
                                )
                                for m in batch
                            )
                        )
                        await batch[-1].ack(multiple=True)
                        done += len(batch)
                        if done >= total:
                            return time.perf_counter() - started
                        batch = [await buffer.get()]

        return asyncio.run(relay())


# --- STOMP ---------------------------------------------------------------------------------


class Stomp(Broker):
    provider = "stomp"

    def __init__(self, name: str, url: str, vhost: str | None) -> None:
        self.name, self.url, self.vhost = name, url, vhost
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 61613
        self.user, self.password = parts.username, parts.password

    def queue(self, stem: str) -> str:
        return f"/queue/{stem}"

    def _connect(self, listener: Any) -> Any:
        import stomp

        connection = stomp.Connection12(
            [(self.host, self.port)], vhost=self.vhost, heartbeats=(0, 0), auto_decode=False
        )
        connection.set_listener("bench", listener)
        connection.connect(self.user, self.password, wait=True)
        return connection

    def _listener(self) -> tuple[Any, Any]:
        import queue

        import stomp

        class Listener(stomp.ConnectionListener):  # type: ignore[misc]
            def __init__(self) -> None:
                self.frames: queue.Queue[Any] = queue.Queue()
                self.receipts: queue.Queue[str] = queue.Queue()

            def on_message(self, frame: Any) -> None:
                self.frames.put(frame)

            def on_receipt(self, frame: Any) -> None:
                self.receipts.put(frame.headers.get("receipt-id", ""))

            def on_error(self, frame: Any) -> None:
                self.receipts.put("error: " + str(frame.headers.get("message")))

        listener = Listener()
        return listener, self._connect(listener)

    def _send_batch(self, connection: Any, listener: Any, queue: str, data: list[bytes]) -> None:
        receipt = uuid.uuid4().hex
        last = len(data) - 1
        for index, body in enumerate(data):
            headers = {
                "persistent": "true",
                "destination-type": "ANYCAST",
                "factflow-format": "envelope",
            }
            if index == last:
                headers["receipt"] = receipt
            connection.send(queue, body, headers=headers)
        got = listener.receipts.get(timeout=60)
        assert got == receipt, got

    def fill(self, queue: str, data: list[bytes]) -> None:
        listener, connection = self._listener()
        try:
            for start in range(0, len(data), 5000):
                self._send_batch(connection, listener, queue, data[start : start + 5000])
        finally:
            connection.disconnect()

    def _subscribe(self, connection: Any, queue: str, ack: str) -> None:
        connection.subscribe(
            queue,
            id="bench",
            ack=ack,
            headers={
                "subscription-type": "ANYCAST",
                "consumer-window-size": "-1",
                "prefetch-count": "5000",
            },
        )

    def count(self, queue: str, expected: int) -> int:
        import queue as queue_module

        listener, connection = self._listener()
        try:
            self._subscribe(connection, queue, "auto")
            total = 0
            while True:
                try:
                    listener.frames.get(timeout=10 if total < expected else 1)
                except queue_module.Empty:
                    return total
                total += 1
        finally:
            connection.disconnect()

    def raw_relay(self, source: str, sink: str, total: int) -> float:
        import queue as queue_module

        in_listener, inbound = self._listener()
        out_listener, outbound = self._listener()
        try:
            self._subscribe(inbound, source, "client-individual")
            done = 0
            batch = [in_listener.frames.get(timeout=30)]
            started = time.perf_counter()
            while True:
                while len(batch) < BATCH:
                    try:
                        batch.append(in_listener.frames.get_nowait())
                    except queue_module.Empty:
                        break
                self._send_batch(outbound, out_listener, sink, [f.body for f in batch])
                for frame in batch:
                    inbound.ack(frame.headers["ack"])
                done += len(batch)
                if done >= total:
                    return time.perf_counter() - started
                batch = [in_listener.frames.get(timeout=30)]
        finally:
            inbound.disconnect()
            outbound.disconnect()


def artemis() -> Stomp:
    url = _env("FACTFLOW_TEST_STOMP_URL", "stomp://artemis:artemis@127.0.0.1:61614")
    return Stomp("stomp-artemis", url, None)


def rabbitmq_stomp() -> Stomp:
    url = _env("FACTFLOW_TEST_RABBITMQ_STOMP_URL", "stomp://guest:guest@127.0.0.1:61613")
    return Stomp("stomp-rabbitmq", url, "/")


# --- Pulsar --------------------------------------------------------------------------------


class Pulsar(Broker):
    name = "pulsar"
    provider = "pulsar"

    def __init__(self) -> None:
        self.url = _env("FACTFLOW_TEST_PULSAR_URL", "pulsar://127.0.0.1:6650")
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6650

    def queue(self, stem: str) -> str:
        return f"persistent://public/default/{stem}"

    def _client(self) -> Any:
        import pulsar

        return pulsar.Client(
            self.url,
            operation_timeout_seconds=30,
            logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error),
        )

    def _subscribe(self, client: Any, topic: str, name: str) -> Any:
        import pulsar

        return client.subscribe(
            topic,
            name,
            consumer_type=pulsar.ConsumerType.Shared,
            receiver_queue_size=5000,
            initial_position=pulsar.InitialPosition.Earliest,
        )

    def prepare(self, queues: list[str]) -> None:
        client = self._client()
        try:
            for topic in queues:  # subscriptions that keep what is published before the run
                self._subscribe(client, topic, "bench-count").close()
        finally:
            client.close()

    def _send(self, producer: Any, data: list[bytes]) -> None:
        import pulsar

        done = threading.Semaphore(0)
        failures: list[Any] = []

        def sent(result: Any, _id: Any) -> None:
            if result != pulsar.Result.Ok:
                failures.append(result)
            done.release()

        for body in data:
            producer.send_async(body, sent, properties={"factflow-format": "envelope"})
        producer.flush()
        for _ in data:
            assert done.acquire(timeout=60), "pulsar: send not confirmed"
        assert not failures, failures[:3]

    def fill(self, queue: str, data: list[bytes]) -> None:
        client = self._client()
        try:
            producer = client.create_producer(
                queue, batching_enabled=True, block_if_queue_full=True
            )
            for start in range(0, len(data), 5000):
                self._send(producer, data[start : start + 5000])
        finally:
            client.close()

    def count(self, queue: str, expected: int) -> int:
        import pulsar

        client = self._client()
        try:
            consumer = self._subscribe(client, queue, "bench-count")
            total = 0
            while True:
                try:
                    message = consumer.receive(timeout_millis=10000 if total < expected else 1000)
                except pulsar.Timeout:
                    return total
                consumer.acknowledge(message)
                total += 1
        finally:
            client.close()

    def raw_relay(self, source: str, sink: str, total: int) -> float:
        import pulsar

        client = self._client()
        try:
            consumer = self._subscribe(client, source, "bench-raw")
            producer = client.create_producer(sink, batching_enabled=True, block_if_queue_full=True)
            done = 0
            batch = [consumer.receive(timeout_millis=30000)]
            started = time.perf_counter()
            while True:
                while len(batch) < BATCH:
                    try:
                        batch.append(consumer.receive(timeout_millis=0))
                    except pulsar.Timeout:
                        break
                self._send(producer, [m.data() for m in batch])
                for message in batch:
                    consumer.acknowledge(message)
                done += len(batch)
                if done >= total:
                    return time.perf_counter() - started
                batch = [consumer.receive(timeout_millis=30000)]
        finally:
            client.close()


# --- Kafka ---------------------------------------------------------------------------------


class Kafka(Broker):
    name = "kafka"
    provider = "kafka"

    def __init__(self) -> None:
        self.url = _env("FACTFLOW_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
        parts = urlsplit(f"kafka://{self.url.removeprefix('kafka://')}")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 9092

    def prepare(self, queues: list[str]) -> None:
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic

        admin = AdminClient({"bootstrap.servers": self.url})
        for future in admin.create_topics([NewTopic(t, 1, 1) for t in queues]).values():
            future.result(30)

    def _producer(self) -> Any:
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.url, "acks": "all", "enable.idempotence": True})

    def _produce(self, producer: Any, topic: str, data: list[bytes]) -> None:
        failures: list[Any] = []

        def delivered(error: Any, _record: Any) -> None:
            if error is not None:
                failures.append(error)

        headers = {"factflow-format": "envelope"}
        for body in data:
            while True:
                try:
                    producer.produce(topic, body, headers=headers, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)
        assert producer.flush(60) == 0 and not failures, failures[:3]

    def fill(self, queue: str, data: list[bytes]) -> None:
        producer = self._producer()
        for start in range(0, len(data), 5000):
            self._produce(producer, queue, data[start : start + 5000])

    def _consumer(self, group: str) -> Any:
        from confluent_kafka import Consumer

        return Consumer(
            {
                "bootstrap.servers": self.url,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )

    def count(self, queue: str, expected: int) -> int:
        consumer = self._consumer(f"bench-count-{uuid.uuid4().hex[:8]}")
        try:
            consumer.subscribe([queue])
            total, quiet_since = 0, time.monotonic()
            while time.monotonic() - quiet_since < (10 if total < expected else 1):
                records = [r for r in consumer.consume(5000, timeout=0.2) if r.error() is None]
                if records:
                    total += len(records)
                    quiet_since = time.monotonic()
            return total
        finally:
            consumer.close()

    def raw_relay(self, source: str, sink: str, total: int) -> float:
        consumer = self._consumer(f"bench-raw-{uuid.uuid4().hex[:8]}")
        producer = self._producer()
        try:
            consumer.subscribe([source])
            done = 0
            started: float | None = None
            deadline = time.monotonic() + RUN_TIMEOUT
            while done < total and time.monotonic() < deadline:
                records = [r for r in consumer.consume(BATCH, timeout=0.05) if r.error() is None]
                if not records:
                    continue
                if started is None:
                    started = time.perf_counter()
                self._produce(producer, sink, [r.value() for r in records])
                consumer.commit(asynchronous=False)
                done += len(records)
            assert started is not None and done >= total, f"raw relay got {done} of {total}"
            return time.perf_counter() - started
        finally:
            consumer.close()


# --- factflow runs -------------------------------------------------------------------------


def _pipeline(broker: Broker, folder: Path, source: str, sink: str, consumers: int) -> Path:
    path = folder / f"bench-{broker.name}-{consumers}.yaml"
    path.write_text(
        f'version: "1.0"\nname: bench-{broker.name}\n'
        f'queue: {{provider: {broker.provider}, url: "{broker.url}", '
        f"options: {broker.options(consumers)}}}\n"
        f"idle_timeout_seconds: {IDLE_SECONDS}\n"
        "routes:\n"
        "  relay:\n"
        f'    inbound: {{queue: "{source}"}}\n'
        "    adapters: [{type: passthrough}]\n"
        f'    outbound: "{sink}"\n'
    )
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_factflow(
    pipeline: Path, processes: int, profile: Path | None = None
) -> tuple[float, float]:
    """Wall seconds of the worker processes, start to exit, and their CPU seconds; with
    `profile`, each worker runs under py-spy, writing its collapsed stacks there
    (`<profile>.<process>.txt`)."""
    env = {
        **os.environ,
        "FACTFLOW_PIPELINE": str(pipeline),
        "FACTFLOW_STORE_STAGES": "0",
        "FACTFLOW_SOURCE_PARTITIONS": str(processes),
    }
    base = [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1", "-w", "1"]
    if processes == 1:
        commands = [base]
    else:
        from factflow.dataflows.launch import free_ports

        addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
        commands = [[*base, "-i", str(i), "-a", addresses] for i in range(processes)]
    if profile is not None:
        spy = ["py-spy", "record", "-r", "250", "-f", "raw", "--threads", "-o"]
        commands = [[*spy, f"{profile}.{i}.txt", "--", *c] for i, c in enumerate(commands)]
    cpu = _children_cpu()
    started = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, cwd=REPO_ROOT, stderr=subprocess.PIPE) for c in commands]
    errors = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(err.decode(errors="replace")[-2000:])
    if errors:
        msg = f"factflow run failed:\n{errors[0]}"
        raise RuntimeError(msg)
    return time.perf_counter() - started, _children_cpu() - cpu


@dataclass
class Row:
    broker: str
    case: str
    messages: int
    seconds: float
    cpu: float
    delivered: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("nan")


def bench_broker(
    broker: Broker, total: int, data: list[bytes], folder: Path, profile: Path | None
) -> list[Row]:
    rows: list[Row] = []
    tag = uuid.uuid4().hex[:8]

    def names(case: str) -> tuple[str, str]:
        return broker.queue(f"bench-{tag}-{case}-in"), broker.queue(f"bench-{tag}-{case}-out")

    # raw client loop
    source, sink = names("raw")
    broker.prepare([source, sink])
    broker.fill(source, data)
    cpu = time.process_time()
    seconds = broker.raw_relay(source, sink, total)
    cpu = time.process_time() - cpu
    rows.append(Row(broker.name, "raw loop", total, seconds, cpu, broker.count(sink, total)))

    processes_cases = [1, 2] if broker.name == "rabbitmq" else [1]
    for processes in processes_cases:
        # the empty run: start-up, connect and the idle timeout
        source, sink = names(f"empty{processes}")
        broker.prepare([source, sink])
        empty, empty_cpu = run_factflow(
            _pipeline(broker, folder, source, sink, processes), processes
        )
        source, sink = names(f"ff{processes}")
        broker.prepare([source, sink])
        broker.fill(source, data)
        spied = None if profile is None else profile / f"{broker.name}-{processes}"
        pipeline = _pipeline(broker, folder, source, sink, processes)
        wall, cpu = run_factflow(pipeline, processes, spied)
        case = "factflow" if processes == 1 else f"factflow {processes} proc"
        delivered = broker.count(sink, total)
        rows.append(Row(broker.name, case, total, wall - empty, cpu - empty_cpu, delivered))
        print(
            f"  {broker.name} {case}: {wall:.2f}s run, {empty:.2f}s empty run",
            file=sys.stderr,
        )
    return rows


def top_frames(stacks: list[Path], count: int = 15) -> list[str]:
    """The functions in most samples of py-spy's collapsed `stacks` (one line per stack:
    frames joined by `;`, then the number of samples), as lines of self and total share:
    self counts the samples a function was the innermost frame of, total those it was
    anywhere in (once per stack)."""
    own: dict[str, int] = {}
    anywhere: dict[str, int] = {}
    samples = 0
    for path in stacks:
        for line in path.read_text().splitlines():
            stack, _, number = line.rpartition(" ")
            if not stack or not number.isdigit() or "_find_and_load" in stack:
                continue
            # a frame is `function (file:line)`: counted per function and file
            frames = [f.rpartition(":")[0] or f for f in stack.split(";")]
            n = int(number)
            samples += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                anywhere[frame] = anywhere.get(frame, 0) + n
    if not samples:
        return ["  (no samples)"]
    lines = [f"  {samples} samples; self % / total %, function (file)"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:count]:
        lines.append(
            f"  {100 * n / samples:5.1f} / {100 * anywhere[frame] / samples:5.1f}  {frame})"
        )
    return lines


BROKERS = {
    "rabbitmq": RabbitMQ,
    "stomp-artemis": artemis,
    "stomp-rabbitmq": rabbitmq_stomp,
    "pulsar": Pulsar,
    "kafka": Kafka,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--brokers", default=",".join(BROKERS))
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the factflow workers under py-spy, keep their stacks in DIR, print the top",
    )
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    data = bodies(args.messages)
    rows: list[Row] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="factflow-bench-brokers-") as tmp:
        for name in args.brokers.split(","):
            broker = BROKERS[name]()
            reason = broker.unreachable()
            if reason is not None:
                skipped.append(f"{name}: skipped, {reason}")
                continue
            print(f"{name}: relaying {args.messages} messages", file=sys.stderr)
            rows.extend(bench_broker(broker, args.messages, data, Path(tmp), args.profile))
    load = os.getloadavg()
    print(f"\n{args.messages} messages per case; load average {load[0]:.2f} {load[1]:.2f}")
    print(
        f"{'broker':<16}{'case':<19}{'msg/s':>9}{'seconds':>9}{'vs raw':>8}"
        f"{'cpu us/msg':>12}{'output':>9}"
    )
    ok = True
    for row in rows:
        raw = next(r for r in rows if r.broker == row.broker and r.case == "raw loop")
        ratio = row.rate / raw.rate
        status = "" if row.delivered == row.messages else "  <- count differs"
        ok &= row.delivered == row.messages
        print(
            f"{row.broker:<16}{row.case:<19}{row.rate:>9.0f}{row.seconds:>9.2f}"
            f"{ratio:>7.2f}x{row.cpu / row.messages * 1e6:>12.0f}{row.delivered:>9}{status}"
        )
        if row.broker == "rabbitmq" and row.case == "factflow" and ratio < RABBITMQ_TARGET:
            print(f"  rabbitmq: factflow below {RABBITMQ_TARGET}x the raw loop")
            ok = False
    for line in skipped:
        print(line)
    if args.profile is not None:
        for row in rows:
            if row.case != "raw loop":
                processes = 2 if "2 proc" in row.case else 1
                stacks = sorted(args.profile.glob(f"{row.broker}-{processes}.*.txt"))
                print(f"\nprofile {row.broker} {row.case} ({', '.join(map(str, stacks))}):")
                print("\n".join(top_frames(stacks)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

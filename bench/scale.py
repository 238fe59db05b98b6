"""Horizontal scaling: a CPU-bound pipeline on 1, 2 and 3 processes, as ratios to one.

    python bench/scale.py [--messages 6000] [--rounds 2] [--no-broker]

The pipeline is bench/engine.py's `cpu` case (bench/pipelines/cpu.yaml: sha256 rounds
for ~0.2 ms a message, calibrated here), run as Bytewax processes with `-i/-a` on
127.0.0.1, twice:

- on file queues (bench/engine.py's `run_case`: timed from the first output to the last
  exit, every input line must come out once; the processes split the file's partitions);
- on RabbitMQ (FACTFLOW_TEST_RABBITMQ_URL, skipped with the reason when it does not
  answer): the input queue filled with the messages first (not timed), the processes
  competing consumers of it (`options.consumers` = processes, prefetch = messages /
  processes, so the first to connect cannot take them all), timed from the first message
  in the output queue to the last (its count polled every 50 ms: start-up and the idle
  timeout excluded, as in the file case); the output queue must hold every message
  afterwards and the input none.

Beside each ratio, the same hash loop in as many plain Python processes (no Bytewax, no
factflow), measured in the same round: the scaling the machine itself offers at that
moment. On a 2-core machine a third process has no core of its own; the table shows
what that costs. Every case runs `--rounds` times, interleaved; the fastest run of each
is kept.

Not measured here: processes on other hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from brokers import IDLE_SECONDS, RabbitMQ, bodies, run_factflow
from engine import (
    HASH_ROUNDS_ENV,
    HASH_TARGET_MS,
    Result,
    _hash_many,
    calibrate_rounds,
    factflow_case,
    generate,
    run_case,
)

PROCESSES = (1, 2, 3)
HERE = Path(__file__).resolve().parent
POLL_SECONDS = 0.05


def plain_loop(processes: int, rounds: int, messages: int) -> float:
    """Seconds the hash loop takes for `messages` split over `processes` processes."""
    started = time.perf_counter()
    workers = [
        multiprocessing.Process(target=_hash_many, args=(b"x" * 64, rounds, messages // processes))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def broker_pipeline(
    rabbit: RabbitMQ, folder: Path, source: str, sink: str, processes: int, messages: int
) -> Path:
    """The cpu case's route between two RabbitMQ queues, one consumer per process."""
    prefetch = math.ceil(messages / processes)
    path = folder / f"scale-rabbitmq-{processes}.yaml"
    path.write_text(
        f'version: "1.0"\nname: bench-scale-rabbitmq\n'
        f'queue: {{provider: rabbitmq, url: "{rabbit.url}", '
        f"options: {{consumers: {processes}, prefetch: {prefetch}}}}}\n"
        f"idle_timeout_seconds: {IDLE_SECONDS}\n"
        "routes:\n"
        "  hash:\n"
        f'    inbound: {{queue: "{source}"}}\n'
        '    adapters: [{type: "engine:HashLoop"}]\n'
        f'    outbound: "{sink}"\n'
    )
    return path


@dataclass
class Watch:
    first: tuple[float, int] | None = None  # when the output had messages, and how many
    full: float | None = None  # when it had them all
    thread: threading.Thread | None = None

    def rate(self, total: int) -> float:
        """msg/s from the first output to the last: start-up and the idle wait excluded."""
        if self.first is None or self.full is None or self.full <= self.first[0]:
            return float("nan")  # it all came at once: too few messages to time
        at, count = self.first
        return (total - count) / (self.full - at)


def watch_output(rabbit: RabbitMQ, queue: str, total: int, stop: threading.Event) -> Watch:
    """Polls `queue`'s message count (a passive declare every POLL_SECONDS) in a thread
    until it holds `total` or `stop` is set."""
    watch = Watch()

    async def poll() -> None:
        import aio_pika

        async with await aio_pika.connect(rabbit.url) as connection:
            channel = await connection.channel()
            while not stop.is_set():
                declared = await channel.declare_queue(queue, durable=True, passive=True)
                count = int(declared.declaration_result.message_count or 0)
                now = time.perf_counter()
                if count and watch.first is None:
                    watch.first = (now, count)
                if count >= total:
                    watch.full = now
                    return
                await asyncio.sleep(POLL_SECONDS)

    watch.thread = threading.Thread(target=lambda: asyncio.run(poll()), daemon=True)
    watch.thread.start()
    return watch


def broker_rate(rabbit: RabbitMQ, folder: Path, processes: int, data: list[bytes]) -> float:
    """msg/s of the cpu route on RabbitMQ with `processes` processes (see the docstring)."""
    tag = uuid.uuid4().hex[:8]
    source, sink = f"bench-scale-{tag}-in", f"bench-scale-{tag}-out"
    rabbit.prepare([source, sink])
    rabbit.fill(source, data)
    stop = threading.Event()
    watch = watch_output(rabbit, sink, len(data), stop)
    try:
        run_factflow(broker_pipeline(rabbit, folder, source, sink, processes, len(data)), processes)
    finally:
        stop.set()
        assert watch.thread is not None
        watch.thread.join(10)
    delivered = rabbit.count(sink, len(data))
    left = rabbit.count(source, 0)
    if delivered != len(data) or left:
        msg = f"rabbitmq {processes} proc: {delivered} of {len(data)} came out, {left} left"
        raise SystemExit(msg)
    return watch.rate(len(data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-broker", action="store_true", help="file queues only")
    args = parser.parse_args(argv)
    rabbit: RabbitMQ | None = None
    if not args.no_broker:
        rabbit = RabbitMQ()
        reason = rabbit.unreachable()
        if reason is not None:
            print(f"rabbitmq case skipped: {reason}", flush=True)
            rabbit = None
    # the worker processes of the broker runs import the adapter from here
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p
    )
    with tempfile.TemporaryDirectory(prefix="ffscale-") as tmp:
        work = Path(tmp)
        data = work / "input.jsonl"
        generate(data, args.messages)
        rounds = calibrate_rounds()
        os.environ[HASH_ROUNDS_ENV] = str(rounds)
        print(
            f"bench: {args.messages} messages at {rounds} sha256 rounds (~{HASH_TARGET_MS} ms)"
            f" each; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        best: dict[int, Result] = {}
        plain: dict[int, float] = {}
        on_broker: dict[int, float] = {}
        envelopes = bodies(args.messages) if rabbit is not None else []
        for round_index in range(args.rounds):
            for n in PROCESSES:
                case = factflow_case(f"cpu {n}", "cpu.yaml", data, processes=n)
                result = run_case(case, work / f"r{round_index}-p{n}", args.messages)
                if n not in best or result.rate > best[n].rate:
                    best[n] = result
                if rabbit is not None:
                    rate = broker_rate(rabbit, work, n, envelopes)
                    on_broker[n] = max(on_broker.get(n, rate), rate)
                seconds = plain_loop(n, rounds, args.messages)
                plain[n] = min(plain.get(n, seconds), seconds)
        broker_head = f"{'rabbitmq':>10}{'x 1':>7}" if on_broker else ""
        print(f"{'processes':<10}{'file q':>9}{'x 1':>7}{'cores':>7}{broker_head}{'plain x 1':>11}")
        for n in PROCESSES:
            r = best[n]
            broker_cells = (
                f"{on_broker[n]:>10,.0f}{on_broker[n] / on_broker[1]:>7.2f}" if on_broker else ""
            )
            print(
                f"{n:<10}{r.rate:>9,.0f}{r.rate / best[1].rate:>7.2f}{r.cores:>7.2f}"
                f"{broker_cells}{plain[1] / plain[n]:>11.2f}"
            )
        print("(msg/s; x 1: the ratio to one process; plain: the hash loop without factflow)")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

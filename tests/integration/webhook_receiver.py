"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread.

It verifies every delivery with the `standardwebhooks` package and the seed system's
`X-Factflow-Signature` HMAC, records it, and answers with the status codes it is told to
(`fail_first=2` answers 500 twice, then 200; `status=500` always). `hold=N` keeps the
first N requests open, recorded but unanswered, until `release` is set: a delivery in
flight, for tests that kill the sender meanwhile. `sleep` seconds before answering (a
slow receiver), `headers` added to every answer (`Retry-After`, `Location`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from factflow.webhooks.signing import secret_key, verify_factflow_signature


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    payload: Any
    verified: bool
    answered: int


@dataclass
class Receiver:
    secret: str
    status: int = 200
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold: int = 0
    sleep: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    held: list[Received] = field(default_factory=list)

    def verify(self, headers: dict[str, str], body: bytes) -> tuple[bool, Any]:
        payload = Webhook(secret_key(self.secret)).verify(body, headers)
        ours = verify_factflow_signature(self.secret, body, headers["X-Factflow-Signature"])
        return ours, payload

    def take_hold(self) -> bool:
        with self.lock:
            if self.hold > 0:
                self.hold -= 1
                return True
            return False

    def answer(self) -> int:
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return 500
            return self.status

    def of_type(self, event_type: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.headers.get("X-Factflow-Event") == event_type]

    def wait_for(self, count: int, event_type: str | None = None, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [
                    r
                    for r in self.received
                    if event_type is None or r.headers.get("X-Factflow-Event") == event_type
                ]
            if len(got) >= count:
                return
            time.sleep(0.05)
        msg = f"got {len(got)} deliveries of {event_type or 'any type'}, wanted {count}"
        raise AssertionError(msg)


@contextmanager
def receiving(secret: str, **options: Any) -> Iterator[Receiver]:
    receiver = Receiver(secret=secret, **options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            try:
                verified, payload = receiver.verify(headers, body)
            except Exception:
                verified, payload = False, None
            if receiver.take_hold():
                got = Received(time.monotonic(), headers, body, payload, verified, 0)
                with receiver.lock:
                    receiver.held.append(got)
                receiver.release.wait(60)
                return  # unanswered: the sender is gone by now
            if receiver.sleep:
                time.sleep(receiver.sleep)
            code = receiver.answer()
            with receiver.lock:
                receiver.received.append(
                    Received(time.monotonic(), headers, body, payload, verified, code)
                )
            try:
                self.send_response(code)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up first (its timeout): what the slow tests want

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not every request

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()

"""Adapters that exist only for the runtime tests, referenced from YAML by dotted path
(`tests.e2e.adapters_for_tests:AlwaysFails`).

Class-level counters are per process: in-process tests (`factflow.testing.run_pipeline`)
read them after the run; tests with worker processes read the queues instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any, ClassVar

from factflow import Adapter, Context, Message, NonRetryableError
from factflow.types import JsonDict, JsonSchema

SLEEP_SCHEMA: JsonSchema = {
    "type": "object",
    "properties": {"sleep_ms": {"type": "number", "minimum": 0}},
    "additionalProperties": False,
}


class AlwaysFails(Adapter):
    """Raises on every call; counts the calls per message id."""

    name = "always_fails"
    calls: ClassVar[Counter[str]] = Counter()

    def process(self, message: Message, context: Context) -> list[Message]:
        AlwaysFails.calls[message.message_id] += 1
        msg = f"always fails on {message.payload!r}"
        raise RuntimeError(msg)


class FailsTwice(Adapter):
    """Fails the first two attempts of each message, then passes it through."""

    name = "fails_twice"
    calls: ClassVar[Counter[str]] = Counter()

    def process(self, message: Message, context: Context) -> list[Message]:
        FailsTwice.calls[message.message_id] += 1
        if FailsTwice.calls[message.message_id] <= 2:
            msg = "not yet"
            raise ConnectionError(msg)
        return [message]


class RejectsBad(Adapter):
    """Raises NonRetryableError on payloads with `"bad": true`, else passes them on;
    counts the calls per message id. `RejectsBadAsync` is the same as a coroutine."""

    name = "rejects_bad"
    calls: ClassVar[Counter[str]] = Counter()

    def process(self, message: Message, context: Context) -> list[Message]:
        RejectsBad.calls[message.message_id] += 1
        if message.payload.get("bad"):
            msg = f"cannot use {message.payload!r}"
            raise NonRetryableError(msg)
        return [message]


class RejectsBadAsync(Adapter):
    name = "rejects_bad_async"

    async def process(self, message: Message, context: Context) -> list[Message]:
        await asyncio.sleep(0)
        return RejectsBad().process(message, context)


FAILURES_SCHEMA: JsonSchema = {
    "type": "object",
    "properties": {"failures": {"type": "integer", "minimum": 0}},
    "additionalProperties": False,
}

ATTEMPTS: dict[str, list[float]] = {}
"""`time.monotonic()` at each attempt, per message id, of FailsFirst and AsyncFailsFirst."""


def _attempt(failures: int | None, message: Message) -> list[Message]:
    times = ATTEMPTS.setdefault(message.message_id, [])
    times.append(time.monotonic())
    if failures is None or len(times) <= failures:
        msg = f"attempt {len(times)} on {message.payload!r} timed out"
        raise TimeoutError(msg)
    return [message.derive(metadata={"attempts": len(times)})]


class FailsFirst(Adapter):
    """Sync: fails the first `failures` attempts of each message (every attempt when
    `failures` is not set), recording when each attempt began in ATTEMPTS."""

    name = "fails_first"
    config_schema = FAILURES_SCHEMA

    def process(self, message: Message, context: Context) -> list[Message]:
        return _attempt(self.config.get("failures"), message)


class AsyncFailsFirst(Adapter):
    """FailsFirst as a coroutine, awaiting before it fails as an I/O-bound adapter would."""

    name = "async_fails_first"
    config_schema = FAILURES_SCHEMA

    async def process(self, message: Message, context: Context) -> list[Message]:
        await asyncio.sleep(0.001)
        return _attempt(self.config.get("failures"), message)


class FailsCallsFirst(Adapter):
    """Sync: fails the first `failures` calls of the process, whatever the message (a
    dependency that is down, then back), then passes messages through; `calls` counts
    them per message id."""

    name = "fails_calls_first"
    config_schema = FAILURES_SCHEMA
    calls: ClassVar[Counter[str]] = Counter()

    def process(self, message: Message, context: Context) -> list[Message]:
        FailsCallsFirst.calls[message.message_id] += 1
        if FailsCallsFirst.calls.total() <= int(self.config.get("failures", 0)):
            msg = "the dependency is down"
            raise ConnectionError(msg)
        return [message]


class Slow(Adapter):
    """Sleeps `sleep_ms` per message (sync), then passes it through; a payload with
    `"fast": true` passes at once."""

    name = "slow"
    config_schema = SLEEP_SCHEMA

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self._seconds = float(self.config.get("sleep_ms", 1)) / 1000

    def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload
        if not (isinstance(payload, dict) and payload.get("fast")):
            time.sleep(self._seconds)
        return [message]


class InFlight(Adapter):
    """Async: sleeps `sleep_ms` and records how many calls were running at once (at its
    peak, and as each call began, in `at_start`)."""

    name = "in_flight"
    config_schema = SLEEP_SCHEMA
    running: ClassVar[int] = 0
    max_running: ClassVar[int] = 0
    at_start: ClassVar[list[int]] = []
    threads: ClassVar[set[str]] = set()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.running = cls.max_running = 0
            cls.threads = set()
            cls.at_start = []

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self._seconds = float(self.config.get("sleep_ms", 20)) / 1000

    async def process(self, message: Message, context: Context) -> list[Message]:
        cls = InFlight
        with cls._lock:
            cls.running += 1
            cls.at_start.append(cls.running)
            cls.max_running = max(cls.max_running, cls.running)
            cls.threads.add(threading.current_thread().name)
        try:
            await asyncio.sleep(self._seconds)
        finally:
            with cls._lock:
                cls.running -= 1
        return [message.derive(metadata={"async": True})]


class SyncThreads(Adapter):
    """Sync: records the thread it runs on."""

    name = "sync_threads"
    threads: ClassVar[set[str]] = set()

    def process(self, message: Message, context: Context) -> list[Message]:
        SyncThreads.threads.add(threading.current_thread().name)
        return [message.with_changes(metadata={**message.metadata, "sync": True})]


class Explode(Adapter):
    """Fans each payload `{"n": N}` out into N brand-new messages (not derived)."""

    name = "explode"

    def process(self, message: Message, context: Context) -> list[Message]:
        count = int(message.payload["n"])
        return [Message(payload={"part": i, "of": count}) for i in range(count)]


def payload_of(value: Any) -> Any:
    """A `map` function for tests: tags the payload."""
    return {"mapped": value}

"""Outages ridden out: what a source or sink waits for, since when, and for how long.

A broker or Postgres that goes away for less than the outage limit
(FACTFLOW_OUTAGE_LIMIT_SECONDS, default 300) pauses what needs it: sources return empty
batches and sinks hold their batch (so the epoch does not close and nothing is acked),
retrying with backoff. Past the limit the run fails loudly; it is resumable (rerun the
execution), since nothing unconfirmed was acked.

The whole interface, for every connector and Postgres writer:

    outage = Outage("rabbitmq at amqp://host:5672/", queue="orders")
    ...
    except ConnectionError as exc:   # the client library's own error
        outage.failed(exc)           # raises OutageTooLong past the limit
        ...back off, retry...
    outage.recovered()               # after the next operation that worked
    outage.forget()                  # on close: the waiter is gone, the status forgets it

`failed` may be called on every failed attempt: the first one of an outage logs the
WARNING "waiting for <what> since <time> (<error>)", later ones repeat it every
WARN_SECONDS with how long it has been; `recovered` logs "<what> is back after N s"
(a no-op when nothing was failing). `Backoff` spaces the attempts. The broker sources and
sinks of connectors/base.py do all this already; a connector with its own loop (Kafka)
makes its own `Outage`.

Several partitions of a process waiting for the same `what` share one log line; each has
its own limit. `waiting()` is the process's status (`Waiting` per outage) that progress
files (`factflow run`'s live view, the routes endpoint) and worker metrics show.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from factflow.masking import mask_url

log = logging.getLogger("factflow.outage")

DEFAULT_LIMIT_SECONDS = 300.0
WARN_SECONDS = 10.0
"""How often a continuing outage is logged again."""
MAX_BACKOFF_SECONDS = 5.0
"""The longest wait between two attempts: work resumes within this of the end of an outage."""

_limit = DEFAULT_LIMIT_SECONDS


def set_limit(seconds: float) -> None:
    """The outage limit of this process (workers set FACTFLOW_OUTAGE_LIMIT_SECONDS's)."""
    global _limit
    _limit = seconds


def limit() -> float:
    return _limit


class OutageTooLong(ConnectionError):
    """An outage lasted longer than the limit: the run fails (and is resumable)."""


class Backoff:
    """Exponential backoff between attempts, reset on success."""

    def __init__(self, first: float = 0.2, limit: float = MAX_BACKOFF_SECONDS) -> None:
        self._first, self._limit, self._next = first, limit, first

    def wait(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self._limit)
        return delay

    def reset(self) -> None:
        self._next = self._first


@dataclass(frozen=True, slots=True)
class Waiting:
    """One thing this process waits for: since when (Unix time), by how many of its
    sources and sinks, on which queues (empty: everything waits, e.g. Postgres)."""

    what: str
    since: float
    waiters: int
    queues: tuple[str, ...]

    @property
    def since_text(self) -> str:
        return datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds")

    def describe(self) -> str:
        return f"waiting for {self.what} since {self.since_text}"


class Outage:
    """One source's or sink's view of `what` (a broker, Postgres) being unreachable.

    `fatal=False` for a helper the run does not wait for (the recovery archive): it
    reports the outage but never raises."""

    def __init__(self, what: str, *, queue: str | None = None, fatal: bool = True) -> None:
        self.what, self.queue, self.fatal = what, queue, fatal
        self._since: float | None = None  # time.time() of the first failure
        self._last_warning = 0.0

    @property
    def failing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException | str) -> None:
        """An attempt failed; raises OutageTooLong once the outage exceeds the limit."""
        now = time.time()
        if self._since is None:
            self._since = now
            first = _registry.start(self)
            if first:
                self._last_warning = now
                log.warning(
                    "waiting for %s since %s (%s); its sources and sinks pause and retry, "
                    "for up to %.0f s (FACTFLOW_OUTAGE_LIMIT_SECONDS); nothing is lost",
                    self.what,
                    _clock(now),
                    _reason(exc),
                    _limit,
                )
            return
        waited = now - self._since
        if waited > _limit and self.fatal:
            _registry.stop(self)
            self._since = None
            msg = (
                f"gave up waiting for {self.what} after {waited:.0f} s "
                f"(FACTFLOW_OUTAGE_LIMIT_SECONDS={_limit:g}): {_reason(exc)}; nothing "
                "unconfirmed was acknowledged, so running the execution again resumes it"
            )
            log.error("%s", msg)
            raise OutageTooLong(msg)
        if now - self._last_warning >= WARN_SECONDS and _registry.oldest(self):
            self._last_warning = now
            log.warning(
                "still waiting for %s since %s (%.0f s; %s)",
                self.what,
                _clock(self._since),
                waited,
                _reason(exc),
            )

    def recovered(self) -> None:
        """An operation worked again (cheap when nothing was failing)."""
        if self._since is None:
            return
        waited = time.time() - self._since
        self._since = None
        if _registry.stop(self):
            log.warning("%s is back after %.0f s; resuming", self.what, waited)

    def forget(self) -> None:
        """The waiter is gone (its partition or writer closed): drop it from this process's
        status without saying the outage is over."""
        if self._since is not None:
            self._since = None
            _registry.stop(self)

    def since(self) -> float | None:
        return self._since


class _Registry:
    """The outages of this process, grouped by `what`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[Outage]] = {}

    def start(self, outage: Outage) -> bool:
        """Record `outage`; True when it is the first for its `what` (log it)."""
        with self._lock:
            group = self._waiting.setdefault(outage.what, [])
            group.append(outage)
            return len(group) == 1

    def stop(self, outage: Outage) -> bool:
        """Forget `outage`; True when it was the last for its `what`."""
        with self._lock:
            group = self._waiting.get(outage.what, [])
            if outage in group:
                group.remove(outage)
            if group:
                return False
            self._waiting.pop(outage.what, None)
            return True

    def oldest(self, outage: Outage) -> bool:
        """Whether `outage` is the first of its group (the one that repeats the warning)."""
        with self._lock:
            group = self._waiting.get(outage.what, [])
            return bool(group) and group[0] is outage

    def snapshot(self) -> list[Waiting]:
        with self._lock:
            groups = [(what, list(group)) for what, group in self._waiting.items()]
        result = []
        for what, group in groups:
            since = [s for o in group if (s := o.since()) is not None]
            if since:
                queues = tuple(sorted({o.queue for o in group if o.queue is not None}))
                result.append(Waiting(what, min(since), len(group), queues))
        return result


_registry = _Registry()


def waiting() -> list[Waiting]:
    """What this process's sources and sinks wait for now."""
    return _registry.snapshot()


def postgres_what(url: str) -> str:
    """What a Postgres outage waits for (one name for lineage, queues and archives)."""
    return f"Postgres at {mask_url(url)}"


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _reason(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__

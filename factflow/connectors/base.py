"""What every broker connector shares: acks that follow Bytewax epochs, and reconnects.

Bytewax does not start reading epoch e+1 until all of epoch e has been output and its
recovery data written. So a source partition's `snapshot()` *seals* the messages it
delivered in the epoch, and the next `next_batch()` *acks* the sealed ones: a message is
acknowledged only after everything it produced has reached the sinks, which make their
writes durable inside `write_batch`. A crash anywhere leaves unacked messages on the
broker, which redelivers them: at-least-once, duplicates bounded by one epoch.

A connection that breaks leaves its processed but unacked messages (the epoch in flight,
the sealed one whose ack it cut off) to be redelivered. Where the broker gives a message
the same id on every delivery (`_processed_key`), the partition remembers those ids and,
when they come again on the new connection, acks them with the current epoch instead of
handing them out: their outputs were written in an epoch that closes before this one, so
at-least-once holds and a broker restart does not repeat them (issue 21).

Outages (factflow/outage.py): a partition that loses its broker reports to its `Outage`
(`self._outage`, named by `_outage_what()`): sources return empty batches and reconnect
with backoff, sinks hold their batch and retry it, both until the broker is back or the
outage limit (FACTFLOW_OUTAGE_LIMIT_SECONDS) passed, which fails the run (resumable).
A connector that detects an outage some other way (a Pulsar consumer whose acks cannot
be confirmed) calls `self._lost(exc)` in a source (which warns how many processed
messages come again) and raises in `_publish` in a sink; one with a loop of its own (Kafka) uses
an `Outage` directly: `failed(exc)` on each failed attempt, `recovered()` after.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from bytewax.inputs import StatefulSourcePartition
from bytewax.outputs import StatelessSinkPartition

from factflow.connectors.batching import BatchSizer
from factflow.deadletter import DeadLetter, Undecodable
from factflow.messages import Message
from factflow.outage import Backoff, Outage

log = logging.getLogger(__name__)

Token = TypeVar("Token")
State = TypeVar("State")

IDLE_WAKE = timedelta(milliseconds=20)


PROCESSED_MEMORY = 100_000
"""The most ids of processed, unconfirmed messages a partition remembers after connection
losses (see above): a lost connection leaves a few epochs' worth; ids whose ack did reach
the broker never come again, and the oldest are forgotten past this (at worst, a
duplicate)."""


class AckLedger(Generic[Token]):
    """Delivered -> sealed (at snapshot) -> acking (at the next batch) -> acked (once
    `_ack` returned: for brokers that confirm acks, once the broker confirmed them)."""

    def __init__(self) -> None:
        self._delivered: list[Token] = []
        self._sealed: list[Token] = []
        self._acking: list[Token] = []

    def delivered(self, tokens: list[Token]) -> None:
        self._delivered.extend(tokens)

    def seal(self) -> None:
        self._sealed.extend(self._delivered)
        self._delivered = []

    def take_sealed(self) -> list[Token]:
        """The sealed tokens to ack; they count as not done until `acked()`."""
        sealed, self._sealed = self._sealed, []
        self._acking.extend(sealed)
        return sealed

    def acked(self) -> None:
        self._acking = []

    @property
    def pending(self) -> bool:
        """Messages delivered or sealed but not yet acked."""
        return bool(self._delivered or self._sealed)

    def forget(self) -> list[Token]:
        """The connection that delivered these is gone: the broker redelivers them. Returns
        those handed out and not confirmed acked (oldest first): the duplicates to expect."""
        lost = self._acking + self._sealed + self._delivered
        self._delivered, self._sealed, self._acking = [], [], []
        return lost


class Received(NamedTuple, Generic[Token]):
    """One record off the broker: how to ack it, its body and headers. A tuple: one is
    made per message, at a third of a frozen dataclass's cost."""

    token: Token
    body: bytes
    headers: dict[str, Any]


class BrokerSourcePartition(
    StatefulSourcePartition[Message | Undecodable, State], Generic[Token, State]
):
    """A consumer slot on one queue. Subclasses connect, fetch, ack and close.

    `decode(received)` turns a record into a message (or an Undecodable for the dead
    letters). Connection errors are caught here: the partition reconnects with backoff and
    returns empty batches meanwhile (an outage, reported to `self._outage`; past the
    outage limit `next_batch` raises OutageTooLong), and never acks tokens of a dead
    connection. With
    `idle_timeout` the partition ends after that long without a message, once all it
    delivered has been acked. `sizer` says how many messages one batch may hand out
    (connectors/batching.py).
    """

    def __init__(
        self,
        decode: Callable[[Received[Token]], Message | Undecodable],
        idle_timeout: float | None,
        sizer: BatchSizer,
    ) -> None:
        self._decode = decode
        self._sizer = sizer
        self._idle_timeout = idle_timeout
        self._last_message_at = time.monotonic()
        self._ledger: AckLedger[Token] = AckLedger()
        self._backoff = Backoff()
        self._retry_at = 0.0
        self._connected = False
        self._ever_connected = False
        self._redelivered = 0
        # keys (`_processed_key`) of messages processed on a lost connection, not acked
        self._processed: dict[object, None] = {}
        self._outage_state: Outage | None = None

    @property
    def _outage(self) -> Outage:
        # made on first use: `str(self)` needs the subclass's attributes
        if self._outage_state is None:
            self._outage_state = Outage(self._outage_what(), queue=self._outage_queue())
        return self._outage_state

    def _outage_what(self) -> str:
        """What an outage waits for, as the log and status say it: the broker, so that its
        sources and sinks share one line (default `str(self)`)."""
        return str(self)

    def _outage_queue(self) -> str | None:
        """The provider's queue name of this partition, for the routes endpoint."""
        return getattr(self, "_queue", None)

    @abstractmethod
    def _connect(self) -> None:
        """Open the connection and subscribe. May raise a connection error."""

    @abstractmethod
    def _fetch(self, limit: int) -> list[Received[Token]]:
        """At most `limit` records of what is ready now (waiting briefly at most); may raise
        a connection error. Records beyond `limit` stay with the broker or its client,
        unacked, for later batches (or redelivery after a crash)."""

    @abstractmethod
    def _ack(self, tokens: list[Token]) -> None:
        """Acknowledge; may raise a connection error."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close quietly; must not raise."""

    def _state(self) -> State:
        """The resume state (offsets for Kafka); None for brokers that redeliver."""
        return None  # type: ignore[return-value]

    def _processed_key(self, token: Token) -> object | None:
        """The broker's id of the message `token` delivers, the same on every delivery of
        it (across reconnects and broker restarts), for recognising a redelivery of a
        message already processed; None where the broker has none (the default)."""
        return None

    def next_batch(self) -> list[Message | Undecodable]:
        limit = self._sizer.limit()
        if not self._connected and not self._reconnect():
            return []
        try:
            sealed = self._ledger.take_sealed()
            if sealed:
                self._ack(sealed)
                self._ledger.acked()
                # waiting for an epoch to close is not idleness: a broker that holds back
                # deliveries until acks (prefetch) sends the next ones only now
                self._last_message_at = time.monotonic()
            received = self._fetch(limit)
        except Exception as exc:  # each client library has its own connection errors
            self._lost(exc)
            return []
        if received:
            self._last_message_at = time.monotonic()
        elif self._idle() and not self._ledger.pending:
            # everything delivered has been acked: ending now loses nothing
            raise StopIteration
        self._ledger.delivered([r.token for r in received])
        if self._processed:
            received = [r for r in received if not self._already_processed(r.token)]
        self._sizer.handed_out(len(received))
        return [self._decode(r) for r in received]

    def _already_processed(self, token: Token) -> bool:
        """A redelivery of a message processed on a lost connection: it is in the ledger
        (acked after this epoch, which closes after the one that wrote its outputs), not
        handed out again."""
        key = self._processed_key(token)
        if key is None or key not in self._processed:
            return False
        del self._processed[key]
        return True

    def _idle(self) -> bool:
        return (
            self._idle_timeout is not None
            and time.monotonic() - self._last_message_at >= self._idle_timeout
        )

    def next_awake(self) -> datetime | None:
        if not self._connected:
            return datetime.fromtimestamp(self._retry_at, UTC)
        return None

    def snapshot(self) -> State:
        self._ledger.seal()
        return self._state()

    def close(self) -> None:
        self._disconnect()
        if self._outage_state is not None:
            self._outage_state.forget()

    def _reconnect(self) -> bool:
        if time.time() < self._retry_at:
            return False
        try:
            self._connect()
        except Exception as exc:
            if not self._ever_connected:
                # a wrong URL or credentials: fail now and say so, rather than retry forever
                self._disconnect()
                msg = f"{self}: cannot connect: {exc}"
                raise ConnectionError(msg) from None
            self._retry_at = time.time() + self._backoff.wait()
            self._outage.failed(exc)  # past the outage limit: raises, the run fails
            return False
        if self._ever_connected:
            # the user's sign of the duplicates a broker outage causes, not only the
            # client library's log
            log.warning(
                "%s: reconnected; expecting %d already processed messages to be redelivered%s",
                self,
                self._redelivered,
                # what the broker's ids let it recognise comes again without duplicates
                f" ({len(self._processed)} recognised by their id are acked, not output again)"
                if self._processed
                else "",
            )
        self._redelivered = 0
        self._connected = self._ever_connected = True
        self._backoff.reset()
        self._outage.recovered()
        # the idle timeout counts from the reconnect, not from before the outage
        self._last_message_at = time.monotonic()
        return True

    def _lost(self, exc: BaseException) -> None:
        """The connection broke: what it delivered and did not ack comes again (and is
        skipped where `_processed_key` recognises it)."""
        unconfirmed = self._ledger.forget()
        self._redelivered += len(unconfirmed)
        for token in unconfirmed:
            key = self._processed_key(token)
            if key is not None:
                self._processed[key] = None
        while len(self._processed) > PROCESSED_MEMORY:
            del self._processed[next(iter(self._processed))]
        log.warning(
            "%s: connection lost (%s); %d processed messages not confirmed acked",
            self,
            exc,
            len(unconfirmed),
        )
        self._disconnect()
        self._connected = False
        self._retry_at = time.time() + self._backoff.wait()
        self._outage.failed(exc)


class BrokerSinkPartition(StatelessSinkPartition[Message | DeadLetter]):
    """Publishes a batch and returns only once the broker confirmed all of it.

    On a connection error it reconnects and republishes the whole batch with backoff, as
    long as the outage lasts (`self._outage`, factflow/outage.py): the epoch does not close
    meanwhile, so nothing is acked. Past the outage limit it raises OutageTooLong (Bytewax
    stops the worker; the run resumes later). A publish that fails while the broker can
    be reached (it rejects the batch) is tried `attempts` times, then raises. The first
    connection is not retried: a wrong URL or credentials fail the run at once.
    """

    attempts = 8

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _publish(self, items: list[Message | DeadLetter]) -> None:
        """Publish and wait for the broker's confirmation of every item."""

    @abstractmethod
    def _disconnect(self) -> None: ...

    def __init__(self) -> None:
        self._connected = False
        self._ever_connected = False
        self._outage_state: Outage | None = None

    @property
    def _outage(self) -> Outage:
        if self._outage_state is None:
            self._outage_state = Outage(self._outage_what(), queue=getattr(self, "_queue", None))
        return self._outage_state

    def _outage_what(self) -> str:
        """What an outage waits for, as the log and status say it: the broker, so that its
        sources and sinks share one line (default `str(self)`)."""
        return str(self)

    def write_batch(self, items: list[Message | DeadLetter]) -> None:
        if not items:
            return
        if not self._ever_connected:
            try:
                self._connect()
            except Exception as exc:
                self._disconnect()
                msg = f"{self}: cannot connect: {exc}"
                raise ConnectionError(msg) from None
            self._connected = self._ever_connected = True

        backoff, rejected = Backoff(), 0
        while True:
            try:
                if not self._connected:
                    self._connect()
                    self._connected = True
            except Exception as exc:  # each client library has its own connection errors
                self._broken()
                self._outage.failed(exc)  # past the outage limit: raises, the run fails
                time.sleep(backoff.wait())
                continue
            try:
                self._publish(items)
            except Exception as exc:
                # the broker went away mid-publish (the next connect says so), or it
                # rejects this batch while reachable: that is no outage, give up soon
                self._broken()
                rejected += 1
                if rejected >= self.attempts:
                    msg = f"{self}: publishing failed {rejected} times: {exc}"
                    raise ConnectionError(msg) from exc
                log.warning("%s: publish failed (%r); reconnecting", self, exc)
                time.sleep(backoff.wait())
                continue
            self._outage.recovered()
            return

    def _broken(self) -> None:
        self._disconnect()
        self._connected = False

    def close(self) -> None:
        self._disconnect()
        if self._outage_state is not None:
            self._outage_state.forget()

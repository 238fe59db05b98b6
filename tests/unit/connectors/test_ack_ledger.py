"""The ack/seal ledger of connectors/base.py, step by step: `AckLedger` on its own, then the
partitions' bookkeeping around it that the flow tests of test_source_partition.py only see
as a whole (what is acked when, the reconnect schedule, what the outage and the warnings
say, what a sink does with a batch the broker keeps rejecting)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from factflow.connectors import base
from factflow.connectors.base import (
    AckLedger,
    BrokerSinkPartition,
    BrokerSourcePartition,
    Received,
)
from factflow.connectors.batching import BatchSizer
from factflow.deadletter import DeadLetter, Undecodable
from factflow.messages import Message
from factflow.outage import DEFAULT_LIMIT_SECONDS, OutageTooLong, set_limit, waiting

# --- AckLedger -------------------------------------------------------------------------


def test_a_new_ledger_has_nothing_pending_sealed_or_lost() -> None:
    ledger: AckLedger[int] = AckLedger()
    assert not ledger.pending
    assert ledger.take_sealed() == []
    assert ledger.forget() == []


def test_delivered_tokens_are_pending_but_not_sealed_until_the_snapshot() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.delivered([1, 2])
    assert ledger.pending
    assert ledger.take_sealed() == [], "acked before its epoch closed"
    ledger.seal()
    assert ledger.pending
    assert ledger.take_sealed() == [1, 2]


def test_deliveries_accumulate_in_order_across_batches_and_seals() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.delivered([1])
    ledger.delivered([2, 3])
    ledger.seal()
    ledger.delivered([4])
    ledger.seal()
    assert ledger.take_sealed() == [1, 2, 3, 4]
    assert ledger.take_sealed() == [], "each sealed token is taken once"


def test_a_seal_takes_only_what_was_delivered_before_it() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.delivered([1])
    ledger.seal()
    ledger.delivered([2])
    assert ledger.take_sealed() == [1]
    ledger.seal()
    assert ledger.take_sealed() == [2]


def test_taken_tokens_are_no_longer_pending_but_are_lost_until_acked() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.delivered([1, 2])
    ledger.seal()
    ledger.take_sealed()
    assert not ledger.pending
    assert ledger.forget() == [1, 2], "an ack not confirmed is not done"


def test_acked_tokens_are_not_lost() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.delivered([1, 2])
    ledger.seal()
    ledger.take_sealed()
    ledger.acked()
    assert ledger.forget() == []


def test_forget_returns_every_unconfirmed_token_oldest_first_and_empties_the_ledger() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.delivered([1])
    ledger.seal()
    ledger.take_sealed()  # acking: 1
    ledger.delivered([2])
    ledger.seal()  # sealed: 2
    ledger.delivered([3])  # delivered: 3
    assert ledger.forget() == [1, 2, 3]
    assert not ledger.pending
    assert ledger.take_sealed() == []
    assert ledger.forget() == []


# --- a source partition over a scripted broker ---------------------------------------


class Broker:
    """Everything the partition asked of it, and switches for what goes wrong."""

    def __init__(self, messages: list[int] | None = None) -> None:
        self.queue = list(messages or [])
        self.up = True
        self.acks: list[list[int]] = []
        self.fetch_limits: list[int] = []
        self.connects = 0
        self.disconnects = 0
        self.error = "broker down"


class Source(BrokerSourcePartition[int, str]):
    def __init__(
        self, broker: Broker, idle: float | None = None, sizer: BatchSizer | None = None
    ) -> None:
        super().__init__(self._to_message, idle, sizer or BatchSizer(100))
        self.broker = broker

    @staticmethod
    def _to_message(r: Received[int]) -> Message | Undecodable:
        return Message(payload=r.token, message_id=str(r.token))

    def __str__(self) -> str:
        return f"ledger source {id(self)}"

    def _connect(self) -> None:
        if not self.broker.up:
            raise ConnectionError(self.broker.error)
        self.broker.connects += 1

    def _fetch(self, limit: int) -> list[Received[int]]:
        if not self.broker.up:
            raise ConnectionError(self.broker.error)
        self.broker.fetch_limits.append(limit)
        out, self.broker.queue = self.broker.queue[:limit], self.broker.queue[limit:]
        return [Received(t, b"", {}) for t in out]

    def _ack(self, tokens: list[int]) -> None:
        if not self.broker.up:
            raise ConnectionError(self.broker.error)
        self.broker.acks.append(list(tokens))

    def _disconnect(self) -> None:
        self.broker.disconnects += 1

    def _state(self) -> str:
        return "offsets"


class IdSource(Source):
    def _processed_key(self, token: int) -> object | None:
        return token


def _payloads(batch: list[Any]) -> list[int]:
    return [m.payload for m in batch]


def _connected(source: Source) -> list[int]:
    """The first batch: connects and hands out what the broker has."""
    return _payloads(source.next_batch())


def _retry_in(source: Source) -> float:
    """Seconds from now to the reconnect attempt `next_awake` asks Bytewax for."""
    awake = source.next_awake()
    assert awake is not None
    assert awake.tzinfo is UTC
    return (awake - datetime.now(UTC)).total_seconds()


def _waiting_for(source: Source) -> list[Any]:
    return [w for w in waiting() if w.what == str(source)]


def test_a_batch_acks_the_sealed_tokens_once_and_returns_the_snapshot_state() -> None:
    broker = Broker([1, 2, 3])
    source = Source(broker)
    assert _connected(source) == [1]  # the first batch is as small as the sizer allows
    assert source.snapshot() == "offsets"
    assert broker.acks == []
    source.next_batch()
    assert broker.acks == [[1]]
    source.next_batch()  # nothing sealed since: no empty ack
    assert broker.acks == [[1]]


def test_the_fetch_asks_for_the_sizers_limit() -> None:
    broker = Broker(list(range(10)))
    source = Source(broker, sizer=BatchSizer(3, minimum=3))
    assert _connected(source) == [0, 1, 2]
    assert broker.fetch_limits == [3]


def test_a_connected_partition_needs_no_wake_up() -> None:
    source = Source(Broker([1]))
    source.next_batch()
    assert source.next_awake() is None


def test_an_idle_partition_ends_only_once_everything_delivered_is_acked() -> None:
    broker = Broker([1])
    source = Source(broker, idle=0.05)
    assert _connected(source) == [1]
    time.sleep(0.1)
    assert source.next_batch() == [], "ended with a delivered message not acked"
    source.snapshot()
    time.sleep(0.1)
    assert source.next_batch() == []  # the ack resets the idle clock
    assert broker.acks == [[1]]
    time.sleep(0.1)
    with pytest.raises(StopIteration):
        source.next_batch()


def test_without_an_idle_timeout_a_partition_never_ends() -> None:
    source = Source(Broker(), idle=None)
    source._last_message_at -= 3600
    assert source.next_batch() == []


def test_a_partition_is_not_idle_before_its_timeout() -> None:
    source = Source(Broker(), idle=60)
    assert source.next_batch() == []
    assert source.next_batch() == []


def test_a_lost_connection_is_retried_after_the_backoff_doubling_from_a_fifth_of_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker([1, 2])
    source = Source(broker)
    _connected(source)
    broker.up = False
    with caplog.at_level(logging.WARNING):
        assert source.next_batch() == []  # lost
        assert broker.disconnects == 1
        assert 0.1 < _retry_in(source) <= 0.2
        assert source.next_batch() == [], "retried before the backoff"
        assert broker.connects == 1
        time.sleep(0.21)
        assert source.next_batch() == []  # this reconnect fails too: twice as long
        assert 0.3 < _retry_in(source) <= 0.4
        time.sleep(0.41)
        broker.up = True
        assert _payloads(source.next_batch()) == [2]  # (this broker does not redeliver)
    assert broker.connects == 2
    assert source.next_awake() is None
    lost = [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]
    assert lost == [
        f"{source}: connection lost (broker down); 1 processed messages not confirmed acked"
    ]


def test_a_reconnect_resets_the_backoff() -> None:
    broker = Broker()
    source = Source(broker)
    source.next_batch()
    for _ in range(2):
        broker.up = False
        source.next_batch()  # lost
        assert 0.1 < _retry_in(source) <= 0.2
        time.sleep(0.21)
        broker.up = True
        source.next_batch()  # reconnected
        assert source.next_awake() is None


def test_an_outage_names_the_error_and_ends_with_the_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker()
    source = Source(broker)
    source.next_batch()
    broker.up, broker.error = False, "connection reset by peer"
    with caplog.at_level(logging.WARNING, logger="factflow.outage"):
        source.next_batch()
        assert len(_waiting_for(source)) == 1
        [started] = [r.getMessage() for r in caplog.records if r.name == "factflow.outage"]
        assert started.startswith(f"waiting for {source} since ")
        assert "(connection reset by peer)" in started
        time.sleep(0.21)
        broker.up = True
        source.next_batch()
    assert _waiting_for(source) == []
    assert f"{source} is back after" in caplog.text


def test_a_failed_reconnect_reports_its_own_error_to_the_outage(limit: None) -> None:
    broker = Broker()
    source = Source(broker)
    source.next_batch()
    broker.up = False
    source.next_batch()  # lost: the outage starts
    broker.error = "still refused"
    time.sleep(0.21)
    with pytest.raises(
        OutageTooLong, match=r"LIMIT_SECONDS=0\): still refused; nothing unconfirmed"
    ):
        source.next_batch()  # the reconnect fails past the (zero) limit


def test_the_reconnect_warning_counts_the_messages_that_come_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker([1, 2, 3])
    source = Source(broker, sizer=BatchSizer(3, minimum=3))
    _connected(source)
    source.snapshot()
    broker.up = False
    with caplog.at_level(logging.WARNING, logger="factflow.connectors.base"):
        source.next_batch()  # the ack of the sealed three is cut off
        time.sleep(0.21)
        broker.up = True
        source.next_batch()
    reconnected = [r.getMessage() for r in caplog.records if "reconnected" in r.getMessage()]
    assert reconnected == [
        f"{source}: reconnected; expecting 3 already processed messages to be redelivered"
    ]


def test_the_count_of_messages_coming_again_restarts_after_each_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker()
    source = Source(broker, sizer=BatchSizer(2, minimum=2))
    with caplog.at_level(logging.WARNING, logger="factflow.connectors.base"):
        for _ in range(2):
            broker.queue = [1, 2]
            assert len(source.next_batch()) == 2
            broker.up = False
            source.next_batch()  # lost with two processed
            time.sleep(0.21)
            broker.up = True
            source.next_batch()  # reconnected
    counts = [r.args[1] for r in caplog.records if "reconnected" in r.getMessage()]  # type: ignore[index]
    assert counts == [2, 2]


def test_the_first_connection_failing_is_an_error_after_closing_the_client() -> None:
    broker = Broker()
    broker.up, broker.error = False, "bad credentials"
    source = Source(broker)
    with pytest.raises(
        ConnectionError, match=r"^ledger source \d+: cannot connect: bad credentials$"
    ):
        source.next_batch()
    assert broker.disconnects == 1
    assert _waiting_for(source) == []


def test_recognised_redeliveries_are_skipped_once_then_output_again() -> None:
    broker = Broker([1, 2])
    source = IdSource(broker, sizer=BatchSizer(2, minimum=2))
    assert _connected(source) == [1, 2]
    broker.up = False
    source.next_batch()  # lost, with 1 and 2 processed and not acked
    time.sleep(0.21)
    broker.up, broker.queue = True, [1, 2]
    assert source.next_batch() == [], "processed messages handed out again"
    source.snapshot()
    source.next_batch()
    assert broker.acks == [[1, 2]], "the recognised redeliveries are acked"
    broker.queue = [1]  # a later delivery of the same id is a new message (an ack was lost)
    assert _payloads(source.next_batch()) == [1]


def test_without_broker_ids_redeliveries_are_output_again() -> None:
    broker = Broker([1, 2])
    source = Source(broker, sizer=BatchSizer(2, minimum=2))
    _connected(source)
    broker.up = False
    source.next_batch()
    time.sleep(0.21)
    broker.up, broker.queue = True, [1, 2]
    assert _payloads(source.next_batch()) == [1, 2]


def test_the_processed_ids_remembered_are_bounded_oldest_forgotten_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "PROCESSED_MEMORY", 2)
    broker = Broker([1, 2, 3])
    source = IdSource(broker, sizer=BatchSizer(3, minimum=3))
    _connected(source)
    broker.up = False
    source.next_batch()
    assert list(source._processed) == [2, 3]
    time.sleep(0.21)
    broker.up, broker.queue = True, [1, 2, 3]
    assert _payloads(source.next_batch()) == [1]


def test_closing_disconnects_and_forgets_the_outage() -> None:
    broker = Broker()
    source = Source(broker)
    source.next_batch()
    broker.up = False
    source.next_batch()
    assert len(_waiting_for(source)) == 1
    source.close()
    assert _waiting_for(source) == []
    assert broker.disconnects == 2


def test_closing_a_partition_that_never_failed_only_disconnects() -> None:
    broker = Broker()
    source = Source(broker)
    source.close()
    assert broker.disconnects == 1
    assert source._outage_state is None


def test_the_outage_is_named_by_the_partition_and_its_queue() -> None:
    source = Source(Broker())
    source._queue = "orders"  # type: ignore[attr-defined]
    assert source._outage.what == str(source)
    assert source._outage.queue == "orders"
    assert Source(Broker())._outage.queue is None


# --- a sink over a scripted broker ---------------------------------------------------


class Sink(BrokerSinkPartition):
    def __init__(self, broker: Broker, *, rejects: int = 0) -> None:
        super().__init__()
        self.broker = broker
        self.rejects = rejects  # publishes refused while the broker is up
        self.published: list[list[Any]] = []
        self.attempted = 0

    def __str__(self) -> str:
        return f"ledger sink {id(self)}"

    def _connect(self) -> None:
        if not self.broker.up:
            raise ConnectionError(self.broker.error)
        self.broker.connects += 1

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        self.attempted += 1
        if not self.broker.up:
            raise ConnectionError(self.broker.error)
        if self.rejects:
            self.rejects -= 1
            msg = "message too large"
            raise ValueError(msg)
        self.published.append([m.payload for m in items])  # type: ignore[union-attr]

    def _disconnect(self) -> None:
        self.broker.disconnects += 1


@pytest.fixture
def limit() -> Iterator[None]:
    """An outage limit of zero: the second failure of an outage ends it."""
    set_limit(0.0)
    yield
    set_limit(DEFAULT_LIMIT_SECONDS)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sink's waits between attempts, recorded instead of slept (a 5 s backoff cap)."""
    waits: list[float] = []
    monkeypatch.setattr(base.time, "sleep", waits.append)
    return waits


def test_an_empty_batch_does_not_connect() -> None:
    broker = Broker()
    sink = Sink(broker)
    sink.write_batch([])
    assert broker.connects == 0
    assert sink.attempted == 0


def test_a_sink_connects_once_and_publishes_each_batch_once(sleeps: list[float]) -> None:
    broker = Broker()
    sink = Sink(broker)
    sink.write_batch([Message(payload=1)])
    sink.write_batch([Message(payload=2), Message(payload=3)])
    assert sink.published == [[1], [2, 3]]
    assert broker.connects == 1
    assert sleeps == []


def test_a_rejected_batch_is_retried_whole_with_backoff_on_a_new_connection(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    broker = Broker()
    sink = Sink(broker, rejects=2)
    with caplog.at_level(logging.WARNING, logger="factflow.connectors.base"):
        sink.write_batch([Message(payload=1), Message(payload=2)])
    assert sink.published == [[1, 2]]
    assert sleeps == [0.2, 0.4]
    assert broker.connects == 3
    assert broker.disconnects == 2
    sink.write_batch([Message(payload=3)])  # on the connection that worked
    assert broker.connects == 3
    failed = [r.getMessage() for r in caplog.records]
    assert failed == [f"{sink}: publish failed (ValueError('message too large')); reconnecting"] * 2


def test_a_batch_rejected_attempts_times_fails_with_the_last_error(sleeps: list[float]) -> None:
    broker = Broker()
    sink = Sink(broker, rejects=100)
    with pytest.raises(
        ConnectionError, match=r"publishing failed 8 times: message too large$"
    ) as e:
        sink.write_batch([Message(payload=1)])
    assert isinstance(e.value.__cause__, ValueError)
    assert sink.attempted == BrokerSinkPartition.attempts == 8
    assert sleeps == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_a_batch_rejected_one_time_less_than_attempts_is_published(sleeps: list[float]) -> None:
    sink = Sink(Broker(), rejects=7)
    sink.write_batch([Message(payload=1)])
    assert sink.published == [[1]]


def test_a_sink_outage_reports_the_connect_error_and_fails_past_the_limit(
    sleeps: list[float], limit: None
) -> None:
    broker = Broker()
    sink = Sink(broker)
    sink.write_batch([Message(payload=1)])
    broker.up, broker.error = False, "no route to host"
    with pytest.raises(
        OutageTooLong, match=r"LIMIT_SECONDS=0\): no route to host; nothing unconfirmed"
    ):
        sink.write_batch([Message(payload=2)])
    # the publish that found the broker gone, then the two refused connects of the outage
    assert sleeps == [0.2, 0.4]
    assert sink.attempted == 2
    assert [w for w in waiting() if w.what == str(sink)] == []


def test_a_sink_outage_holds_the_batch_until_the_broker_is_back(sleeps: list[float]) -> None:
    broker = Broker()
    sink = Sink(broker)
    sink.write_batch([Message(payload=1)])
    broker.up = False
    sleeps_until_up = 4

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        broker.up = len(sleeps) >= sleeps_until_up

    base.time.sleep = sleep  # type: ignore[assignment]  # restored by the sleeps fixture
    sink.write_batch([Message(payload=2)])
    assert sink.published == [[1], [2]]
    assert sleeps == [0.2, 0.4, 0.8, 1.6]
    assert [w for w in waiting() if w.what == str(sink)] == []


def test_a_sink_that_never_connected_fails_after_closing_the_client(sleeps: list[float]) -> None:
    broker = Broker()
    broker.up, broker.error = False, "bad credentials"
    sink = Sink(broker)
    with pytest.raises(
        ConnectionError, match=r"^ledger sink \d+: cannot connect: bad credentials$"
    ):
        sink.write_batch([Message(payload=1)])
    assert broker.disconnects == 1
    assert sleeps == []
    broker.up = True
    sink.write_batch([Message(payload=1)])  # a later batch tries the first connect again
    assert sink.published == [[1]]


def test_closing_a_sink_disconnects_and_forgets_its_outage(sleeps: list[float]) -> None:
    broker = Broker()
    sink = Sink(broker)
    sink.close()
    assert broker.disconnects == 1
    assert sink._outage_state is None
    sink._queue = "out"  # type: ignore[attr-defined]
    assert (sink._outage.what, sink._outage.queue) == (str(sink), "out")
    sink._outage.failed(ConnectionError("down"))
    assert [w.what for w in waiting() if w.what == str(sink)] == [str(sink)]
    sink.close()
    assert [w for w in waiting() if w.what == str(sink)] == []

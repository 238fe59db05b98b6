"""BrokerSourcePartition's and BrokerSinkPartition's rules with a scripted fake broker (a
test double: the outage limit cannot be reached in seconds with a real broker): acks only
after the epoch, the idle timeout not counting waits for an epoch or an outage, a wrong
URL failing at once, an outage after that retried, visible, and fatal past the limit,
acks the broker did not confirm counted as not done."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from factflow.connectors.base import BrokerSinkPartition, BrokerSourcePartition, Received
from factflow.connectors.batching import BatchSizer
from factflow.deadletter import DeadLetter
from factflow.messages import Message
from factflow.outage import DEFAULT_LIMIT_SECONDS, OutageTooLong, Waiting, set_limit, waiting

IDLE = 0.2


class FakeBroker:
    """A queue with a consumer window: `window` unacked deliveries at most; after an ack
    the next deliveries arrive one fetch late (a broker's round trip)."""

    def __init__(self, total: int, window: int) -> None:
        self.pending = list(range(total))
        self.window, self.unacked = window, 0
        self.acked: list[int] = []
        self.late = False
        self.up = True
        self.confirms_acks = True
        self.connects = 0

    def fetch(self, limit: int) -> list[int]:
        if not self.up:
            msg = "broker down"
            raise ConnectionError(msg)
        if self.late:
            self.late = False
            return []
        room = min(self.window - self.unacked, limit)
        out, self.pending = self.pending[:room], self.pending[room:]
        self.unacked += len(out)
        return out

    def ack(self, tokens: list[int]) -> None:
        if not self.confirms_acks:  # written into a dying connection: no receipt came
            msg = "acks not confirmed: disconnected"
            raise ConnectionError(msg)
        self.acked.extend(tokens)
        self.unacked -= len(tokens)
        self.late = True


class FakePartition(BrokerSourcePartition[int, None]):
    def __init__(self, broker: FakeBroker, idle: float | None = IDLE) -> None:
        super().__init__(
            lambda r: Message(payload=r.token, message_id=str(r.token)), idle, BatchSizer(1000)
        )
        self.broker = broker

    def __str__(self) -> str:
        return "fake source at amqp://user:***@host/"

    def _connect(self) -> None:
        if not self.broker.up:
            msg = "refused"
            raise ConnectionError(msg)
        self.broker.connects += 1

    def _fetch(self, limit: int) -> list[Received[int]]:
        return [Received(t, b"", {}) for t in self.broker.fetch(limit)]

    def _ack(self, tokens: list[int]) -> None:
        self.broker.ack(tokens)

    def _disconnect(self) -> None:
        pass


def _drain(part: FakePartition, seconds: float) -> list[Any]:
    """next_batch for `seconds` (one epoch), then the epoch's snapshot."""
    out: list[Any] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.extend(part.next_batch())
        time.sleep(0.01)
    part.snapshot()
    return out


def test_acks_only_after_the_epoch_and_waiting_for_one_is_not_idleness() -> None:
    broker = FakeBroker(total=30, window=10)
    part = FakePartition(broker)
    got: list[Any] = []
    # epochs longer than the idle timeout, the window full after the first fetch of each
    for _ in range(3):
        batch = _drain(part, 2 * IDLE)
        assert broker.acked == [m.payload for m in got], "acked before its epoch ended"
        got.extend(batch)
    assert [m.payload for m in got] == list(range(30))
    # the last epoch's acks go out, then the partition ends once idle
    with pytest.raises(StopIteration):
        _drain(part, 3 * IDLE)
    assert broker.acked == list(range(30))


def test_first_connect_failure_is_an_error_naming_the_masked_url() -> None:
    broker = FakeBroker(total=1, window=10)
    broker.up = False
    with pytest.raises(ConnectionError, match=r"amqp://user:\*\*\*@host/: cannot connect"):
        FakePartition(broker).next_batch()


def test_an_outage_after_the_first_connect_is_retried_and_loses_nothing() -> None:
    broker = FakeBroker(total=20, window=10)
    part = FakePartition(broker)
    first: list[Any] = []
    while len(first) < 10:  # batches start small (connectors/batching.py)
        first += part.next_batch()
    assert len(first) == 10
    broker.up = False
    assert part.next_batch() == []  # lost: the unacked ten are the broker's again
    broker.pending = [m.payload for m in first] + broker.pending
    broker.unacked = 0
    time.sleep(2 * IDLE)  # longer than the idle timeout
    broker.up, broker.late = True, True  # the first fetch after the reconnect is empty
    got: list[Any] = []
    deadline = time.monotonic() + 5
    while len(got) < 20 and time.monotonic() < deadline:
        got.extend(_drain(part, 0.05))
    assert sorted(m.payload for m in got) == list(range(20))
    assert broker.connects == 2


def test_an_outage_is_visible_while_it_lasts_and_fails_the_run_past_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = FakeBroker(total=5, window=10)
    part = FakePartition(broker, idle=None)
    while not part.next_batch():
        pass
    set_limit(0.5)
    try:
        broker.up = False
        with caplog.at_level(logging.WARNING, logger="factflow.outage"):
            assert part.next_batch() == []
            [status] = _waiting_for("fake source")
            assert status.describe() == f"waiting for {status.what} since {status.since_text}"
            with pytest.raises(OutageTooLong, match="gave up waiting for fake source"):
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    part.next_batch()
                    time.sleep(0.05)
        assert "waiting for fake source at amqp://user:***@host/ since" in caplog.text
        assert _waiting_for("fake source") == []
    finally:
        set_limit(DEFAULT_LIMIT_SECONDS)


def test_a_partition_closed_during_an_outage_leaves_the_status() -> None:
    broker = FakeBroker(total=5, window=10)
    part = FakePartition(broker, idle=None)
    while not part.next_batch():
        pass
    broker.up = False
    assert part.next_batch() == []
    assert len(_waiting_for("fake source")) == 1
    part.close()
    assert _waiting_for("fake source") == []


def _waiting_for(name: str) -> list[Waiting]:
    """This test's entries of the process-wide status (another test of the same pytest
    worker may have left a real outage in it, still being retried)."""
    return [w for w in waiting() if w.what.startswith(name)]


class FakeSink(BrokerSinkPartition):
    def __init__(self, broker: FakeBroker) -> None:
        super().__init__()
        self.broker = broker
        self.published: list[Any] = []

    def __str__(self) -> str:
        return "fake sink"

    def _connect(self) -> None:
        if not self.broker.up:
            msg = "refused"
            raise ConnectionError(msg)

    def _publish(self, items: list[Message | DeadLetter]) -> None:
        if not self.broker.up:
            msg = "broker down"
            raise ConnectionError(msg)
        self.published.extend(items)

    def _disconnect(self) -> None:
        pass


def test_a_sink_holds_its_batch_through_an_outage_and_reports_the_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = FakeBroker(total=0, window=1)
    sink = FakeSink(broker)
    sink.write_batch([Message(payload=0)])
    broker.up = False
    threading.Timer(1.0, lambda: setattr(broker, "up", True)).start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="factflow.outage"):
        sink.write_batch([Message(payload=1)])  # returns once published
    assert time.monotonic() - started >= 1.0
    assert [m.payload for m in sink.published] == [0, 1]
    assert "waiting for fake sink since" in caplog.text
    assert "fake sink is back after" in caplog.text
    assert _waiting_for("fake sink") == []


def test_a_sink_that_never_connected_fails_at_once() -> None:
    broker = FakeBroker(total=0, window=1)
    broker.up = False
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="fake sink: cannot connect"):
        FakeSink(broker).write_batch([Message(payload=0)])
    assert time.monotonic() - started < 1.0


def test_unconfirmed_acks_are_not_done_and_the_reconnect_says_how_many_come_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = FakeBroker(total=8, window=8)
    part = FakePartition(broker)
    first: list[Any] = []
    while len(first) < 8:
        first += part.next_batch()
    part.snapshot()  # sealed: acked at the next batch
    broker.confirms_acks = False
    with caplog.at_level(logging.WARNING, logger="factflow.connectors.base"):
        assert part.next_batch() == []
        broker.confirms_acks = True
        broker.pending, broker.unacked = [m.payload for m in first], 0  # redelivered
        deadline = time.monotonic() + 5
        again: list[Any] = []
        while len(again) < 8 and time.monotonic() < deadline:
            again += part.next_batch()
    assert broker.acked == []
    assert sorted(m.payload for m in again) == list(range(8))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("8 processed messages not confirmed acked" in w for w in warnings), warnings
    assert any("reconnected; expecting 8 already processed" in w for w in warnings), warnings


class IdPartition(FakePartition):
    """A broker that gives each message the same id on every delivery (Artemis, Pulsar):
    here the token itself."""

    def _processed_key(self, token: int) -> object | None:
        return token


def test_redeliveries_of_processed_messages_are_acked_with_the_next_epoch_not_output(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = FakeBroker(total=20, window=20)
    part = IdPartition(broker)
    first: list[Any] = []
    while len(first) < 10:
        first += part.next_batch()
    part.snapshot()  # sealed: its ack goes with the next batch, which the outage cuts off
    broker.confirms_acks = False
    with caplog.at_level(logging.WARNING, logger="factflow.connectors.base"):
        assert part.next_batch() == []
        # the broker has the processed ones again, before the rest
        processed = [m.payload for m in first]
        broker.pending = processed + broker.pending
        broker.confirms_acks, broker.unacked = True, 0
        again: list[Any] = []
        deadline = time.monotonic() + 5
        while len(again) < 20 - len(first) and time.monotonic() < deadline:
            again += part.next_batch()
    assert sorted(m.payload for m in again) == sorted(set(range(20)) - set(processed))
    assert broker.acked == [], "acked before the epoch that redelivered them closed"
    part.snapshot()
    part.next_batch()
    assert sorted(broker.acked) == list(range(20)), "the recognised ones are acked too"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    recognised = f"({len(processed)} recognised by their id are acked, not output again)"
    assert any(recognised in w for w in warnings), warnings


def test_a_message_not_processed_before_the_loss_is_output_after_it() -> None:
    broker = FakeBroker(total=4, window=5)
    part = IdPartition(broker)
    got: list[Any] = []
    while len(got) < 4:
        got += part.next_batch()
    broker.up = False
    assert part.next_batch() == []  # lost before its epoch closed: all four come again
    broker.pending, broker.unacked, broker.up = [0, 1, 2, 3, 99], 0, True
    after: list[Any] = []
    deadline = time.monotonic() + 5
    while not after and time.monotonic() < deadline:
        after += part.next_batch()
    assert [m.payload for m in after] == [99]

"""Redeliveries on the real STOMP brokers (Artemis, RabbitMQ's STOMP plugin), read through the
source partition itself: a raw message without a message id keeps its id when it comes again,
and on Artemis the processed messages a broken connection redelivers are acked, not handed
out again (connectors/base.py, connectors/stomp.py; issue 21)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from factflow.connectors.stomp import WINDOW_BYTES_PER_MESSAGE, StompSource, _StompPartition
from factflow.deadletter import Undecodable
from factflow.messages import Message
from tests.integration.brokers.clients import Record, Stomp, artemis, rabbitmq_stomp, tag
from tests.integration.brokers.conftest import require

pytestmark = [pytest.mark.integration]

READ_SECONDS = 15


def _partition(broker: Stomp, queue: str) -> _StompPartition:
    return StompSource(queue, url=broker.url, raw=True).build_part("read", "0", None)


def _read(part: _StompPartition, count: int) -> list[Message]:
    """Batches until `count` messages came (or READ_SECONDS passed)."""
    messages: list[Message] = []
    deadline = time.monotonic() + READ_SECONDS
    while len(messages) < count and time.monotonic() < deadline:
        for item in part.next_batch():
            assert not isinstance(item, Undecodable), item
            messages.append(item)
    return messages


def _ack_all(part: _StompPartition) -> None:
    """Close the epoch (snapshot), let the next batch ack it, then close the partition."""
    part.snapshot()
    assert part.next_batch() == []
    part.close()


@pytest.mark.parametrize("make", [artemis, rabbitmq_stomp], ids=["artemis", "rabbitmq-stomp"])
def test_a_redelivered_raw_message_keeps_its_id(make: Callable[[], Stomp]) -> None:
    broker = require(make())
    queue = broker.queue(f"ff-{tag()}-ids")
    # two bodies, no message id, no correlation id: the ids come from the broker or content
    broker.publish(queue, [Record(json.dumps({"n": n}).encode()) for n in range(2)])
    first = _partition(broker, queue)
    delivered = _read(first, 2)
    first.close()  # unacked: the broker delivers both again, to a new connection
    second = _partition(broker, queue)
    redelivered = _read(second, 2)
    _ack_all(second)

    def ids(messages: list[Message]) -> dict[int, str]:
        return {m.payload["n"]: m.message_id for m in messages}

    assert len(delivered) == len(redelivered) == 2
    assert ids(redelivered) == ids(delivered)
    assert len(set(ids(delivered).values())) == 2, "two messages, two ids"
    assert broker.leftover(queue, "") == 0


def test_artemis_acks_processed_messages_a_broken_connection_redelivers() -> None:
    broker = require(artemis())
    queue = broker.queue(f"ff-{tag()}-again")
    n, processed = 200, 40
    broker.publish(queue, [Record(json.dumps({"n": k}).encode()) for k in range(n)])
    part = _partition(broker, queue)
    seen = _read(part, processed)
    part.snapshot()  # the epoch closes; its ack goes with the next batch, which never comes
    # the connection dies under the partition, its messages unacked: the broker redelivers
    # all of them on the next connection
    conn = part._conn
    assert conn is not None
    conn.disconnect()
    rest = _read(part, n - len(seen))
    _ack_all(part)
    numbers = [m.payload["n"] for m in seen + rest]
    print(f"artemis broken connection: {len(seen)} processed, then {len(rest)} handed out")
    assert sorted(numbers) == list(range(n)), "each message handed out exactly once"
    assert broker.leftover(queue, "") == 0, "the skipped redeliveries were acked"


def _read_epochs(part: _StompPartition, count: int) -> list[int]:
    """The messages' numbers until `count` came: an epoch ends at an empty batch (the broker
    holds the rest back until acks)."""
    numbers: list[int] = []
    deadline = time.monotonic() + READ_SECONDS * 2
    while len(numbers) < count and time.monotonic() < deadline:
        batch = part.next_batch()
        numbers += [m.payload["n"] for m in batch if isinstance(m, Message)]
        if not batch:
            part.snapshot()
    return numbers


@pytest.mark.parametrize("size", [100, 4000])
def test_rabbitmq_widens_its_count_for_small_messages_only(size: int) -> None:
    """Acks come once an epoch, so RabbitMQ's count of unacked messages caps a partition's
    rate. After an epoch that used it up, a partition subscribes again for as many more as
    the window's bytes (`prefetch` x 2 KiB) hold, on the same connection: the cumulative
    acks of the newest delivery cover both subscriptions."""
    broker = require(rabbitmq_stomp())
    queue = broker.queue(f"ff-{tag()}-widen")
    prefetch = 200  # a window of 400 KiB: ~4,000 messages of 100 bytes, 100 of 4,000
    n = 6000 if size == 100 else 600
    pad = "x" * (size - 20)
    broker.publish(queue, [Record(json.dumps({"n": k, "p": pad}).encode()) for k in range(n)])
    part = StompSource(queue, url=broker.url, raw=True, prefetch=prefetch).build_part(
        "read", "0", None
    )
    numbers = _read_epochs(part, n)
    assert part._window is not None, "RabbitMQ, a queue, no count set: it may widen"
    limit, subscriptions = part._window.limit, part._subscription_count
    _ack_all(part)
    print(f"{size} bytes: at most {limit} unacked, {subscriptions} subscriptions")
    assert sorted(numbers) == list(range(n)), "every message once"
    window = prefetch * WINDOW_BYTES_PER_MESSAGE
    if size > WINDOW_BYTES_PER_MESSAGE:
        assert (limit, subscriptions) == (prefetch, 1), "large messages: the count as set"
    else:
        assert subscriptions == 2
        assert prefetch * 4 < limit <= window // (size - 20)
    assert broker.leftover(queue, "") == 0, "the cumulative acks covered both subscriptions"


def test_a_set_prefetch_and_artemis_keep_one_subscription() -> None:
    """`options.prefetch` fixes RabbitMQ's count; Artemis's window is bytes already."""
    for broker, max_prefetch in ((rabbitmq_stomp(), 200), (artemis(), 20_000)):
        broker = require(broker)
        queue = broker.queue(f"ff-{tag()}-fixed")
        broker.publish(queue, [Record(json.dumps({"n": k}).encode()) for k in range(2000)])
        part = StompSource(
            queue, url=broker.url, raw=True, prefetch=200, max_prefetch=max_prefetch
        ).build_part("read", "0", None)
        numbers = _read_epochs(part, 2000)
        subscriptions = part._subscription_count
        _ack_all(part)
        assert sorted(numbers) == list(range(2000))
        assert subscriptions == 1, broker.url
        assert broker.leftover(queue, "") == 0


def test_rabbitmq_narrows_its_count_again_when_the_messages_grow() -> None:
    """Widened on small messages, then messages of 5,000 bytes come: the count would hold
    many windows of them, so after an epoch's ack the partition reconnects with the count
    it started with (what it had not read goes back to the queue and comes again), and
    each message is handed out once."""
    broker = require(rabbitmq_stomp())
    queue = broker.queue(f"ff-{tag()}-narrow")
    prefetch, small, large = 200, 6000, 400
    broker.publish(queue, [Record(json.dumps({"n": k}).encode()) for k in range(small)])
    part = StompSource(queue, url=broker.url, raw=True, prefetch=prefetch).build_part(
        "read", "0", None
    )
    numbers = _read_epochs(part, small)
    assert part._window is not None
    widest = part._window.limit
    pad = "x" * 5000
    broker.publish(
        queue,
        [Record(json.dumps({"n": k, "p": pad}).encode()) for k in range(small, small + large)],
    )
    numbers += _read_epochs(part, large)
    _ack_all(part)  # the epoch's ack finds them grown; the next fetch reconnects
    window, subscriptions = part._window, part._subscription_count
    print(f"widest {widest}, then {window.limit} unacked, {subscriptions} subscription(s)")
    assert sorted(numbers) == list(range(small + large)), "every message once"
    assert widest > prefetch * 4, "widened on the small ones"
    assert (window.limit, subscriptions) == (prefetch, 1), "back to the count it started with"
    assert broker.leftover(queue, "") == 0

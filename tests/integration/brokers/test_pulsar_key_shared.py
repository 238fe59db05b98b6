"""Pulsar's `options.subscription_type: key_shared` on the real broker: two consumer slots
of one route's subscription (`options.consumers: 2`), read through the source partitions
themselves so that which slot got which message is known. Each key goes to one slot only,
in the order it was published, and every message comes exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import pytest

from factflow.compiler.plan import QueueSettings
from factflow.connectors.pulsar import PulsarSource, _PulsarPartition
from factflow.connectors.registry import SourceSpec, make_source
from factflow.deadletter import Undecodable
from tests.integration.brokers.clients import TIMEOUT, Pulsar, tag
from tests.integration.brokers.conftest import BROKERS, require

pytestmark = pytest.mark.integration

KEYS = 24
PER_KEY = 50
READ_SECONDS = 60


def _publish_keyed(broker: Pulsar, topic: str, count: int) -> None:
    """`count` raw JSON messages, message n with the key `k{n % KEYS}` (its partition key,
    which Key_Shared hashes), unbatched so that each is dispatched on its own."""
    import pulsar

    client = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = client.create_producer(topic, batching_enabled=False, block_if_queue_full=True)
        done = threading.Semaphore(0)
        failures: list[str] = []

        def sent(result: Any, _id: Any) -> None:
            if result != pulsar.Result.Ok:
                failures.append(str(result))
            done.release()

        for n in range(count):
            key = f"k{n % KEYS}"
            body = json.dumps({"key": key, "n": n}).encode()
            producer.send_async(body, sent, partition_key=key)
        producer.flush()
        for _ in range(count):
            assert done.acquire(timeout=TIMEOUT), "pulsar: a send was not confirmed"
        assert not failures, failures[:3]
    finally:
        client.close()


def _slots(broker: Pulsar, topic: str, subscription: str) -> list[_PulsarPartition]:
    """The route's consumer slots as the compiler's options make them."""
    settings = QueueSettings(
        "pulsar",
        broker.url,
        None,
        {"subscription_type": "key_shared", "consumers": 2},
        "raw",
    )
    source = make_source(SourceSpec(queue=topic, raw=True, subscription=subscription), settings)
    assert isinstance(source, PulsarSource)
    assert source.subscription_type == "key_shared"
    return [source.build_part("read", part, None) for part in source.list_parts()]


def _payloads(part: _PulsarPartition) -> list[dict[str, Any]]:
    payloads = []
    for item in part.next_batch():
        assert not isinstance(item, Undecodable), item
        payloads.append(item.payload)
    return payloads


def test_key_shared_gives_each_key_to_one_consumer_and_loses_nothing() -> None:
    broker = require(BROKERS["pulsar"])
    assert isinstance(broker, Pulsar)
    topic, subscription = broker.queue(f"ff-{tag()}-ks"), f"ks-{tag()}"
    total = KEYS * PER_KEY
    slots = _slots(broker, topic, subscription)
    try:
        # both consumers are subscribed (the broker splits the key hash range between
        # them) before anything is published
        for part in slots:
            assert _payloads(part) == []
        _publish_keyed(broker, topic, total)

        seen: list[list[dict[str, Any]]] = [[] for _ in slots]
        deadline = time.monotonic() + READ_SECONDS
        while sum(map(len, seen)) < total and time.monotonic() < deadline:
            for index, part in enumerate(slots):
                seen[index].extend(_payloads(part))
                part.snapshot()  # the epoch closes: the slot acks it with its next batch
        # each slot's last epoch is acked
        for part in slots:
            assert _payloads(part) == []
    finally:
        for part in slots:
            part.close()

    numbers = sorted(p["n"] for slot in seen for p in slot)
    assert numbers == list(range(total)), f"read {len(numbers)} of {total}"  # once each
    owners: dict[str, set[int]] = defaultdict(set)
    for index, slot in enumerate(seen):
        for payload in slot:
            owners[payload["key"]].add(index)
    shared = {key: slots_ for key, slots_ in owners.items() if len(slots_) > 1}
    assert shared == {}, f"keys read by both consumers: {sorted(shared)}"
    counts = [len(slot) for slot in seen]
    # 24 keys hashed over two ranges: all on one consumer has odds 2 in 2**24
    assert all(counts), f"one consumer got every key: {counts}"
    for slot in seen:
        by_key: dict[str, list[int]] = defaultdict(list)
        for payload in slot:
            by_key[payload["key"]].append(payload["n"])
        for key, ns in by_key.items():
            assert ns == sorted(ns), f"{key} out of order: {ns[:10]}"
    print(
        f"key_shared: {total} messages, {KEYS} keys; per consumer {counts} messages, "
        f"{[sum(1 for s in owners.values() if i in s) for i in range(len(slots))]} keys"
    )

    # nothing is left unacked on the subscription: a new slot on it reads nothing
    [again, *_] = _slots(broker, topic, subscription)
    try:
        leftover: list[dict[str, Any]] = []
        quiet_until = time.monotonic() + 3
        while time.monotonic() < quiet_until:
            leftover.extend(_payloads(again))
        assert leftover == []
    finally:
        again.close()

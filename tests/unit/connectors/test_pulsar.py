"""The Pulsar connector's parts that need no broker: the key a redelivered message is
recognised by, the acks a dropped connection leaves unconfirmed, and a sink batch
published again after some of its sends failed."""

from __future__ import annotations

import time
from typing import Any

import pulsar
import pytest

from factflow.connectors.base import Received
from factflow.connectors.codec import encode_body
from factflow.connectors.pulsar import (
    PulsarSource,
    _Connection,
    _PulsarPartition,
    _PulsarSinkPartition,
    message_key,
)
from factflow.deadletter import DeadLetter
from factflow.messages import Message


def _delivered(partition: int, ledger: int, entry: int, batch: int) -> Any:
    """The MessageId a delivery carries: the broker's position, as it travels (serialized)."""
    position = pulsar.MessageId(partition, ledger, entry, batch).serialize()
    return pulsar._pulsar.MessageId.deserialize(position)


def test_a_redelivery_has_the_key_of_the_first_delivery_and_other_positions_others() -> None:
    first, again = _delivered(0, 61, 7, -1), _delivered(0, 61, 7, -1)
    assert first is not again
    assert {message_key(first): None}.keys() == {message_key(again): None}.keys()
    others = [_delivered(0, 61, 8, -1), _delivered(1, 61, 7, -1), _delivered(0, 61, 7, 2)]
    assert len({message_key(m) for m in [first, *others]}) == 4


class _Consumer:
    """Stands in for pulsar-client's consumer: a dropped connection cannot be timed against
    the client's ack flush with a real broker."""

    def __init__(self) -> None:
        self.connected = True

    def is_connected(self) -> bool:
        return self.connected


def test_acks_the_connection_outlived_are_done_when_the_drop_is_noticed_late() -> None:
    part = _PulsarPartition(PulsarSource("persistent://public/default/t", subscription="s"))
    consumer = _Consumer()
    connection = _Connection(client=None, consumer=consumer)
    part._connection = connection
    now = time.monotonic()
    # acks sent 1 s and 0.1 s before the watcher last saw the connection up, then it dropped
    part._unconfirmed = [(now - 1.0, ["flushed"]), (now - 0.1, ["in flight"])]
    connection.connected_at = now
    connection.dropped, consumer.connected = True, False
    with pytest.raises(ConnectionError):
        part._live()
    assert part._unconfirmed == [(now - 0.1, ["in flight"])]


class _Producer:
    """Stands in for pulsar-client's producer: a broker cannot be made to fail chosen sends."""

    def __init__(self, failing: set[bytes]) -> None:
        self.failing = failing
        self.sent: list[bytes] = []

    def send_async(self, message: Any, callback: Any) -> None:
        body = message.data()
        self.sent.append(body)
        callback(pulsar.Result.Timeout if body in self.failing else pulsar.Result.Ok, None)

    def flush(self) -> None:
        pass


def test_a_batch_published_again_sends_only_what_the_broker_did_not_confirm() -> None:
    sink = _PulsarSinkPartition("pulsar://127.0.0.1:1", "persistent://public/default/t", True)
    items: list[Any] = [Message(payload={"n": k}) for k in range(5)]
    body = [encode_body(m, raw=True)[0] for m in items]
    sink._producer = _Producer(failing={body[1], body[3]})
    with pytest.raises(ConnectionError, match="2 send"):
        sink._publish(items)
    sink._producer = retry = _Producer(failing=set())
    sink._publish(items)
    assert retry.sent == [body[1], body[3]]
    sink._publish(items)  # a batch that went through is not a retry: all of it goes
    assert retry.sent[2:] == body


class _Built:
    """What the sink hands the producer, read back."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    def send_async(self, message: Any, callback: Any) -> None:
        self.sent.append((message.data(), message.properties()))
        callback(pulsar.Result.Ok, None)

    def flush(self) -> None:
        pass


def test_a_sink_sends_envelopes_and_dead_letters_as_encode_body_makes_them() -> None:
    sink = _PulsarSinkPartition("pulsar://127.0.0.1:1", "persistent://public/default/t", False)
    letter = DeadLetter("r", "s", "step", "error", "ValueError", "bad", 3, {"payload": 1})
    items: list[Any] = [Message(payload={"n": k}) for k in range(3)] + [letter]
    sink._producer = producer = _Built()
    sink._publish(items)
    assert producer.sent == [encode_body(item, raw=False) for item in items]


class _Delivered:
    """A received message: its properties are read only where decoding needs them."""

    def __init__(self, body: bytes, properties: dict[str, str]) -> None:
        self.body, self._properties, self.properties_read = body, properties, 0

    def properties(self) -> dict[str, str]:
        self.properties_read += 1
        return self._properties

    def message_id(self) -> Any:
        return _delivered(0, 61, 7, -1)


def test_an_envelope_decodes_without_its_properties_and_other_bodies_with_them() -> None:
    part = _PulsarPartition(PulsarSource("persistent://public/default/t", subscription="s"))
    message = Message(payload={"n": 1})
    envelope = _Delivered(encode_body(message, raw=False)[0], {})
    assert part._decode_one(Received(envelope, envelope.body, {})) == message
    assert envelope.properties_read == 0
    foreign = _Delivered(b'{"a": 1}', {"factflow-correlation-id": "c"})
    decoded = part._decode_one(Received(foreign, foreign.body, {}))
    assert isinstance(decoded, Message)
    assert (decoded.payload, decoded.correlation_id) == ({"a": 1}, "c")
    assert foreign.properties_read == 1

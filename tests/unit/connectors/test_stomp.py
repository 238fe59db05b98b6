"""The STOMP connector's parts that need no broker: the SEND frames a sink batch writes (read
back with stomp.py's own parser), the inbox a source takes its frames from, and decoding
without headers or fallback ids for what factflow itself published."""

from __future__ import annotations

import re
import threading
from typing import Any

import stomp.utils

from factflow.connectors.base import Received
from factflow.connectors.batching import BatchSizer
from factflow.connectors.codec import decode_body, encode_body
from factflow.connectors.stomp import (
    DUPLICATE_ID_HEADER,
    StompEndpoint,
    UnackedWindow,
    _Inbox,
    _StompPartition,
    _StompSinkPartition,
)
from factflow.deadletter import DeadLetter, Original, Undecodable
from factflow.messages import Message


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.writes.append(data)


class _Connection:
    def __init__(self) -> None:
        self.transport = _Transport()


class _Confirming(_Inbox):
    """Every receipt asked for has arrived."""

    def __init__(self, artemis: bool) -> None:
        super().__init__()
        self.artemis = artemis
        self.awaited: list[str] = []

    def await_receipt(self, receipt: str, what: str) -> None:
        self.awaited.append(receipt)


def _frames(data: bytes) -> list[Any]:
    """SEND frames as a broker reads them: headers up to a blank line, then
    content-length bytes of body and a NUL."""
    frames = []
    while data:
        end = data.index(b"\n\n") + 2
        length = int(re.search(rb"\ncontent-length:(\d+)\n", data[:end]).group(1))  # type: ignore[union-attr]
        assert data[end + length : end + length + 1] == b"\0"
        frames.append(stomp.utils.parse_frame(data[: end + length]))
        data = data[end + length + 1 :]
    return frames


def _sink(artemis: bool, raw: bool = False) -> tuple[_StompSinkPartition, _Connection, _Confirming]:
    sink = _StompSinkPartition(StompEndpoint.parse("stomp://127.0.0.1:1"), "/queue/out", raw)
    connection, inbox = _Connection(), _Confirming(artemis)
    sink._conn, sink._inbox, sink._batch_key = connection, inbox, "batch"  # type: ignore[assignment]
    return sink, connection, inbox


def test_a_sink_batch_is_one_send_frame_per_item_and_one_receipt_on_the_last() -> None:
    sink, connection, inbox = _sink(artemis=True)
    letter = DeadLetter("r", "s", "step", "error", "ValueError", "bad\nthing", 3, {"payload": 1})
    original = Original(b"\x00\xffbytes", {"destination": "/queue/in", "x:y": "a\nb"})
    items: list[Any] = [Message(payload={"n": k}) for k in range(3)] + [letter, original]
    sink._publish(items)
    frames = _frames(b"".join(connection.transport.writes))
    assert [f.cmd for f in frames] == ["SEND"] * 5
    for index, (frame, item) in enumerate(zip(frames, items, strict=True)):
        body, headers = encode_body(item, raw=False)
        assert frame.body == body
        # the frame's own header wins where an item's header repeats it, as on the broker
        expected = {
            **headers,
            "destination": "/queue/out",
            "persistent": "true",
            "destination-type": "ANYCAST",
            "content-length": str(len(body)),
            DUPLICATE_ID_HEADER: f"batch:{index}",
        }
        if index == len(items) - 1:
            expected["receipt"] = inbox.awaited[0]
        assert frame.headers == expected
    assert len(inbox.awaited) == 1


def test_a_raw_sink_on_rabbitmq_sends_payloads_with_headers_and_no_duplicate_ids() -> None:
    sink, connection, _ = _sink(artemis=False, raw=True)
    message = Message(payload={"n": 1}, metadata={"k": "v"})
    sink._publish([message])
    (frame,) = _frames(b"".join(connection.transport.writes))
    body, headers = encode_body(message, raw=True)
    assert frame.body == body
    assert DUPLICATE_ID_HEADER not in frame.headers
    assert headers.items() <= frame.headers.items()


def test_a_large_batch_goes_out_in_several_writes_of_whole_frames() -> None:
    sink, connection, _ = _sink(artemis=True)
    items: list[Any] = [Message(payload={"text": "x" * 10_000, "n": k}) for k in range(300)]
    sink._publish(items)
    assert len(connection.transport.writes) > 1
    for write in connection.transport.writes:
        _frames(write)  # each write ends at a frame's end
    frames = _frames(b"".join(connection.transport.writes))
    assert [decode_body(f.body, {}, raw=False, queue="q", fallback_id="") for f in frames] == items


def test_the_inbox_hands_out_frames_in_order_up_to_the_limit_and_waits_for_the_first() -> None:
    inbox = _Inbox()
    assert inbox.take(10, 0.01) == []
    for n in range(5):
        inbox.on_message(n)
    assert inbox.take(3, 0.01) == [0, 1, 2]
    assert inbox.take(10, 0.01) == [3, 4]
    timer = threading.Timer(0.05, inbox.on_message, args=("late",))
    timer.start()
    assert inbox.take(10, 5.0) == ["late"]
    timer.join()


def _partition(raw: bool, artemis: bool) -> _StompPartition:
    part = _StompPartition(
        StompEndpoint.parse("stomp://127.0.0.1:1"), "/queue/in", 10, raw, None, BatchSizer(10)
    )
    part._inbox.artemis = artemis
    return part


def test_an_envelope_decodes_without_its_headers_and_foreign_bodies_as_before() -> None:
    message = Message(payload={"n": 1})
    envelope, headers = encode_body(message, raw=False)
    for artemis in (True, False):
        part = _partition(raw=False, artemis=artemis)
        assert part._decode_one(Received("ID:c,41", envelope, {})) == message
        # not an envelope: the body with the headers, the fallback id as before
        foreign = Received("ID:c,42", b'{"a": 1}', {"correlation-id": "c"})
        decoded = part._decode_one(foreign)
        assert isinstance(decoded, Message)
        assert decoded.payload == {"a": 1}
        assert decoded.message_id == part._decode_one(foreign).message_id
    # a raw source takes no envelope: msgpack bytes are not a raw (JSON or text) body
    raw = _partition(raw=True, artemis=True)._decode_one(Received("ID:c,43", envelope, headers))
    assert isinstance(raw, Undecodable)


def test_only_a_queue_widens_past_its_prefetch() -> None:
    """A second subscription to a topic would be a second copy of its messages."""
    endpoint = StompEndpoint.parse("stomp://127.0.0.1:1")
    for destination, widest in (
        ("/queue/in", 20_000),
        ("/amq/queue/in", 20_000),
        ("/topic/in", 10),
    ):
        part = _StompPartition(endpoint, destination, 10, False, None, BatchSizer(10), 20_000)
        assert part._max_prefetch == widest, destination
    # a set count below the prefetch never narrows it
    assert (
        _StompPartition(endpoint, "/queue/in", 10, False, None, BatchSizer(10), 5)._max_prefetch
        == 10
    )


def test_the_unacked_window_widens_once_the_count_is_used_up_on_small_messages() -> None:
    window = UnackedWindow(window_bytes=100_000, initial=100, most=2_000)
    assert window.fetched(99, 99 * 50) == 0, "count not used up yet: the broker sends more"
    # 100 messages of 50 bytes: the window holds 2,000 of them, the most allowed
    assert window.fetched(1, 50) == 1_900
    window.widened(1_900)
    assert window.limit == 2_000
    assert window.fetched(5_000, 5_000 * 50) == 0, "at the most: no further"
    assert window.acked() is False, "the messages did not grow"
    assert (window.fetched_since_ack, window.bytes_since_ack) == (0, 0)


def test_the_unacked_window_stays_for_large_messages_and_small_steps() -> None:
    large = UnackedWindow(window_bytes=100_000, initial=100, most=2_000)
    assert large.fetched(100, 100 * 2_000) == 0, "100 of 2,000 bytes fill the window"
    step = UnackedWindow(window_bytes=100_000, initial=100, most=2_000)
    assert step.fetched(100, 100 * 810) == 0, "123 fit: 23 more is not a quarter more"
    quarter = UnackedWindow(window_bytes=100_000, initial=100, most=2_000)
    assert quarter.fetched(100, 100 * 800 - 400) == 25, "a quarter more is worth it"


def test_the_unacked_window_narrows_when_the_messages_grow() -> None:
    window = UnackedWindow(window_bytes=100_000, initial=100, most=2_000)
    window.widened(window.fetched(100, 100 * 50))
    window.acked()
    window.fetched(1_000, 1_000 * 150)  # 2,000 of 150 bytes: three windows
    assert window.acked() is True
    never_widened = UnackedWindow(window_bytes=100_000, initial=100, most=2_000)
    never_widened.fetched(100, 100 * 100_000)
    assert never_widened.acked() is False, "the count as set is the user's"

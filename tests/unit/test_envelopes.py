"""Envelopes from producers that are not factflow must never stop a flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgpack

from factflow.connectors.codec import (
    decode_body,
    decode_envelope,
    decode_json_line,
    dumps_json,
    encode_body,
    envelope_packer,
    loads_json,
    message_from_data,
)
from factflow.deadletter import DeadLetter
from factflow.messages import Message


def test_a_null_payload_and_odd_field_types_still_make_a_message() -> None:
    message = Message.from_envelope({"payload": None, "message_id": 5, "metadata": [1]})
    assert message.payload is None
    assert message.message_id == "5"
    assert message.metadata == {}


def test_a_record_without_message_id_gets_the_same_id_when_read_again() -> None:
    first = message_from_data({"payload": {"a": 1}}, raw=False, queue="q", position=7)
    again = message_from_data({"payload": {"a": 1}}, raw=False, queue="q", position=7)
    other = message_from_data({"payload": {"a": 1}}, raw=False, queue="q", position=8)
    assert first.message_id == again.message_id != other.message_id


def test_a_bare_payload_with_a_message_id_key_is_a_payload_with_a_stable_id() -> None:
    data = {"message_id": "not an envelope", "text": "hi"}
    first = message_from_data(data, raw=False, queue="q", position=1)
    assert first.payload == data
    assert first.message_id == message_from_data(data, raw=False, queue="q", position=1).message_id


def test_a_line_that_is_not_json_is_undecodable_not_an_exception() -> None:
    item = decode_json_line(b"{nope\n", raw=False, queue="q", position=0)
    assert not isinstance(item, Message)
    assert "not JSON" in item.error


def test_a_msgpack_dead_letter_decodes_as_its_payload() -> None:
    """A broker dead-letter queue's record (msgpack, no envelope) is read as a message
    whose payload is the letter, as a file queue's JSON line of one is."""
    letter = DeadLetter.of("r", "s", "r__0_s", Message(payload={"n": 1}), ValueError("no"), 2)
    body, headers = encode_body(letter, raw=False)
    decoded = decode_body(body, headers, raw=False, queue="r.dlq", fallback_id="7")
    assert isinstance(decoded, Message)
    assert decoded.payload == letter.to_dict()
    assert decoded.payload["message"]["payload"] == {"n": 1}


def test_json_lines_read_as_json_reads_them() -> None:
    """orjson reads the common lines; what it reads differently or refuses (NaN, numbers
    beyond a double or 64 bits, lone surrogates, a BOM, UTF-16) is read by json."""
    lines = [
        b'{"a": 1, "b": [1.5, "\xc3\xa9", null, true]}\n',
        b"NaN\n",
        b"[1E400]\n",
        b"123456789012345678901234567890\n",
        b'"\\ud800"\n',
        b'\xef\xbb\xbf{"a": 1}\n',
        '{"a": 1}\n'.encode("utf-16"),
    ]
    for line in lines:
        assert repr(loads_json(line)) == repr(json.loads(line)), line


def test_json_lines_write_what_json_writes_compactly() -> None:
    value = {"a": [1, 2**70, 1.5, None], 1: "é", "when": datetime(2026, 1, 2, tzinfo=UTC)}
    assert json.loads(dumps_json(value)) == json.loads(json.dumps(value, default=str))
    assert dumps_json({"n": float("nan")}) == b'{"n":null}'


def test_the_envelope_fast_path_reads_what_decode_body_reads_or_declines() -> None:
    """Sources try `decode_envelope` first, without headers or fallback id: for an
    envelope with a message id it must give decode_body's message; for anything else
    None, so that decode_body (headers and all) reads it."""
    message = Message(payload={"n": 1}, metadata={"m": "x"}, correlation_id="c", stage="s")
    body, headers = encode_body(message, raw=False)
    assert envelope_packer()(message.to_envelope()) == body
    fast = decode_envelope(body)
    assert fast == decode_body(body, headers, raw=False, queue="q", fallback_id="1") == message
    letter = DeadLetter.of("r", "s", "r__0_s", message, ValueError("no"), 2)
    declined = [
        msgpack.packb({"payload": 1}),  # no message id: decode_body derives a stable one
        msgpack.packb({"message_id": "m", "text": "a payload"}),  # no envelope
        msgpack.packb([1, 2]),
        encode_body(letter, raw=False)[0],
        b'{"plain": 1}',  # JSON from a foreign producer
        b"\xff\xfe not text",
    ]
    assert [decode_envelope(b) for b in declined] == [None] * len(declined)

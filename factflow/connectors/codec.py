"""Records <-> messages: the seed system's envelope, or `raw` bodies.

Sources accept both an envelope (a mapping with `payload`) and a bare payload; a record
that cannot be decoded becomes an `Undecodable` item for the dead letters, never an
exception that would stop the flow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import msgpack
import orjson

from factflow.deadletter import DeadLetter, Original, Undecodable
from factflow.ids import record_id
from factflow.messages import Message, make_message, utc_now_iso

_json_encoder = json.JSONEncoder(ensure_ascii=False, default=str)
_json_decoder = json.JSONDecoder()


def message_from_data(data: Any, *, raw: bool, queue: str, position: object) -> Message:
    # Each message is built once, with its id: no throwaway uuid4, no copy.
    if not raw and isinstance(data, dict) and "payload" in data:
        if data.get("message_id") is None:
            data = {**data, "message_id": record_id(queue, position)}
        return Message.from_envelope(data)
    return make_message(data, {}, record_id(queue, position), None, None, None, None, utc_now_iso())


def json_text(data: bytes) -> str:
    """`data` decoded as `json.loads(data)` decodes it, without sniffing the encoding of
    text that starts with two nonzero ASCII bytes (no BOM, not UTF-16/32: UTF-8)."""
    start = data[:2]
    if start.isascii() and b"\0" not in start:
        return data.decode("utf-8", "surrogatepass")
    return data.decode(json.detect_encoding(data), "surrogatepass")


# orjson reads and writes JSON four to ten times as fast as json; where the two differ,
# json's reading wins: orjson refuses NaN, Infinity, numbers beyond a double, lone
# surrogates and a BOM, and reads an integer beyond 64 bits as a float
_LONG_NUMBER = re.compile(rb"\d{19}")
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
"""As json.dumps(default=str) writes: keys as text, datetimes by str()."""


def loads_json(data: bytes) -> Any:
    """`json.loads(data)`, faster (orjson where it reads the same)."""
    if _LONG_NUMBER.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json may still read it, or says why not
    return _json_decoder.decode(json_text(data))


def dumps_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of `value`, others by `str()`; NaN and infinities, which JSON
    lacks, as null (orjson; json for integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        return _json_encoder.encode(value).encode()


def decode_json_line(
    line: bytes, *, raw: bool, queue: str, position: object
) -> Message | Undecodable:
    try:
        data = loads_json(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return Undecodable(queue, line.rstrip(b"\r\n"), f"not JSON: {exc}")
    return message_from_data(data, raw=raw, queue=queue, position=position)


Outgoing = Message | DeadLetter | Original
"""What a sink publishes: a message, a dead letter, or a record replayed as it arrived
(a redriven undecodable record: `encode_body` and `encode_json_line` keep its bytes)."""


def item_to_data(item: Message | DeadLetter) -> dict[str, Any]:
    return item.to_dict() if isinstance(item, DeadLetter) else item.to_envelope()


def encode_json_line(item: Outgoing) -> bytes:
    if isinstance(item, Original):
        return item.body.rstrip(b"\r\n") + b"\n"
    return dumps_json(item_to_data(item)) + b"\n"


def encode_msgpack(item: Message | DeadLetter) -> bytes:
    return msgpack.packb(item_to_data(item), default=str)  # type: ignore[no-any-return]


def envelope_packer() -> Callable[[Any], bytes]:
    """`pack(message.to_envelope())` is `encode_msgpack(message)` for a sink's batches:
    one Packer for all of them (`msgpack.packb` builds one per call). Not thread-safe."""
    return msgpack.Packer(default=str).pack  # type: ignore[no-any-return]


HEADER_PREFIX = "factflow-"
_HEADER_FIELDS = ("message_id", "correlation_id", "execution_id", "route_id", "stage", "timestamp")


def _header(name: str) -> str:
    return HEADER_PREFIX + name.replace("_", "-")


ENVELOPE_HEADERS: Mapping[str, str] = MappingProxyType({_header("format"): "envelope"})
"""The headers of every envelope a sink publishes (`encode_body` returns a copy)."""


def encode_body(item: Outgoing, *, raw: bool) -> tuple[bytes, dict[str, str]]:
    """A broker body and headers: the msgpack envelope, or (raw) the payload as JSON with
    the envelope fields in headers, for consumers that are not factflow; an Original as
    it arrived."""
    if isinstance(item, Original):
        return item.body, dict(item.headers)
    if isinstance(item, DeadLetter):
        return encode_msgpack(item), _dead_letter_headers(item)
    if not raw:
        return encode_msgpack(item), dict(ENVELOPE_HEADERS)
    headers = {_header(f): str(v) for f in _HEADER_FIELDS if (v := getattr(item, f)) is not None}
    headers[_header("metadata")] = json.dumps(item.metadata, default=str)
    return dumps_json(item.payload), headers


_ERROR_HEADER_CHARS = 1000


def _dead_letter_headers(letter: DeadLetter) -> dict[str, str]:
    """Why a dead letter died, readable without decoding the body (one line each)."""
    return {
        _header("format"): "envelope",
        _header("reason"): letter.reason,
        _header("route_id"): letter.route_id,
        _header("stage"): letter.stage,
        _header("error_type"): letter.error_type,
        _header("error"): " ".join(letter.error.split())[:_ERROR_HEADER_CHARS],
        _header("attempts"): str(letter.attempts),
        _header("failed_at"): letter.failed_at,
    }


def _text_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {
        str(k): v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        for k, v in headers.items()
    }


def decode_envelope(body: bytes) -> Message | None:
    """`decode_body`'s common case, cheaper: a msgpack envelope that names its message id.
    None for anything else, which `decode_body` reads (headers, fallback id and all): so a
    source builds neither for the messages factflow itself published."""
    try:
        data = msgpack.unpackb(body)
    except Exception:  # not msgpack: decode_body says what it is
        return None
    if type(data) is dict and "payload" in data and data.get("message_id") is not None:
        return Message.from_envelope(data)
    return None


def decode_body(
    body: bytes, headers: dict[str, Any], *, raw: bool, queue: str, fallback_id: str
) -> Message | Undecodable:
    """A message from a broker body: a msgpack envelope, else a raw payload (JSON when it
    parses, else text) with envelope fields taken from the headers."""
    if not raw:
        try:
            data = msgpack.unpackb(body)
        except Exception:  # not msgpack: read it as a raw body below
            data = None
        if isinstance(data, dict):
            # an envelope; else a msgpack record such as a dead letter (its payload, as a
            # file queue's JSON line of one is)
            return message_from_data(data, raw=False, queue=queue, position=fallback_id)
    try:
        payload: Any = loads_json(body)
    except ValueError:
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Undecodable(queue, bytes(body), f"not text: {exc}", _text_headers(headers))
    fields = {f: str(headers[_header(f)]) for f in _HEADER_FIELDS if _header(f) in headers}
    metadata: Any = {}
    if _header("metadata") in headers:
        try:
            metadata = json.loads(headers[_header("metadata")])
        except ValueError:
            metadata = {}
    fields.setdefault("message_id", record_id(queue, fallback_id))
    return Message(
        payload=payload, metadata=metadata if isinstance(metadata, dict) else {}, **fields
    )

"""The payload hashes of lineage rows: SHA-256 of the payload's JSON with sorted keys, no
spaces, UTF-8 (orjson); what orjson refuses goes through the stdlib's canonical JSON.
The row's `input_hash` and `output_hash` are these hashes (the input payload; the list of
the output payloads)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from factflow.dataflows.lineage import lineage_row, payload_hash, payload_json
from factflow.db.lineage_copy import StepRowEncoder
from factflow.db.lineage_writer import new_row_id
from factflow.messages import Message, canonical_json


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": [True, None, 1.5]}, '{"a":[true,null,1.5],"b":1}'),
        ({"z": {"y": 2, "x": 1}}, '{"z":{"x":1,"y":2}}'),
        ("blåbær \u2028", '"blåbær \u2028"'),  # UTF-8, not \\u escapes
        (float("nan"), "null"),  # jsonb has no NaN either
        ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, '{"when":"2026-01-01T00:00:00+00:00"}'),
        ([], "[]"),
    ],
)
def test_payload_json_sorts_keys_without_spaces_in_utf8(value: Any, text: str) -> None:
    assert payload_json(value) == text.encode()
    assert payload_hash(value) == hashlib.sha256(text.encode()).hexdigest()


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


@pytest.mark.parametrize(
    "value",
    [{3: "x", 1: "y"}, 2**70, {"s": "lone \ud800 surrogate"}],
    ids=["int keys", "big int", "lone surrogate"],
)
def test_what_orjson_refuses_is_the_stdlib_canonical_json(value: Any) -> None:
    assert payload_json(value) == canonical_json(value).encode()
    json.loads(payload_json(value))  # still JSON


def test_other_types_are_their_str() -> None:
    assert payload_json({"o": Opaque()}) == b'{"o":"opaque!"}'


def test_a_row_hashes_its_input_and_the_list_of_its_outputs() -> None:
    encoder = StepRowEncoder(uuid.uuid4(), "r", "split", 0, "split")
    message = Message({"doc": "d", "items": [2, 1]})
    outputs = [Message(1), Message({"b": 2, "a": 1})]
    row = lineage_row(
        encoder, row_id=new_row_id(), message=message, status="completed", attempts=1,
        started_us=0, completed_us=1, outputs=outputs,
    )  # fmt: skip
    assert payload_hash(message.payload).encode() in row
    assert payload_hash([1, {"a": 1, "b": 2}]).encode() in row
    # a passthrough's output is its input, hashed as a list of one
    passed = lineage_row(
        encoder, row_id=new_row_id(), message=message, status="completed", attempts=1,
        started_us=0, completed_us=1, outputs=[message],
    )  # fmt: skip
    assert payload_hash([message.payload]).encode() in passed
    assert payload_hash(message.payload) != payload_hash([message.payload])

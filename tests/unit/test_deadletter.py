"""Dead letters keep what a redrive needs: the record as it arrived, or the message, and why.

A redrive publishes a letter's `original` again byte for byte, so the size rule is the
promise under test: up to ORIGINAL_LIMIT_BYTES whole, beyond it cut and refused.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from factflow.deadletter import (
    ORIGINAL_KEY,
    ORIGINAL_LIMIT_BYTES,
    PREVIEW_BYTES,
    REASON_CIRCUIT_OPEN,
    REASON_FAILED,
    DeadLetter,
    Original,
    OriginalTruncatedError,
    Undecodable,
    original_of,
)
from factflow.messages import Message


def _through_json(data: object) -> object:
    """What a letter's envelope is after the dead-letter queue stored and returned it."""
    return json.loads(json.dumps(data))


def test_an_original_comes_back_byte_for_byte_with_its_headers() -> None:
    body = bytes(range(256)) * 3  # every byte value, not text
    original = Original(body, {"content-type": "application/x-odd", "x-n": "1"})
    data = original.to_json()
    assert data["size"] == len(body)
    assert data["truncated"] is False
    assert Original.from_json(_through_json(data)) == original


def test_a_body_of_exactly_the_limit_is_kept_whole_and_redrivable() -> None:
    body = b"\x01" * ORIGINAL_LIMIT_BYTES
    data = Original(body).to_json()
    assert data["truncated"] is False
    assert Original.from_json(data).body == body


def test_a_body_one_byte_over_the_limit_keeps_its_start_and_refuses_a_redrive() -> None:
    body = bytes(range(256)) * (ORIGINAL_LIMIT_BYTES // 256) + b"\x07"
    data = Original(body, {"h": "v"}).to_json()
    assert data["truncated"] is True
    assert data["size"] == ORIGINAL_LIMIT_BYTES + 1
    assert base64.b64decode(data["body_base64"]) == body[:PREVIEW_BYTES]
    assert data["headers"] == {"h": "v"}
    with pytest.raises(OriginalTruncatedError, match=f"{ORIGINAL_LIMIT_BYTES + 1} bytes"):
        Original.from_json(data)


def test_headers_are_read_back_as_text_and_may_be_missing() -> None:
    body64 = base64.b64encode(b"x").decode()
    assert Original.from_json({"body_base64": body64, "headers": {"n": 5}}).headers == {"n": "5"}
    assert Original.from_json({"body_base64": body64}) == Original(b"x", {})
    assert Original.from_json({"body_base64": body64, "headers": None}).headers == {}


@pytest.mark.parametrize("data", [None, "text", ["body_base64"], {"headers": {}}])
def test_a_letter_without_an_original_record_is_an_error_not_a_truncation(data: object) -> None:
    with pytest.raises(ValueError, match="no original record") as raised:
        Original.from_json(data)
    assert not isinstance(raised.value, OriginalTruncatedError)


def test_original_of_tells_a_kept_record_from_a_message() -> None:
    message = Message(payload={"n": 1}).to_envelope()
    assert original_of(message) is None
    assert original_of("not an envelope") is None
    kept = Undecodable("q", b"\xff\xfe", "not msgpack", {"k": "v"}).envelope()
    assert original_of(_through_json(kept)) == Original(b"\xff\xfe", {"k": "v"})
    cut = Undecodable("q", b"\xff" * (ORIGINAL_LIMIT_BYTES + 1), "not msgpack").envelope()
    with pytest.raises(OriginalTruncatedError):
        original_of(cut)


def test_a_dead_letter_carries_the_message_the_cause_and_the_attempts() -> None:
    message = Message(payload={"n": 1}, metadata={"source": "orders"})
    before = datetime.now(UTC)
    letter = DeadLetter.of("r1", "enrich", "r1__0_enrich", message, KeyError("sku"), 3)
    data = letter.to_dict()
    assert data == {
        "route_id": "r1",
        "stage": "enrich",
        "step_id": "r1__0_enrich",
        "reason": REASON_FAILED,
        "error_type": "KeyError",
        "error": "'sku'",
        "attempts": 3,
        "failed_at": letter.failed_at,
        "lineage_id": None,
        "message": message.to_envelope(),
    }
    # the redrive rebuilds the message from the letter: nothing of it is lost
    assert Message.from_envelope(_through_json(data)["message"]) == message
    failed_at = datetime.fromisoformat(letter.failed_at)
    assert before - timedelta(seconds=1) <= failed_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_a_dead_letter_says_the_reason_it_was_given() -> None:
    letter = DeadLetter.of(
        "r", "s", "r__0_s", Message(payload=1), RuntimeError("down"), 0, REASON_CIRCUIT_OPEN
    )
    assert letter.to_dict()["reason"] == REASON_CIRCUIT_OPEN


def test_an_undecodable_record_shows_its_start_as_text_without_nul() -> None:
    body = b"ab\x00c\xffd" + b"z" * (2 * PREVIEW_BYTES)
    record = Undecodable("orders", body, "not JSON")
    preview = record.preview
    assert preview.startswith("ab\ufffdc\ufffdd")
    assert "\0" not in preview
    # the preview covers PREVIEW_BYTES of the body: 6 bytes above become 6 characters
    assert len(preview) == PREVIEW_BYTES


def test_an_undecodable_records_envelope_keeps_the_original_and_the_execution() -> None:
    record = Undecodable("orders", b"\x93\x00", "not msgpack", {"k": "v"})
    envelope = record.envelope("exec-1")
    assert envelope["payload"] == record.preview
    assert envelope["metadata"] == {"queue": "orders"}
    assert envelope["execution_id"] == "exec-1"
    assert Original.from_json(envelope[ORIGINAL_KEY]) == Original(b"\x93\x00", {"k": "v"})
    assert "execution_id" not in record.envelope()


@pytest.mark.parametrize("data", [None, [], {"headers": {}}])
def test_a_letter_without_an_original_record_says_so(data: object) -> None:
    with pytest.raises(ValueError, match=r"^the dead letter keeps no original record$"):
        Original.from_json(data)

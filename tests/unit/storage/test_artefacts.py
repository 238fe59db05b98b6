"""`store_message`: the envelope as JSON under the stage key, with lineage metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factflow.messages import Message
from factflow.storage import MessageEncodingError, store_message
from factflow.storage.filesystem import FileSystemStorage
from factflow.storage.metadata import decode_value, encode_value


@pytest.fixture
def storage(tmp_path: Path) -> FileSystemStorage:
    return FileSystemStorage(tmp_path, fsync=False)


def test_envelope_and_metadata(storage: FileSystemStorage) -> None:
    parent = Message({"url": "https://example.org/a"}, message_id="p1")
    message = parent.derive({"text": "hello", "url": "https://example.org/a#p1"})
    key = store_message(
        storage,
        message,
        execution_id="e1",
        route_id="ingest",
        stage="split",
        adapter="split",
        lineage_id=42,
        config_hash="abc123",
        extra={"pipeline_name": "text"},
    )
    assert key == f"executions/e1/ingest/split/{message.message_id}.json"
    envelope = json.loads(storage.get(key))
    assert envelope == {
        **message.to_envelope(),
        "execution_id": "e1",
        "route_id": "ingest",
        "stage": "split",
    }
    metadata = storage.metadata(key)
    stored_at = metadata.pop("stored-at")
    assert stored_at >= message.timestamp
    assert metadata == {
        "message-id": message.message_id,
        "correlation-id": "p1",
        "execution-id": "e1",
        "route-id": "ingest",
        "stage": "split",
        "adapter": "split",
        "timestamp": message.timestamp,
        "config-hash": "abc123",
        "lineage-id": "42",
        "source-url": "https://example.org/a#p1",
        "pipeline-name": "text",
    }


def test_per_pipeline_fields_fall_back_to_message_metadata(storage: FileSystemStorage) -> None:
    message = Message(
        [0.1, 0.2],
        metadata={"url": "https://example.org/ü", "embedding_model": "text-embedding-3-small"},
    )
    key = store_message(storage, message, execution_id="e1", route_id="embed", stage="embed")
    metadata = storage.metadata(key)
    assert metadata["source-url"] == "https://example.org/ü"
    assert metadata["embedding-model"] == "text-embedding-3-small"
    assert metadata["adapter"] == "embed"  # the stage name when no adapter type is given
    assert "lineage-id" not in metadata
    assert "correlation-id" not in metadata


def test_long_urls_are_capped_not_fatal(storage: FileSystemStorage) -> None:
    message = Message({"url": "https://example.org/" + "x" * 5000})
    key = store_message(storage, message, execution_id="e1", route_id="r", stage="s")
    url = storage.metadata(key)["source-url"]
    assert len(url) == 512
    assert url.endswith("...(truncated)")


def test_storing_again_is_a_no_op(storage: FileSystemStorage) -> None:
    message = Message({"n": 1}, message_id="m1")
    first = store_message(storage, message, execution_id="e1", route_id="r", stage="s")
    body = storage.get(first)
    retried = message.with_changes(timestamp="2030-01-01T00:00:00.000000+00:00")
    assert store_message(storage, retried, execution_id="e1", route_id="r", stage="s") == first
    assert storage.get(first) == body
    assert len(storage.list()) == 1


def test_a_payload_that_is_not_json_is_a_message_error(storage: FileSystemStorage) -> None:
    message = Message({"raw": b"\x00\x01"}, message_id="m1")
    with pytest.raises(MessageEncodingError, match="m1 cannot be stored"):
        store_message(storage, message, execution_id="e1", route_id="r", stage="s")
    assert storage.list() == []


@pytest.mark.parametrize(
    "value", ["plain", "", "ünïcode", " padded ", "=?UTF-8?B?looks-encoded?=", "tab\there"]
)
def test_metadata_value_encoding_round_trips(value: str) -> None:
    encoded = encode_value(value)
    assert encoded.isascii()
    assert encoded == encoded.strip()
    assert decode_value(encoded) == value

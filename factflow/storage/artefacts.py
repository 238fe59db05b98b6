"""Storing one adapter output as a stage artefact: the envelope as JSON, plus its metadata.

The metadata names are the same on every backend (the filesystem's sidecar, S3's
`x-amz-meta-*`), so the CLI and replay can read either:

    message-id, correlation-id   the message and its parent (the lineage edge)
    execution-id, route-id       where it ran
    stage, adapter               the stage name in the route, the adapter type
    timestamp, stored-at         when the message was made, when it was stored
    config-hash                  the compiled pipeline's hash (which config produced it)
    lineage-id                   the lineage row written for this output
    source-url                   the payload's (else the metadata's) `url`
    embedding-model              the payload's (else the metadata's) `embedding_model`

Missing values are left out rather than stored empty.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from factflow.messages import Message, utc_now_iso
from factflow.storage.base import StageStorage
from factflow.storage.exceptions import InvalidMetadataError, MessageEncodingError
from factflow.storage.keys import stage_key
from factflow.storage.metadata import normalize_name

ENVELOPE_CONTENT_TYPE = "application/json"

# Per-pipeline fields come from user data and may be long; S3 allows 2 KB of metadata in
# all, so each is capped and marked rather than making the whole write fail.
MAX_FIELD_CHARS = 512
_TRUNCATED = "...(truncated)"


def encode_envelope(message: Message) -> bytes:
    """The message's envelope as UTF-8 JSON, the same shape the file queue writes."""
    try:
        return json.dumps(message.to_envelope(), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        msg = f"message {message.message_id} cannot be stored: its envelope is not JSON ({exc})"
        raise MessageEncodingError(msg) from exc


def _field(message: Message, name: str) -> str | None:
    """A per-pipeline field from the payload, else from the metadata; strings only."""
    for source in (message.payload, message.metadata):
        if isinstance(source, Mapping):
            value = source.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def _cap(value: str) -> str:
    if len(value) <= MAX_FIELD_CHARS:
        return value
    return value[: MAX_FIELD_CHARS - len(_TRUNCATED)] + _TRUNCATED


def artefact_metadata(
    message: Message,
    *,
    execution_id: str,
    route_id: str,
    stage: str,
    adapter: str | None = None,
    lineage_id: str | int | None = None,
    config_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The metadata `store_message` writes (see the module docstring)."""
    fields: dict[str, str | None] = {
        "message-id": message.message_id,
        "correlation-id": message.correlation_id,
        "execution-id": execution_id,
        "route-id": route_id,
        "stage": stage,
        "adapter": adapter or stage,
        "timestamp": message.timestamp,
        "stored-at": utc_now_iso(),
        "config-hash": config_hash,
        "lineage-id": None if lineage_id is None else str(lineage_id),
        "source-url": _field(message, "url"),
        "embedding-model": _field(message, "embedding_model"),
    }
    for name, value in (extra or {}).items():
        if not isinstance(name, str):
            msg = f"extra metadata names must be strings, got {name!r}"
            raise InvalidMetadataError(msg)
        # Python-style names are welcome here (`source_url`); stored as `source-url`.
        fields[normalize_name(name)] = None if value is None else str(value)
    capped = {"source-url", "embedding-model", *(normalize_name(str(n)) for n in extra or {})}
    return {
        name: _cap(value) if name in capped else value
        for name, value in fields.items()
        if value is not None
    }


def store_message(
    storage: StageStorage,
    message: Message,
    *,
    execution_id: str,
    route_id: str,
    stage: str,
    adapter: str | None = None,
    lineage_id: str | int | None = None,
    config_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Store `message` as the artefact of `stage` and return its key.

    The key is `stage_key(execution_id, route_id, stage, message.message_id)`, so storing
    the same message again is a no-op (first write wins). The stored envelope carries the
    given `execution_id`, `route_id` and `stage`, so the body always agrees with its key.
    `extra` adds metadata (names normalized: `my_field` -> `my-field`); it may override the
    standard fields. Raises `MessageEncodingError` when the envelope is not JSON (a message
    problem: dead-letter it), other `StorageError`s when the backend fails (retry).
    """
    key = stage_key(execution_id, route_id, stage, message.message_id)
    stored = message.with_changes(execution_id=execution_id, route_id=route_id, stage=stage)
    metadata = artefact_metadata(
        stored,
        execution_id=execution_id,
        route_id=route_id,
        stage=stage,
        adapter=adapter,
        lineage_id=lineage_id,
        config_hash=config_hash,
        extra=extra,
    )
    storage.put(key, encode_envelope(stored), metadata, ENVELOPE_CONTENT_TYPE)
    return key

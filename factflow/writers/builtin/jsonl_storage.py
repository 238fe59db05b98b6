"""`jsonl_storage`: each batch as one JSON-lines object in stage storage.

Key: `executions/<execution>/<route>/<name>/<batch-hash>.jsonl`, where the hash is of the
batch's message ids, so a batch written again after a crash lands on the same key and
storage's put-if-absent makes the retry a no-op.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from factflow.exceptions import ConfigurationError
from factflow.messages import Message
from factflow.storage.artefacts import encode_envelope
from factflow.types import JsonDict, JsonSchema
from factflow.writers.base import Writer, WriterContext

CONTENT_TYPE = "application/x-ndjson"


class JsonLinesStorageWriter(Writer):
    name: ClassVar[str] = "jsonl_storage"
    config_schema: ClassVar[JsonSchema] = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.-]+$",
                "description": "folder under the route's storage (default: sink)",
            }
        },
        "additionalProperties": False,
    }

    def __init__(self, config: JsonDict, context: WriterContext) -> None:
        super().__init__(config, context)
        if context.storage is None:
            msg = (
                f"sink jsonl_storage of route '{context.route_id}' needs stage storage: "
                "set `storage.uri` (and do not set FACTFLOW_STORE_STAGES=0)"
            )
            raise ConfigurationError(msg)
        self._folder = (
            f"executions/{context.execution_id}/{context.route_id}/{config.get('name', 'sink')}"
        )

    def key_of(self, messages: list[Message]) -> str:
        ids = "\n".join(m.message_id for m in messages).encode()
        return f"{self._folder}/{hashlib.sha256(ids).hexdigest()[:32]}.jsonl"

    def write_batch(self, messages: list[Message]) -> None:
        if not messages:
            return
        data = b"".join(encode_envelope(m) + b"\n" for m in messages)
        meta = {"execution-id": self.context.execution_id, "route-id": self.context.route_id}
        self.context.storage.put(self.key_of(messages), data, meta, CONTENT_TYPE)

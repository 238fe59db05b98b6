"""Stage storage: every adapter's output kept as an artefact, the source of truth for replay.

What lives here:

- `keys`: the key convention
  `executions/<execution-id>/<route-id>/<stage-name>/<message-id>[.ext]` (`stage_key`,
  `stage_prefix`, `parse_stage_key`) and the segment rules (`segment_problem`).
- `base`: `StageStorage`, the contract (`put` / `get` / `metadata` / `list` / `exists` /
  `close`; puts are atomic and first-write-wins), with `StoredObject` and `ObjectInfo`.
- `metadata`: metadata name and size rules shared by the backends (S3's 2 KB limit).
- `artefacts`: `store_message`, a message envelope as JSON with lineage metadata.
- `filesystem`: `file://PATH`, files plus `.meta.json` sidecars, written atomically.
- `s3`: `s3://BUCKET/PREFIX` and `minio://BUCKET/PREFIX` through the minio client.
- `factory`: `open_storage(uri, options)`.
- `options`: checking `storage.options`.
- `exceptions`: `StorageError` and its subclasses.

>>> import tempfile
>>> from factflow.messages import Message
>>> with tempfile.TemporaryDirectory() as root, open_storage(f"file://{root}") as storage:
...     key = store_message(storage, Message({"text": "hi"}, message_id="m1"),
...                         execution_id="e1", route_id="ingest", stage="split")
...     key, storage.metadata(key)["route-id"]
('executions/e1/ingest/split/m1.json', 'ingest')
"""

from factflow.storage.artefacts import store_message
from factflow.storage.base import ObjectInfo, StageStorage, StoredObject
from factflow.storage.exceptions import (
    InvalidKeyError,
    InvalidMetadataError,
    MessageEncodingError,
    ObjectNotFoundError,
    StorageConfigurationError,
    StorageError,
    StorageUnavailableError,
)
from factflow.storage.factory import open_storage
from factflow.storage.keys import parse_stage_key, stage_key, stage_prefix

__all__ = [
    "InvalidKeyError",
    "InvalidMetadataError",
    "MessageEncodingError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "StageStorage",
    "StorageConfigurationError",
    "StorageError",
    "StorageUnavailableError",
    "StoredObject",
    "open_storage",
    "parse_stage_key",
    "stage_key",
    "stage_prefix",
    "store_message",
]

"""`StageStorage`, the contract every storage backend keeps, and what it returns.

The public methods here check keys and metadata once, for every backend, then call the
backend's `_put`, `_get`, ... hooks; a backend only moves bytes. Storage is the source of
truth for replay, not a cache, so the contract is strict: a put is all-or-nothing, and the
first write of a key wins (see `put`).
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from factflow.storage.exceptions import StorageError
from factflow.storage.keys import check_key, check_prefix
from factflow.storage.metadata import check_metadata

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class StoredObject:
    """The outcome of a put.

    `created` is False when the key already held an object and nothing was written; `size`
    is then the stored object's size, which may differ from the bytes just offered.
    """

    key: str
    size: int
    created: bool


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key (relative to the storage root), size and write time (UTC)."""

    key: str
    size: int
    last_modified: datetime


class StageStorage(abc.ABC):
    """Where stage artefacts live: a flat namespace of `/`-separated keys holding bytes.

    Constructing a backend checks its arguments and does no I/O, and an instance pickles
    (Bytewax may ship it to other workers); connections and directories are made on first
    use. Methods may be called from several threads at once. `close` may never be called.
    """

    scheme: str = ""

    @property
    @abc.abstractmethod
    def uri(self) -> str:
        """The storage's URI for logs and errors, never with credentials."""

    def put(
        self,
        key: str,
        data: bytes,
        metadata: Mapping[str, str] | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> StoredObject:
        """Store `data` under `key` with `metadata`, unless `key` already holds an object.

        Idempotent: putting a key again is a success that writes nothing and returns
        `created=False`; it never makes a second copy and never replaces the first (replay
        reads what was first stored; a retried message may carry a new timestamp). Readers
        see either no object or the whole object with its metadata, even if the process dies
        mid-put. Raises `InvalidKeyError` / `InvalidMetadataError` before any I/O, and
        `StorageUnavailableError` when the backend cannot be reached (safe to retry).
        """
        check_key(key)
        checked = check_metadata(metadata)
        if not isinstance(data, bytes | bytearray | memoryview):
            msg = f"put({key!r}): data must be bytes, got {type(data).__name__}"
            raise StorageError(msg)
        if not isinstance(content_type, str) or not content_type:
            msg = f"put({key!r}): content_type must be a non-empty string"
            raise StorageError(msg)
        return self._put(key, bytes(data), checked, content_type)

    def get(self, key: str) -> bytes:
        """The bytes stored under `key`; `ObjectNotFoundError` when there are none."""
        return self._get(check_key(key))

    def metadata(self, key: str) -> dict[str, str]:
        """The metadata stored with `key`, names lowercase; `ObjectNotFoundError` if absent."""
        return self._metadata(check_key(key))

    def exists(self, key: str) -> bool:
        """Whether `key` holds a complete object. Never raises for a missing key or bucket."""
        return self._exists(check_key(key))

    def list(self, prefix: str = "", limit: int | None = None) -> builtins.list[ObjectInfo]:
        """Objects whose key starts with `prefix`, in key order (UTF-8 byte order, as S3).

        `prefix` is a plain string prefix (`executions/e1/` vs `executions/e1`, see
        `check_prefix`). At most `limit` objects when given. An empty or missing store lists
        as empty. Temporary files and sidecars are never listed.
        """
        check_prefix(prefix)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            msg = f"list limit must be a non-negative int or None, got {limit!r}"
            raise StorageError(msg)
        if limit == 0:
            return []
        return self._list(prefix, limit)

    def delete(self, key: str) -> bool:
        """Remove the object under `key` and its metadata; False when there was none.

        Only retention calls this (`factflow storage prune`): storage is otherwise
        write-once. A reader sees the whole object or none, as for `put`.
        """
        return self._delete(check_key(key))

    def close(self) -> None:  # noqa: B027 - optional hook: a backend may hold no connections
        """Release connections. Idempotent; the storage reconnects if used again."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    # Backend hooks: arguments are already checked. (`builtins.list` because the `list`
    # method shadows the builtin inside the class body.)

    @abc.abstractmethod
    def _put(
        self, key: str, data: bytes, metadata: dict[str, str], content_type: str
    ) -> StoredObject: ...

    @abc.abstractmethod
    def _get(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def _metadata(self, key: str) -> dict[str, str]: ...

    @abc.abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _list(self, prefix: str, limit: int | None) -> builtins.list[ObjectInfo]: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> bool: ...

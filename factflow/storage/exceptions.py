"""Errors raised by stage storage.

Every one is a `StorageError`, itself a `FactflowError`. None of them carries credentials:
S3 errors are built from the endpoint and bucket, and any text that comes back from the
server is masked before it is put in a message.
"""

from __future__ import annotations

from factflow.exceptions import ConfigurationError, FactflowError


class StorageError(FactflowError):
    """A stage artefact could not be written or read.

    The message names the storage URI (without credentials) and the key; a backend's own
    error is chained as `__cause__`.
    """


class StorageConfigurationError(StorageError, ConfigurationError):
    """A storage URI or option is invalid: unknown scheme, missing bucket, bad option.

    Fix `storage.uri` / `storage.options` in the pipeline (or the `FACTFLOW_S3_*`
    environment variables); nothing was written.
    """


class InvalidKeyError(StorageError, ValueError):
    """A key, key prefix or key segment is unsafe or too long.

    Segments may not be empty, contain `/`, `\\` or control characters, or start with `.`
    (that also rules out `.` and `..`). Rename the route, stage or id the message names.
    """


class InvalidMetadataError(StorageError, ValueError):
    """Object metadata has a bad name, a non-string value, or is over the 2 KB S3 limit.

    Names are lowercase letters, digits and `-`; values are strings.
    """


class MessageEncodingError(StorageError, ValueError):
    """A message's envelope cannot be serialized as JSON, so it cannot be stored.

    The message itself is at fault (a payload holding bytes, sets or objects): route it to
    the dead-letter queue rather than retrying.
    """


class ObjectNotFoundError(StorageError, LookupError):
    """No object is stored under the key (or the bucket does not exist yet)."""


class StorageUnavailableError(StorageError):
    """The storage backend cannot be reached or refused the operation for a transient reason.

    Check that the S3 / MinIO server is running at the endpoint named in the message (or that
    the storage directory is writable), then retry: nothing partial was left behind.
    """

"""`open_storage`: a storage URI (the pipeline's `storage.uri`) to a backend."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from factflow.extras import STORAGE_EXTRAS
from factflow.storage.base import StageStorage
from factflow.storage.exceptions import StorageConfigurationError
from factflow.storage.filesystem import FileSystemStorage

SCHEMES = ("file", "minio", "s3")


def open_storage(uri: str, options: Mapping[str, Any] | None = None) -> StageStorage:
    """The backend for `uri`, configured by `options` (`storage.options` in the pipeline).

    `file://PATH`, `s3://BUCKET/PREFIX`, `minio://BUCKET/PREFIX`. Cheap: nothing is
    created or connected until the first call on the result. Raises
    `StorageConfigurationError` for an unknown scheme, a malformed URI or an unknown option,
    `MissingExtraError` for s3:// or minio:// without the `s3` extra (its client is
    imported only here, so file storage never loads it).

    >>> open_storage("file:///tmp/factflow-artefacts").uri
    'file:///tmp/factflow-artefacts'
    """
    if not isinstance(uri, str) or "://" not in uri:
        msg = (
            "storage URI must look like scheme://... "
            "(file://./output/storage, s3://bucket/prefix, minio://bucket/prefix)"
        )
        raise StorageConfigurationError(msg)
    given, _, rest = uri.partition("://")
    scheme = given.lower()  # URI schemes are case-insensitive
    uri = f"{scheme}://{rest}"
    if scheme == "file":
        return FileSystemStorage.from_uri(uri, options)
    if scheme in ("s3", "minio"):
        STORAGE_EXTRAS[scheme].require(f"storage {scheme}://")
        from factflow.storage.s3 import S3Storage

        return S3Storage.from_uri(uri, options)
    close = difflib.get_close_matches(scheme, SCHEMES, n=1)
    hint = f"; did you mean {close[0]}://?" if close else ""
    # Only the scheme is echoed: the rest of an unknown URI could hold a credential.
    msg = f"unknown storage scheme {scheme!r} (known: {', '.join(SCHEMES)}){hint}"
    raise StorageConfigurationError(msg)

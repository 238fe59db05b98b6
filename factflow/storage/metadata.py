"""Object metadata rules, shared by every backend so a put that works on one works on all.

S3 carries metadata as `x-amz-meta-<name>` HTTP headers: names are case-insensitive and
travel lowercased, values must be printable ASCII, and the total is capped at 2 KB. So names
here are lowercase letters, digits and `-`, values are strings, and any value that would not
survive a header (non-ASCII, leading/trailing blanks) is sent as an RFC 2047 encoded word
(`=?UTF-8?B?...?=`), the form AWS itself returns for such values. The 2 KB cap is checked on
that wire form on every backend, the filesystem included, so moving a pipeline from `file://`
to `s3://` cannot start failing on metadata size.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from factflow.storage.exceptions import InvalidMetadataError

MAX_METADATA_BYTES = 2048

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PLAIN = re.compile(r"^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$")
_ENCODED = re.compile(r"^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$", re.IGNORECASE)


def encode_value(value: str) -> str:
    """The header-safe form of a metadata value (unchanged when already safe)."""
    if _PLAIN.match(value) and not value.startswith("=?"):
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="


def decode_value(value: str) -> str:
    """Inverse of `encode_value`; other values come back unchanged."""
    match = _ENCODED.match(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """A plain copy of `metadata` if every name and value is valid and it fits in 2 KB."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        msg = f"metadata must be a mapping of str to str, got {type(metadata).__name__}"
        raise InvalidMetadataError(msg)
    checked: dict[str, str] = {}
    size = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not _NAME.match(name):
            msg = (
                f"metadata name {name!r} must be lowercase letters, digits and '-' "
                "(S3 lowercases names and some proxies drop '_')"
            )
            raise InvalidMetadataError(msg)
        if not isinstance(value, str):
            msg = f"metadata {name!r} must be a string, got {type(value).__name__}"
            raise InvalidMetadataError(msg)
        size += len(name) + len(encode_value(value))
        checked[name] = value
    if size > MAX_METADATA_BYTES:
        msg = (
            f"metadata is {size} bytes once encoded, over the {MAX_METADATA_BYTES}-byte "
            f"S3 limit; names: {sorted(checked)}"
        )
        raise InvalidMetadataError(msg)
    return checked


def normalize_name(name: str) -> str:
    """A metadata name from a Python-style one: `source_url` -> `source-url`."""
    return name.strip().lower().replace("_", "-")

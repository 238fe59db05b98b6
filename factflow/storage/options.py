"""Checking a backend's `storage.options`: known names only, typed values, clear errors."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

from factflow.storage.exceptions import StorageConfigurationError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def check_options(
    options: Mapping[str, Any] | None, allowed: Collection[str], where: str
) -> dict[str, Any]:
    """A copy of `options` if every name is in `allowed`, else a did-you-mean error."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        msg = f"{where}: storage options must be a mapping, got {type(options).__name__}"
        raise StorageConfigurationError(msg)
    for name in options:
        if name not in allowed:
            close = difflib.get_close_matches(str(name), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"{where}: unknown storage option {name!r} (known: {sorted(allowed)}){hint}"
            raise StorageConfigurationError(msg)
    return dict(options)


def as_bool(value: Any, name: str) -> bool:
    """A bool option, also accepting the strings environment variables carry."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    msg = f"storage option {name} must be true or false, got {value!r}"
    raise StorageConfigurationError(msg)


def as_positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        msg = f"storage option {name} must be a positive number, got {value!r}"
        raise StorageConfigurationError(msg)
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        msg = f"storage option {name} must be a positive number, got {value!r}"
        raise StorageConfigurationError(msg)
    return number


def as_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        # The value is not echoed: this may be a credential.
        msg = f"storage option {name} must be a non-empty string"
        raise StorageConfigurationError(msg)
    return value

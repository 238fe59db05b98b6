"""Stage artefact keys: `executions/<execution-id>/<route-id>/<stage-name>/<message-id>[.ext]`.

This is the seed system's key convention; replay, lineage and the CLI find artefacts by it,
so it must not drift. Keys are `/`-separated and relative, the same string on every backend:
the filesystem backend maps it to a path under its root, S3 to an object name under its
prefix.

Segments are checked, not sanitized: rewriting `a/b` to `a_b` would let two routes share one
prefix and make a key impossible to map back to its route. A bad segment raises
`InvalidKeyError` naming the part at fault; `segment_problem` lets the compiler report the
same rule before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from factflow.storage.exceptions import InvalidKeyError

STAGE_ROOT = "executions"
DEFAULT_EXT = ".json"
SIDECAR_SUFFIX = ".meta.json"

# S3 caps object names at 1024 bytes of UTF-8. Most filesystems cap a file name at 255
# bytes; 200 leaves room for the filesystem backend's `.meta.json` sidecar suffix.
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXT = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9._-]*$")


def segment_problem(value: str) -> str | None:
    """Why `value` cannot be one segment of a key, or None when it can."""
    if not value:
        return "is empty"
    if "/" in value or "\\" in value:
        return "contains a path separator ('/' or '\\')"
    if value.startswith("."):
        # Rules out '.' and '..' and keeps the dot-namespace free for the filesystem
        # backend's temporary files, which listing skips.
        return "starts with '.'"
    if _CONTROL.search(value):
        return "contains a control character"
    if len(value.encode()) > MAX_SEGMENT_BYTES:
        return f"is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def check_segment(value: str, what: str) -> str:
    """`value` if it is a valid key segment; else `InvalidKeyError` naming `what`."""
    if not isinstance(value, str):
        msg = f"{what} must be a string, got {type(value).__name__}"
        raise InvalidKeyError(msg)
    problem = segment_problem(value)
    if problem is not None:
        msg = f"{what} {value!r} {problem}; it cannot be part of a storage key"
        raise InvalidKeyError(msg)
    return value


def check_key(key: str) -> str:
    """`key` if it is a valid object key: relative, `/`-separated, every segment valid."""
    if not isinstance(key, str) or not key:
        msg = f"a storage key must be a non-empty string, got {key!r}"
        raise InvalidKeyError(msg)
    if len(key.encode()) > MAX_KEY_BYTES:
        msg = f"storage key is longer than {MAX_KEY_BYTES} bytes: {key[:80]!r}..."
        raise InvalidKeyError(msg)
    for segment in key.split("/"):
        problem = segment_problem(segment)
        if problem is not None:
            msg = f"storage key {key!r}: segment {segment!r} {problem}"
            raise InvalidKeyError(msg)
    if key.endswith(SIDECAR_SUFFIX):
        # The filesystem backend keeps metadata in `<key>.meta.json`; an object with that
        # name would overwrite another object's sidecar.
        msg = f"storage key {key!r} ends with {SIDECAR_SUFFIX!r}, reserved for metadata"
        raise InvalidKeyError(msg)
    return key


def check_prefix(prefix: str) -> str:
    """`prefix` if it is a valid listing prefix.

    A prefix is a plain string prefix of keys, as on S3: `executions/e1/` lists one
    execution, `executions/e1` also matches `executions/e10/...`. Every complete segment
    (all but the last) must be valid; the last may be partial.
    """
    if not isinstance(prefix, str):
        msg = f"a storage prefix must be a string, got {type(prefix).__name__}"
        raise InvalidKeyError(msg)
    if not prefix:
        return prefix
    *complete, last = prefix.split("/")
    for segment in complete:
        problem = segment_problem(segment)
        if problem is not None:
            msg = f"storage prefix {prefix!r}: segment {segment!r} {problem}"
            raise InvalidKeyError(msg)
    if last and (problem := segment_problem(last)) is not None:
        msg = f"storage prefix {prefix!r}: segment {last!r} {problem}"
        raise InvalidKeyError(msg)
    return prefix


def _check_ext(ext: str | None) -> str:
    if not ext:
        return ""
    if not _EXT.match(ext) or ext.endswith(SIDECAR_SUFFIX):
        msg = f"extension {ext!r} must look like '.json' (a dot, then letters, digits, ._-)"
        raise InvalidKeyError(msg)
    return ext


def stage_key(
    execution_id: str,
    route_id: str,
    stage: str,
    message_id: str,
    ext: str | None = DEFAULT_EXT,
) -> str:
    """The key of one stage artefact.

    >>> stage_key("exec-1", "ingest", "split", "m-1")
    'executions/exec-1/ingest/split/m-1.json'
    >>> stage_key("exec-1", "ingest", "split", "m-1", ext=None)
    'executions/exec-1/ingest/split/m-1'
    """
    key = "/".join(
        (
            STAGE_ROOT,
            check_segment(execution_id, "execution id"),
            check_segment(route_id, "route id"),
            check_segment(stage, "stage name"),
            check_segment(message_id, "message id") + _check_ext(ext),
        )
    )
    return check_key(key)


def stage_prefix(
    execution_id: str | None = None,
    route_id: str | None = None,
    stage: str | None = None,
) -> str:
    """The listing prefix of an execution, a route in it, or one stage of that route.

    >>> stage_prefix("exec-1", "ingest")
    'executions/exec-1/ingest/'
    """
    parts = [STAGE_ROOT]
    gap = False
    for value, what in ((execution_id, "execution id"), (route_id, "route id"), (stage, "stage")):
        if value is None:
            gap = True
        elif gap:
            msg = "stage_prefix: give the execution id, then the route id, then the stage"
            raise InvalidKeyError(msg)
        else:
            parts.append(check_segment(value, what))
    return "/".join(parts) + "/"


@dataclass(frozen=True, slots=True)
class StageKey:
    """The parts of a stage artefact key."""

    execution_id: str
    route_id: str
    stage: str
    message_id: str
    ext: str


def parse_stage_key(key: str, ext: str | None = DEFAULT_EXT) -> StageKey:
    """Split a stage key back into its parts; `ext` is stripped from the message id if present.

    >>> parse_stage_key("executions/exec-1/ingest/split/m-1.json").message_id
    'm-1'
    """
    check_key(key)
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != STAGE_ROOT:
        msg = (
            f"{key!r} is not a stage key "
            f"({STAGE_ROOT}/<execution-id>/<route-id>/<stage-name>/<message-id>[.ext])"
        )
        raise InvalidKeyError(msg)
    _, execution_id, route_id, stage, name = parts
    suffix = _check_ext(ext)
    if suffix and name.endswith(suffix) and len(name) > len(suffix):
        return StageKey(execution_id, route_id, stage, name[: -len(suffix)], suffix)
    return StageKey(execution_id, route_id, stage, name, "")

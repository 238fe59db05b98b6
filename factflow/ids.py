"""Name-based message ids: `uuid.uuid5(namespace, name)` as a string, made faster.

Sources and adapter steps derive an id for every message they read or emit, so that a
message replayed after a crash gets the same id again. `uuid.uuid5` builds a UUID object
and hashes the namespace every time; this hashes the namespace once and formats the
digest directly. The strings are identical to `str(uuid.uuid5(namespace, name))`.
"""

from __future__ import annotations

import hashlib
import uuid

# The variant bits (RFC 4122: 10xx) applied to the first hex digit of the 4th group.
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


class NameIds:
    """`ids(name)` == `str(uuid.uuid5(namespace, name))`."""

    __slots__ = ("_namespace",)

    def __init__(self, namespace: uuid.UUID) -> None:
        self._namespace = hashlib.sha1(namespace.bytes, usedforsecurity=False)

    def __call__(self, name: str) -> str:
        sha = self._namespace.copy()
        sha.update(name.encode())
        h = sha.hexdigest()
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"

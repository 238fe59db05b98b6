"""Name-based message ids: `uuid.uuid5(namespace, name)` as a string, made faster, and the
one home of the ids of records that arrive without one (`record_id`, `record_position`).

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


_RECORD_NAMESPACE = uuid.UUID("0b9e3a52-8f43-4d7c-b1b4-52c3a9d6e8f0")
_record_ids = NameIds(_RECORD_NAMESPACE)


def record_id(queue: str, position: object) -> str:
    """The id of a record that came without one, named by its queue and its position there
    (`record_position`): a re-read or redelivered record gets the same id again, in every
    process."""
    return _record_ids(f"{queue}@{position}")


def record_position(broker_id: object, body: bytes, *properties: object) -> str:
    """Where a record without a message id is, for `record_id`: the broker's own stable id
    or position when it has one (a Kafka offset, a Pulsar or Artemis message id), else a
    SHA-256 of its body and `properties` (RabbitMQ has no stable position: delivery tags
    count per channel; pass what the publisher set, such as the correlation id and the
    timestamp). Records with the same body and properties and no broker id get the same
    id: a content-addressed id, which lineage and idempotent sinks take for one message."""
    if broker_id is not None and broker_id != "":
        return str(broker_id)
    digest = hashlib.sha256(body)
    for value in properties:
        digest.update(b"\0" + repr(value).encode())
    return f"sha256:{digest.hexdigest()}"

"""The worker-side lineage buffer: rows are collected during an epoch and written with COPY.

One `flush` per epoch, inside the epoch (before any ack), is one COPY in one transaction:
never a round trip per message. A row's id exists before it is written, so emitted
messages can carry it as their `correlation_id`.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.pq import TransactionStatus

from factflow.db.connection import DbConnection
from factflow.db.exceptions import DatabaseError
from factflow.db.lineage_copy import (
    COPY_COLUMNS,
    NULL,
    StepRowEncoder,
    copy_buffer,
    micros,
    uuid_field,
)
from factflow.types import JsonDict

LineageStatus = Literal[
    "pending", "processing", "completed", "failed", "filtered", "dead_lettered", "cancelled"
]

LINEAGE_COLUMNS = (
    "id",
    "execution_id",
    "route_id",
    "adapter_name",
    "adapter_index",
    "stage_name",
    "message_id",
    "parent_id",
    "status",
    "attempts",
    "input_hash",
    "output_hash",
    "error",
    "started_at",
    "completed_at",
    "duration_ms",
    "batch_id",
    "storage_key",
    "metadata",
)
_COLUMN_LIST = ", ".join(LINEAGE_COLUMNS)
_COPY_LIST = ", ".join(COPY_COLUMNS)
# binary COPY of a buffer encoded by hand (factflow.db.lineage_copy): the rows' columns
# in COPY_COLUMNS order, not the table's
_COPY = f"COPY lineage ({_COPY_LIST}) FROM STDIN (FORMAT BINARY)"
_COPY_STAGING = f"COPY lineage_staging ({_COPY_LIST}) FROM STDIN (FORMAT BINARY)"


_MILLIS_MASK = (1 << 48) - 1
_VERSION_CLEAR = ~((0xF << 76) | (0x3 << 62))
_VERSION_7 = (0x7 << 76) | (0x2 << 62)
_RANDOM_CHUNK = 10 * 4096


class _RandomPool:
    """os.urandom read 4096 ids at a time: one syscall per id cost as much as a row."""

    def __init__(self) -> None:
        self.data = b""
        self.offset = 0

    def take10(self) -> int:
        if self.offset >= len(self.data):
            self.data = os.urandom(_RANDOM_CHUNK)
            self.offset = 0
        start = self.offset
        self.offset += 10
        return int.from_bytes(self.data[start : start + 10], "big")

    def reset(self) -> None:
        # a forked worker must not reuse its parent's unread bytes: equal ids would follow
        self.data = b""
        self.offset = 0


_random = _RandomPool()
os.register_at_fork(after_in_child=_random.reset)


def new_row_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so the primary key index grows at its right edge."""
    millis = time.time_ns() // 1_000_000
    value = (millis & _MILLIS_MASK) << 80 | _random.take10()
    value = (value & _VERSION_CLEAR) | _VERSION_7
    # UUID(int=...) validates its argument at ~3 µs a call, as long as the rest of a
    # lineage row takes; the value is well-formed by construction. The slots' own setters:
    # object.__setattr__ cost twice as much again
    row_id = _new(_UUID)
    _set_int(row_id, value)
    _set_safe(row_id, _UNKNOWN)
    return row_id


_new = object.__new__
_UUID = uuid.UUID
_set_int = uuid.UUID.__dict__["int"].__set__
_set_safe = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown


def parse_row_id(value: str | uuid.UUID | None) -> uuid.UUID | None:
    """A message's `correlation_id` as a lineage parent id; None when it is not one.

    Messages from producers outside factflow may carry any correlation id; those start a
    new lineage tree instead of failing the COPY.
    """
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LineageRecord:
    """One adapter invocation on one input message; fields in the table's column order."""

    id: uuid.UUID
    execution_id: uuid.UUID
    route_id: str
    adapter_name: str
    adapter_index: int
    stage_name: str
    message_id: str
    parent_id: uuid.UUID | None
    status: LineageStatus
    attempts: int
    input_hash: str | None
    output_hash: str | None
    error: str | None
    started_at: datetime
    completed_at: datetime | None
    duration_ms: float | None
    batch_id: str | None
    storage_key: str | None
    metadata: JsonDict = field(default_factory=dict)


class LineageWriter:
    """Buffers lineage rows of one execution and writes them with one COPY per flush.

    Rows are kept encoded (binary COPY rows, `factflow.db.lineage_copy`): a flush is one
    `write` of one buffer. Not thread-safe: one writer per worker. A failed flush raises
    DatabaseError and keeps its rows, so the caller may retry (the retry skips rows a
    lost commit already wrote) or let the epoch fail.
    """

    def __init__(self, execution_id: uuid.UUID) -> None:
        self.execution_id = execution_id
        self._rows: list[bytes] = []
        self._retrying = False
        self._encoders: dict[tuple[Any, ...], StepRowEncoder] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def encoder(
        self, route_id: str, adapter_name: str, adapter_index: int, stage_name: str
    ) -> StepRowEncoder:
        """The encoder of one step's rows of this execution (made once, then reused)."""
        key = (route_id, adapter_name, adapter_index, stage_name)
        found = self._encoders.get(key)
        if found is None:
            found = StepRowEncoder(self.execution_id, *key)
            self._encoders[key] = found
        return found

    def record(
        self,
        *,
        route_id: str,
        adapter_name: str,
        adapter_index: int,
        message_id: str,
        status: LineageStatus,
        started_at: datetime,
        completed_at: datetime | None = None,
        stage_name: str | None = None,
        parent_id: uuid.UUID | None = None,
        attempts: int = 1,
        input_hash: str | None = None,
        output_hash: str | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
        batch_id: str | None = None,
        storage_key: str | None = None,
        metadata: JsonDict | None = None,
        row_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Buffer one row; returns its id (the emitted messages' correlation_id).

        `stage_name` defaults to the adapter name; `duration_ms` to completed - started.
        """
        started_us = micros(started_at)
        completed_us = None if completed_at is None else micros(completed_at)
        if duration_ms is None and completed_us is not None:
            duration_ms = (completed_us - started_us) / 1000.0
        row_id = row_id or new_row_id()
        encoder = self.encoder(route_id, adapter_name, adapter_index, stage_name or adapter_name)
        self._rows.append(
            encoder.row(
                row_id,
                message_id,
                NULL if parent_id is None else uuid_field(parent_id),
                status,
                attempts,
                input_hash,
                output_hash,
                error,
                started_us,
                completed_us,
                duration_ms,
                batch_id,
                storage_key,
                metadata,
            )
        )
        return row_id

    def add(self, record: LineageRecord) -> uuid.UUID:
        """Buffer a prepared record (its execution_id is kept as given)."""
        self._rows.append(encode_row(tuple(getattr(record, name) for name in LINEAGE_COLUMNS)))
        return record.id

    def extend_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Buffer rows built elsewhere, values in LINEAGE_COLUMNS order."""
        self._rows.extend(encode_row(row) for row in rows)

    def extend_encoded(self, rows: list[bytes]) -> None:
        """Buffer rows already encoded (`encode_row`, `StepRowEncoder.row`)."""
        self._rows.extend(rows)

    def discard(self) -> int:
        """Drop the buffered rows (an epoch abandoned on purpose); returns how many."""
        dropped = len(self._rows)
        self._rows = []
        self._retrying = False
        return dropped

    def flush(self, conn: DbConnection) -> int:
        """Write the buffered rows durably (one COPY, one commit); returns how many.

        Inside a caller's transaction the rows are durable when that transaction commits.
        """
        if not self._rows:
            return 0
        # unlike a broker sink, the rows are kept on failure: the epoch's messages are
        # not acked yet, and a retry must write the same ids their children point at
        try:
            if self._retrying:
                self._copy_deduplicated(conn)
            else:
                self._copy(conn)
        except psycopg.Error as exc:
            self._retrying = True
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            msg = (
                f"lineage flush of {len(self._rows)} rows for execution {self.execution_id} "
                f"failed: {reason}"
            )
            raise DatabaseError(msg) from exc
        written = len(self._rows)
        self._rows = []
        self._retrying = False
        return written

    def _copy(self, conn: DbConnection) -> None:
        # one statement is its own transaction on an autocommit connection (or part of
        # the caller's): no BEGIN and COMMIT round trips, two of a flush's four
        data = copy_buffer(self._rows)
        own = not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE
        scope = conn.transaction() if own else nullcontext()
        with scope, conn.cursor() as cur, cur.copy(_COPY) as copy:
            copy.write(data)

    def _copy_deduplicated(self, conn: DbConnection) -> None:
        # the failed attempt may have committed before the connection broke; the retry
        # goes through a staging table so that already written ids are skipped
        data = copy_buffer(self._rows)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS lineage_staging"
                " (LIKE lineage INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cur.copy(_COPY_STAGING) as copy:
                copy.write(data)
            cur.execute(
                f"INSERT INTO lineage ({_COLUMN_LIST}) SELECT {_COLUMN_LIST}"
                " FROM lineage_staging ON CONFLICT (id) DO NOTHING"
            )


def encode_row(values: tuple[Any, ...]) -> bytes:
    """One row's values in LINEAGE_COLUMNS order (Python values: UUIDs, datetimes, a
    metadata dict) as a binary COPY row."""
    (
        row_id,
        execution_id,
        route_id,
        adapter_name,
        adapter_index,
        stage_name,
        message_id,
        parent_id,
        status,
        attempts,
        input_hash,
        output_hash,
        error,
        started_at,
        completed_at,
        duration_ms,
        batch_id,
        storage_key,
        metadata,
    ) = values
    encoder = StepRowEncoder(execution_id, route_id, adapter_name, adapter_index, stage_name)
    return encoder.row(
        row_id if isinstance(row_id, uuid.UUID) else uuid.UUID(str(row_id)),
        message_id,
        uuid_field(parent_id),
        status,
        attempts,
        input_hash,
        output_hash,
        error,
        micros(started_at),
        None if completed_at is None else micros(completed_at),
        duration_ms,
        batch_id,
        storage_key,
        metadata,
    )

"""Archived Bytewax recovery partitions: save, list, and the newest consistent set.

A set is consistent when it has every partition of the execution and all of them carry
the same Bytewax version and step fingerprint; anything else is refused whole.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from factflow.db.connection import DbConnection
from factflow.db.exceptions import RecoveryArchiveError

_INFO_COLUMNS = (
    "execution_id, partition_index, partition_count, taken_at, bytewax_version,"
    " step_fingerprint, size_bytes, sha256"
)


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """An archived partition without its bytes."""

    execution_id: uuid.UUID
    partition_index: int
    partition_count: int
    taken_at: datetime
    bytewax_version: str
    step_fingerprint: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class RecoveryArchive:
    """An archived partition: a SQLite database file as bytes."""

    execution_id: uuid.UUID
    partition_index: int
    partition_count: int
    taken_at: datetime
    bytewax_version: str
    step_fingerprint: str
    size_bytes: int
    sha256: str
    data: bytes


def step_fingerprint(step_ids: Iterable[str]) -> str:
    """The plan's format check: a hash of its step ids, independent of their order."""
    return hashlib.sha256("\n".join(sorted(set(step_ids))).encode()).hexdigest()


def save_archive(
    conn: DbConnection,
    *,
    execution_id: uuid.UUID,
    partition_index: int,
    partition_count: int,
    bytewax_version: str,
    step_fingerprint: str,
    data: bytes,
    keep: int = 3,
) -> ArchiveInfo:
    """Store one partition's bytes and drop that partition's archives beyond the newest `keep`.

    Archives are taken every few seconds, so without pruning they would grow without end.
    """
    if keep < 1:
        msg = f"keep must be at least 1, not {keep}"
        raise ValueError(msg)
    with conn.transaction():
        with conn.cursor(row_factory=class_row(ArchiveInfo)) as cur:
            cur.execute(
                "INSERT INTO recovery_archives (execution_id, partition_index, partition_count,"
                " bytewax_version, step_fingerprint, size_bytes, sha256, data)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_INFO_COLUMNS}",
                (
                    execution_id,
                    partition_index,
                    partition_count,
                    bytewax_version,
                    step_fingerprint,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    data,
                ),
            )
            info = cur.fetchone()
        conn.execute(
            "DELETE FROM recovery_archives WHERE execution_id = %(e)s AND partition_index = %(p)s"
            " AND taken_at < (SELECT taken_at FROM recovery_archives"
            "   WHERE execution_id = %(e)s AND partition_index = %(p)s"
            "   ORDER BY taken_at DESC OFFSET %(keep)s - 1 LIMIT 1)",
            {"e": execution_id, "p": partition_index, "keep": keep},
        )
    assert info is not None
    return info


def list_archives(conn: DbConnection, execution_id: uuid.UUID) -> list[ArchiveInfo]:
    """Every archive of the execution, newest first, without the bytes."""
    with conn.cursor(row_factory=class_row(ArchiveInfo)) as cur:
        cur.execute(
            f"SELECT {_INFO_COLUMNS} FROM recovery_archives WHERE execution_id = %s"
            " ORDER BY taken_at DESC, partition_index",
            (execution_id,),
        )
        return cur.fetchall()


def latest_archive_time(conn: DbConnection, execution_id: uuid.UUID) -> datetime | None:
    """When the newest archive was taken (to compare with a local recovery directory)."""
    row = conn.execute(
        "SELECT max(taken_at) FROM recovery_archives WHERE execution_id = %s", (execution_id,)
    ).fetchone()
    return None if row is None else row[0]


def latest_archive_set(
    conn: DbConnection,
    execution_id: uuid.UUID,
    *,
    bytewax_version: str | None = None,
    step_fingerprint: str | None = None,
) -> list[RecoveryArchive] | None:
    """The newest archive of every partition, ordered by partition; None if none exist.

    Raises RecoveryArchiveError when a partition is missing, the archives disagree,
    one does not match the expected Bytewax version or fingerprint, or bytes are corrupt.
    """
    with conn.cursor(row_factory=class_row(RecoveryArchive)) as cur:
        cur.execute(
            f"SELECT DISTINCT ON (partition_index) {_INFO_COLUMNS}, data"
            " FROM recovery_archives WHERE execution_id = %s"
            " ORDER BY partition_index, taken_at DESC",
            (execution_id,),
        )
        archives = cur.fetchall()
    if not archives:
        return None
    _check_set(execution_id, archives, bytewax_version, step_fingerprint)
    return archives


def _check_set(
    execution_id: uuid.UUID,
    archives: list[RecoveryArchive],
    bytewax_version: str | None,
    fingerprint: str | None,
) -> None:
    where = f"recovery archives of execution {execution_id}"
    counts = {a.partition_count for a in archives}
    if len(counts) != 1:
        msg = f"{where} disagree on the partition count ({sorted(counts)}); refusing to restore"
        raise RecoveryArchiveError(msg)
    (count,) = counts
    missing = sorted(set(range(count)) - {a.partition_index for a in archives})
    if missing:
        msg = f"{where} lack partitions {missing} of {count}; refusing to restore"
        raise RecoveryArchiveError(msg)
    versions = {a.bytewax_version for a in archives}
    if len(versions) != 1 or (bytewax_version is not None and versions != {bytewax_version}):
        msg = (
            f"{where} were written by Bytewax {', '.join(sorted(versions))}, this run uses "
            f"{bytewax_version}; refusing to restore (start a new execution)"
        )
        raise RecoveryArchiveError(msg)
    prints = {a.step_fingerprint for a in archives}
    if len(prints) != 1 or (fingerprint is not None and prints != {fingerprint}):
        msg = (
            f"{where} belong to a plan with other step ids; refusing to restore "
            "(the pipeline's routes or adapters changed: start a new execution)"
        )
        raise RecoveryArchiveError(msg)
    for archive in archives:
        if hashlib.sha256(archive.data).hexdigest() != archive.sha256:
            msg = f"{where}: partition {archive.partition_index} is corrupt (sha256 mismatch)"
            raise RecoveryArchiveError(msg)

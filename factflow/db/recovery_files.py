"""Copying Bytewax recovery partitions (SQLite files) to and from Postgres archives.

Bytewax has no pluggable recovery backend, so a worker keeps its partitions in a local
directory (`part-<i>.sqlite3`) and these functions move consistent copies of them:
SQLite's online backup gives a coherent file even while Bytewax writes to it.
"""

from __future__ import annotations

import functools
import re
import shutil
import sqlite3
import tempfile
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from factflow.db.connection import DbConnection
from factflow.db.exceptions import RecoveryArchiveError
from factflow.db.repositories.recovery import (
    ArchiveInfo,
    latest_archive_set,
    latest_archive_time,
    save_archive,
)

_PARTITION = re.compile(r"^part-(\d+)\.sqlite3$")


@functools.cache
def bytewax_version() -> str:
    # importlib.metadata reads the package's files: a few ms, once per archive otherwise
    return version("bytewax")


def partition_files(recovery_dir: Path) -> dict[int, Path]:
    """The partition files of a recovery directory, by index."""
    if not recovery_dir.is_dir():
        return {}
    found: dict[int, Path] = {}
    for path in recovery_dir.iterdir():
        match = _PARTITION.match(path.name)
        if match:
            found[int(match[1])] = path
    return found


def snapshot_partition(path: Path) -> bytes:
    """A consistent copy of a SQLite file as bytes, taken with the online backup API."""
    with tempfile.TemporaryDirectory() as tmp:
        copy_path = Path(tmp) / path.name
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        target = sqlite3.connect(copy_path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return copy_path.read_bytes()


def archive_directory(
    conn: DbConnection,
    execution_id: uuid.UUID,
    recovery_dir: Path,
    *,
    step_fingerprint: str,
    partitions: set[int] | None = None,
    keep: int = 3,
) -> list[ArchiveInfo]:
    """Archive the directory's partitions (or only `partitions`, those this process owns)."""
    files = partition_files(recovery_dir)
    if not files:
        msg = f"no Bytewax recovery partitions (part-N.sqlite3) in {recovery_dir}"
        raise RecoveryArchiveError(msg)
    count = max(files) + 1
    wanted = sorted(files if partitions is None else set(files) & partitions)
    return [
        save_archive(
            conn,
            execution_id=execution_id,
            partition_index=index,
            partition_count=count,
            bytewax_version=bytewax_version(),
            step_fingerprint=step_fingerprint,
            data=snapshot_partition(files[index]),
            keep=keep,
        )
        for index in wanted
    ]


def local_is_stale(conn: DbConnection, execution_id: uuid.UUID, recovery_dir: Path) -> bool:
    """True when the local directory is missing or older than the newest archive (its
    newest write counts, in the partition or its write-ahead log)."""
    archived = latest_archive_time(conn, execution_id)
    files = partition_files(recovery_dir)
    if archived is None:
        return False
    if not files:
        return True
    # Bytewax's SQLite runs in WAL mode: until a checkpoint (a clean exit) the snapshots
    # of the last epochs are only in `part-N.sqlite3-wal`, and the main file keeps the
    # mtime of the first ones; a SIGKILLed run's progress is in the WAL
    written = [q for p in files.values() for q in (p, p.with_name(f"{p.name}-wal")) if q.exists()]
    newest_local = max(q.stat().st_mtime for q in written)
    return datetime.fromtimestamp(newest_local, UTC) < archived


def restore_directory(
    conn: DbConnection,
    execution_id: uuid.UUID,
    recovery_dir: Path,
    *,
    step_fingerprint: str,
) -> int:
    """Replace `recovery_dir` with the newest consistent archive set; returns partitions.

    0 when the execution has no archives (nothing is touched). The set is written to a
    sibling directory first and swapped in, so a refused or failed restore leaves the
    old directory as it was.
    """
    archives = latest_archive_set(
        conn,
        execution_id,
        bytewax_version=bytewax_version(),
        step_fingerprint=step_fingerprint,
    )
    if archives is None:
        return 0
    recovery_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{recovery_dir.name}-restore-", dir=recovery_dir.parent)
    )
    try:
        for archive in archives:
            (staging / f"part-{archive.partition_index}.sqlite3").write_bytes(archive.data)
        if recovery_dir.exists():
            old = recovery_dir.with_name(f".{recovery_dir.name}-old-{uuid.uuid4().hex[:8]}")
            recovery_dir.rename(old)
            staging.rename(recovery_dir)
            shutil.rmtree(old)
        else:
            staging.rename(recovery_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return len(archives)

"""Recovery archives: real Bytewax partitions to Postgres and back, refusals."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from bytewax.recovery import init_db_dir

from factflow.db import DbConnection
from factflow.db.exceptions import RecoveryArchiveError
from factflow.db.recovery_files import (
    archive_directory,
    bytewax_version,
    local_is_stale,
    partition_files,
    restore_directory,
)
from factflow.db.repositories.executions import Execution
from factflow.db.repositories.recovery import (
    latest_archive_set,
    list_archives,
    save_archive,
    step_fingerprint,
)

pytestmark = pytest.mark.integration

FINGERPRINT = step_fingerprint(["ingest.fetch", "ingest.split"])


def _partitions(path: Path, count: int = 2) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    init_db_dir(path, count)  # type: ignore[no-untyped-call]
    for index, file in partition_files(path).items():
        with sqlite3.connect(file) as db:
            db.execute("CREATE TABLE IF NOT EXISTS probe (v TEXT)")
            db.execute("INSERT INTO probe VALUES (?)", (f"partition {index}",))
    return path


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


def test_archive_and_restore_round_trip(
    conn: DbConnection, execution: Execution, tmp_path: Path
) -> None:
    local = _partitions(tmp_path / "recovery")
    infos = archive_directory(conn, execution.id, local, step_fingerprint=FINGERPRINT)
    assert sorted(i.partition_index for i in infos) == [0, 1]
    assert {i.bytewax_version for i in infos} == {bytewax_version()}
    assert {(a.partition_index, a.partition_count) for a in list_archives(conn, execution.id)} == {
        (0, 2),
        (1, 2),
    }

    restored_dir = tmp_path / "elsewhere" / "recovery"
    assert local_is_stale(conn, execution.id, restored_dir)
    assert restore_directory(conn, execution.id, restored_dir, step_fingerprint=FINGERPRINT) == 2
    for index, original in partition_files(local).items():
        copy = restored_dir / original.name
        assert _dump(copy) == _dump(original)
        assert f"partition {index}" in "\n".join(_dump(copy))
    # the restored bytewax tables are there (a partition, not just any sqlite file)
    with sqlite3.connect(restored_dir / "part-0.sqlite3") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"parts", "snaps", "commits"} <= tables
    assert not local_is_stale(conn, execution.id, restored_dir)


def test_nothing_archived_means_nothing_restored(
    conn: DbConnection, execution: Execution, tmp_path: Path
) -> None:
    target = tmp_path / "recovery"
    assert restore_directory(conn, execution.id, target, step_fingerprint=FINGERPRINT) == 0
    assert not target.exists()
    assert latest_archive_set(conn, execution.id) is None
    assert not local_is_stale(conn, execution.id, target)


def test_progress_in_the_write_ahead_log_is_newer_than_the_archive(
    conn: DbConnection, execution: Execution, tmp_path: Path
) -> None:
    """A SIGKILLed worker leaves its last snapshots in `part-N.sqlite3-wal` (no checkpoint):
    that is the newest local write, not the main file's older mtime."""
    local = _partitions(tmp_path / "recovery")
    [archive, _] = archive_directory(conn, execution.id, local, step_fingerprint=FINGERPRINT)
    for file in local.iterdir():
        os.utime(file, (0, 0))  # written before the archive was taken
    assert local_is_stale(conn, execution.id, local)
    wal = local / "part-1.sqlite3-wal"
    wal.write_bytes(b"")
    after = archive.taken_at.timestamp() + 1  # written after it (set: mtimes are coarse)
    os.utime(wal, (after, after))
    assert not local_is_stale(conn, execution.id, local)


def test_a_plan_with_other_step_ids_is_refused_and_nothing_is_touched(
    conn: DbConnection, execution: Execution, tmp_path: Path
) -> None:
    archive_directory(conn, execution.id, _partitions(tmp_path / "a"), step_fingerprint=FINGERPRINT)
    target = tmp_path / "recovery"
    target.mkdir()
    (target / "part-0.sqlite3").write_bytes(b"local state")
    other = step_fingerprint(["ingest.fetch", "ingest.renamed"])
    with pytest.raises(RecoveryArchiveError, match="other step ids"):
        restore_directory(conn, execution.id, target, step_fingerprint=other)
    assert (target / "part-0.sqlite3").read_bytes() == b"local state"
    assert sorted(p.name for p in target.iterdir()) == ["part-0.sqlite3"]


def test_another_bytewax_version_is_refused(conn: DbConnection, execution: Execution) -> None:
    for index in range(2):
        save_archive(
            conn,
            execution_id=execution.id,
            partition_index=index,
            partition_count=2,
            bytewax_version="0.19.0",
            step_fingerprint=FINGERPRINT,
            data=b"x",
        )
    with pytest.raises(RecoveryArchiveError, match=r"Bytewax 0\.19\.0"):
        latest_archive_set(conn, execution.id, bytewax_version=bytewax_version())


def test_an_incomplete_set_is_refused(
    conn: DbConnection, execution: Execution, tmp_path: Path
) -> None:
    local = _partitions(tmp_path / "recovery", count=3)
    archive_directory(conn, execution.id, local, step_fingerprint=FINGERPRINT, partitions={0, 2})
    with pytest.raises(RecoveryArchiveError, match=r"lack partitions \[1\] of 3"):
        restore_directory(conn, execution.id, tmp_path / "out", step_fingerprint=FINGERPRINT)
    assert not (tmp_path / "out").exists()


def test_corrupt_bytes_are_refused(
    conn: DbConnection, execution: Execution, tmp_path: Path
) -> None:
    archive_directory(
        conn, execution.id, _partitions(tmp_path / "recovery"), step_fingerprint=FINGERPRINT
    )
    conn.execute(
        "UPDATE recovery_archives SET data = 'garbage' WHERE execution_id = %s"
        " AND partition_index = 1",
        (execution.id,),
    )
    with pytest.raises(RecoveryArchiveError, match="partition 1 is corrupt"):
        latest_archive_set(conn, execution.id)


def test_the_newest_archive_per_partition_wins_and_old_ones_are_pruned(
    conn: DbConnection, execution: Execution
) -> None:
    for generation in range(5):
        for index in range(2):
            save_archive(
                conn,
                execution_id=execution.id,
                partition_index=index,
                partition_count=2,
                bytewax_version=bytewax_version(),
                step_fingerprint=FINGERPRINT,
                data=f"p{index} g{generation}".encode(),
                keep=2,
            )
    assert len(list_archives(conn, execution.id)) == 4
    latest = latest_archive_set(conn, execution.id, step_fingerprint=FINGERPRINT)
    assert latest is not None
    assert [a.data for a in latest] == [b"p0 g4", b"p1 g4"]
    with pytest.raises(ValueError, match="keep"):
        save_archive(
            conn,
            execution_id=uuid.uuid4(),
            partition_index=0,
            partition_count=1,
            bytewax_version="x",
            step_fingerprint="y",
            data=b"",
            keep=0,
        )

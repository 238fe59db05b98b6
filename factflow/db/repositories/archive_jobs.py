"""Archive download jobs: one row per job, whichever server replica builds it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg.rows import class_row

from factflow.db.connection import DbConnection

JobStatus = Literal["pending", "running", "completed", "failed"]
_COLUMNS = (
    "id, prefix, status, object_count, size_bytes, storage_key, error, instance_id,"
    " created_at, completed_at"
)


@dataclass(frozen=True, slots=True)
class ArchiveJob:
    id: str
    prefix: str
    status: JobStatus
    object_count: int
    size_bytes: int
    storage_key: str
    error: str | None
    instance_id: str
    created_at: datetime
    completed_at: datetime | None


def create_job(
    conn: DbConnection, job_id: str, prefix: str, storage_key: str, instance_id: str
) -> ArchiveJob:
    with conn.transaction(), conn.cursor(row_factory=class_row(ArchiveJob)) as cur:
        cur.execute(
            "INSERT INTO archive_jobs (id, prefix, status, storage_key, instance_id)"
            f" VALUES (%s, %s, 'pending', %s, %s) RETURNING {_COLUMNS}",
            (job_id, prefix, storage_key, instance_id),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def get_job(conn: DbConnection, job_id: str) -> ArchiveJob | None:
    with conn.cursor(row_factory=class_row(ArchiveJob)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM archive_jobs WHERE id = %s", (job_id,))
        return cur.fetchone()


def update_job(
    conn: DbConnection,
    job_id: str,
    status: JobStatus,
    *,
    object_count: int = 0,
    size_bytes: int = 0,
    error: str | None = None,
) -> None:
    """Record progress; a final status sets `completed_at`."""
    with conn.transaction():
        conn.execute(
            "UPDATE archive_jobs SET status = %s, object_count = %s, size_bytes = %s,"
            " error = %s, completed_at = CASE WHEN %s THEN now() END WHERE id = %s",
            (status, object_count, size_bytes, error, status in ("completed", "failed"), job_id),
        )

"""Archive download jobs: every object under a prefix zipped in the background.

`POST /content/archive/prepare` starts one. The job's row is in Postgres and the zip in
stage storage (`archives/<job id>.zip`), so any server replica reports its status and
serves the download; the replica that took the request builds it (in a thread, the zip
spooled through a temporary file). A job whose replica stopped before it finished stays
`running`; prepare it again.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
import zipfile
from typing import Any

from psycopg_pool import ConnectionPool

from factflow.db.repositories import archive_jobs as repo
from factflow.db.repositories.archive_jobs import ArchiveJob
from factflow.storage.base import StageStorage

ARCHIVE_PREFIX = "archives/"


class ArchiveJobs:
    """Starts jobs on this replica; reads any replica's."""

    def __init__(self, pool: ConnectionPool[Any], storage: StageStorage, instance_id: str) -> None:
        self.pool = pool
        self.storage = storage
        self.instance_id = instance_id

    def prepare(self, prefix: str) -> ArchiveJob:
        job_id = uuid.uuid4().hex
        with self.pool.connection() as conn:
            job = repo.create_job(
                conn, job_id, prefix, f"{ARCHIVE_PREFIX}{job_id}.zip", self.instance_id
            )
        threading.Thread(target=self._build, args=(job,), daemon=True).start()
        return job

    def get(self, job_id: str) -> ArchiveJob | None:
        with self.pool.connection() as conn:
            return repo.get_job(conn, job_id)

    def read(self, job: ArchiveJob) -> bytes:
        """The finished job's zip."""
        return self.storage.get(job.storage_key)

    def _build(self, job: ArchiveJob) -> None:
        count = 0
        try:
            with self.pool.connection() as conn:
                repo.update_job(conn, job.id, "running")
            with tempfile.TemporaryFile() as spool:
                with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    for info in self.storage.list(job.prefix):
                        archive.writestr(info.key, self.storage.get(info.key))
                        count += 1
                size = spool.tell()
                spool.seek(0)
                self.storage.put(job.storage_key, spool.read(), content_type="application/zip")
            with self.pool.connection() as conn:
                repo.update_job(conn, job.id, "completed", object_count=count, size_bytes=size)
        except Exception as exc:
            with self.pool.connection() as conn:
                repo.update_job(conn, job.id, "failed", object_count=count, error=str(exc))

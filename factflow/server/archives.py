"""Archive download jobs: every object under a prefix zipped in the background.

`POST /content/archive/prepare` starts one; its status and the zip are served until the
server stops (jobs are this instance's; the zip files stay in `<data_dir>/archives`).
"""

from __future__ import annotations

import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from factflow.storage.base import StageStorage

JobStatus = Literal["pending", "running", "completed", "failed"]


@dataclass
class ArchiveJob:
    job_id: str
    prefix: str
    path: Path
    status: JobStatus = "pending"
    object_count: int = 0
    size_bytes: int = 0
    error: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed_at: datetime | None = None


class ArchiveJobs:
    """The jobs of this server instance."""

    def __init__(self, folder: Path, storage: StageStorage) -> None:
        self.folder = folder
        self.storage = storage
        self._jobs: dict[str, ArchiveJob] = {}
        self._lock = threading.Lock()

    def prepare(self, prefix: str) -> ArchiveJob:
        job_id = uuid.uuid4().hex
        job = ArchiveJob(job_id, prefix, self.folder / f"{job_id}.zip")
        with self._lock:
            self._jobs[job_id] = job
        threading.Thread(target=self._build, args=(job,), daemon=True).start()
        return job

    def get(self, job_id: str) -> ArchiveJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _build(self, job: ArchiveJob) -> None:
        job.status = "running"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = job.path.with_suffix(".partial")
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for info in self.storage.list(job.prefix):
                    archive.writestr(info.key, self.storage.get(info.key))
                    job.object_count += 1
            partial.replace(job.path)
            job.size_bytes = job.path.stat().st_size
            job.status = "completed"
        except Exception as exc:
            job.error = str(exc)
            job.status = "failed"
        job.completed_at = datetime.now(UTC)

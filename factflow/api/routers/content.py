"""Content: asynchronous archive downloads of stored artefacts (`storage download`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from fastapi.responses import Response
from pydantic import BaseModel, model_validator

from factflow.api.auth import require
from factflow.api.bodies import RequestBody
from factflow.api.deps import ArchivesDep
from factflow.api.errors import ApiError, error_responses, not_found
from factflow.db.repositories.archive_jobs import ArchiveJob
from factflow.storage.keys import check_prefix

router = APIRouter(prefix="/content", tags=["content"], dependencies=[require("storage:read")])


class ArchiveRequest(RequestBody):
    execution_id: str | None = None
    prefix: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ArchiveRequest:
        if self.execution_id is None and self.prefix is None:
            msg = "give execution_id or prefix"
            raise ValueError(msg)
        return self


class ArchiveStatus(BaseModel):
    job_id: str
    status: str
    prefix: str
    object_count: int
    size_bytes: int
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    download_url: str | None


def _status(job: ArchiveJob) -> ArchiveStatus:
    return ArchiveStatus(
        job_id=job.id,
        status=job.status,
        prefix=job.prefix,
        object_count=job.object_count,
        size_bytes=job.size_bytes,
        error=job.error,
        created_at=job.created_at,
        completed_at=job.completed_at,
        download_url=f"/api/v1/content/archive/{job.id}/download"
        if job.status == "completed"
        else None,
    )


@router.post("/archive/prepare", status_code=status.HTTP_202_ACCEPTED)
def prepare_archive(body: ArchiveRequest, jobs: ArchivesDep) -> ArchiveStatus:
    """Start zipping every object under the prefix (or the execution's folder)."""
    prefix = body.prefix if body.prefix is not None else f"executions/{body.execution_id}/"
    check_prefix(prefix)  # 400 INVALID_KEY now rather than a failed job later
    return _status(jobs.prepare(prefix))


@router.get("/archive/{job_id}/status", responses=error_responses(404))
def archive_status(job_id: str, jobs: ArchivesDep) -> ArchiveStatus:
    job = jobs.get(job_id)
    if job is None:
        msg = f"archive job {job_id}"
        raise not_found(msg)
    return _status(job)


@router.get(
    "/archive/{job_id}/download",
    response_class=Response,
    responses={
        200: {
            "description": "the zip of the prepared objects",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(404, 409),
    },
)
def download_archive(job_id: str, jobs: ArchivesDep) -> Response:
    """The zip once the job completed (factflow addition); 409 before."""
    job = jobs.get(job_id)
    if job is None:
        msg = f"archive job {job_id}"
        raise not_found(msg)
    if job.status != "completed":
        raise ApiError(409, f"archive job {job_id} is {job.status}", "ARCHIVE_NOT_READY")
    return Response(
        jobs.read(job),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'},
    )

"""Two server apps on one database and one stage storage, as two replicas: an archive job
prepared on one is reported and downloaded through the other (its row is in Postgres,
its zip in storage)."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from factflow.db.connection import connect
from factflow.db.repositories import archive_jobs
from tests.integration.api.conftest import MakeApp


def test_archive_job_prepared_on_one_replica_is_served_by_the_other(
    make_app: MakeApp,
    tmp_path: Path,
    start_text: Callable[..., dict[str, Any]],
    wait_status: Callable[..., dict[str, Any]],
) -> None:
    first = make_app(instance_id="replica-1")
    second = make_app(instance_id="replica-2", data_dir=tmp_path / "other-host")
    execution_id = start_text(first)["execution_id"]
    wait_status(second, execution_id, ("completed",))

    job = first.post("/api/v1/content/archive/prepare", json={"execution_id": execution_id})
    assert job.status_code == 202
    job_id = job.json()["job_id"]
    deadline = time.monotonic() + 30
    while (status := second.get(f"/api/v1/content/archive/{job_id}/status").json())[
        "status"
    ] not in ("completed", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "completed" and status["object_count"] > 0, status
    download = second.get(status["download_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert len(names) == status["object_count"]
    assert all(name.startswith(f"executions/{execution_id}/") for name in names)
    assert not (tmp_path / "server" / "archives").exists(), "no zip on one replica's disk"
    assert second.get("/api/v1/content/archive/nope/status").status_code == 404


def test_download_of_an_unfinished_archive_job_is_409_archive_not_ready(
    make_app: MakeApp, api_db_url: str
) -> None:
    """A job whose replica stopped before it built the zip stays `pending`: its download
    says so (409 ARCHIVE_NOT_READY) rather than serving a missing or partial zip."""
    api = make_app()
    job_id = uuid.uuid4().hex
    with connect(api_db_url) as conn:
        archive_jobs.create_job(conn, job_id, "executions/x/", f"archives/{job_id}.zip", "gone")
    assert api.get(f"/api/v1/content/archive/{job_id}/status").json()["status"] == "pending"
    download = api.get(f"/api/v1/content/archive/{job_id}/download")
    assert download.status_code == 409, download.text
    body = download.json()
    assert body["error_code"] == "ARCHIVE_NOT_READY"
    assert job_id in body["detail"] and "pending" in body["detail"]

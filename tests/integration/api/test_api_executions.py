"""Executions with real worker processes: run, events, stats, dag, routes, lineage, storage,
cancel, 429, interrupted at start, resume."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from factflow.db.connection import connect
from factflow.db.repositories.executions import create_execution, set_workers

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Wait = Callable[..., dict[str, Any]]
Start = Callable[..., dict[str, Any]]


def _sse(client: TestClient, path: str, **headers: str) -> list[tuple[str | None, str, Any]]:
    events = []
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        event_id, name = None, "message"
        for line in response.iter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event_id, name, json.loads(line[5:].strip())))
                event_id, name = None, "message"
    return events


def test_inline_run_completes_with_lineage_and_storage(
    api: TestClient, wait_status: Wait, start_text: Start
) -> None:
    started = start_text(api, trigger_context={"by": "test"})
    assert started["status"] == "running" and started["created"] is True
    execution_id = started["execution_id"]
    done = wait_status(api, execution_id, ("completed", "failed", "cancelled"))
    assert done["status"] == "completed", done["error"]
    assert done["config_snapshot"]["config_yaml"].startswith("# The shipped text pipeline")
    assert done["trigger_context"] == {"by": "test"}
    assert done["stats"]["counts"]["route:ingest:in"] == 2 + 1  # two inputs + init message
    assert done["stats"]["lineage"]["total"] > 0

    listed = api.get("/api/v1/executions", params={"status": "completed"}).json()
    assert execution_id in [e["id"] for e in listed]

    # events replay to the terminal one; Last-Event-ID resumes after it
    events = _sse(api, f"/api/v1/executions/{execution_id}/events")
    names = [name for _, name, _ in events]
    assert names[0] == "status" and names[-1] == "execution.completed"
    assert "execution.started" in names
    first_id = next(i for i, n, _ in events if n == "execution.started")
    assert first_id is not None
    resumed = _sse(api, f"/api/v1/executions/{execution_id}/events", **{"Last-Event-ID": first_id})
    assert "execution.started" not in [n for _, n, _ in resumed]
    assert resumed[-1][1] == "execution.completed"

    dag = api.get(f"/api/v1/executions/{execution_id}/dag").json()
    assert {n["id"] for n in dag["nodes"] if n["type"] == "route"} == {"ingest", "dedupe"}
    assert any(e["queue"] == "paragraphs" for e in dag["edges"])
    routes = {r["route_id"]: r for r in api.get(f"/api/v1/executions/{execution_id}/routes").json()}
    assert routes["ingest"]["queue"] == "docs.in"
    assert routes["ingest"]["processor_status"] == "stopped"
    stats = api.get(f"/api/v1/executions/{execution_id}/stats").json()
    assert {a["adapter_name"] for a in stats["adapters"]} >= {"split", "deduplicate"}
    assert all("pending" in a for a in stats["adapters"])

    lineage = api.get(f"/api/v1/executions/{execution_id}/lineage").json()
    assert lineage and all(row["execution_id"] == execution_id for row in lineage)
    child = next(row for row in lineage if row["parent_id"] is not None)
    chain = api.get(f"/api/v1/lineage/{child['id']}/chain").json()
    assert chain["ancestors"][0]["id"] == child["parent_id"]
    children = api.get(f"/api/v1/lineage/{child['parent_id']}/children").json()
    assert child["id"] in [c["id"] for c in children]
    roots = api.get("/api/v1/lineage", params={"execution_id": execution_id, "is_root": True})
    assert all(r["parent_correlation_id"] is None for r in roots.json())
    assert api.get("/api/v1/lineage/stats", params={"execution_id": execution_id}).json()["totals"][
        "total"
    ] == len(lineage)
    assert api.get("/api/v1/lineage/failures", params={"execution_id": execution_id}).json() == []
    assert api.get(f"/api/v1/executions/{uuid.uuid4()}/lineage").status_code == 404

    objects = api.get("/api/v1/storage/objects", params={"execution_id": execution_id}).json()
    assert objects["count"] > 0
    key = objects["objects"][0]["key"]
    assert key.startswith(f"executions/{execution_id}/")
    assert api.get(f"/api/v1/storage/objects/{key}").json()["payload"] is not None
    meta = api.get(f"/api/v1/storage/objects/{key}/metadata").json()["metadata"]
    assert meta["execution-id"] == execution_id
    assert api.get("/api/v1/storage/objects/executions/nope/x.json").status_code == 404

    # lineage links storage both ways: a row names its artefact, the artefact its row
    stored = [row for row in lineage if row["storage_key"]]
    assert len(stored) == len([r for r in lineage if r["status"] == "completed"])
    hashes = set()
    for row in stored:
        meta = api.get(f"/api/v1/storage/objects/{row['storage_key']}/metadata").json()
        assert meta["metadata"]["lineage-id"] == row["id"]
        hashes.add(meta["metadata"]["config-hash"])
    # the hash of the pipeline the workers ran (the server's effective YAML of the config)
    assert len(hashes) == 1 and len(hashes.pop()) == 64
    # a message id seen on a queue (an envelope's) finds the invocation that took it
    split = next(r for r in stored if r["adapter_name"] == "split")
    envelope = api.get(f"/api/v1/storage/objects/{split['storage_key']}").json()
    assert envelope["correlation_id"] == split["id"]
    taken = api.get(f"/api/v1/lineage/{envelope['message_id']}").json()
    assert (taken["message_id"], taken["parent_id"]) == (envelope["message_id"], split["id"])
    assert taken["route_id"] == "dedupe"
    by_message = api.get("/api/v1/lineage", params={"message_id": envelope["message_id"]})
    assert [r["id"] for r in by_message.json()][:1] == [taken["id"]]
    assert api.get(f"/api/v1/lineage/{split['id']}").json()["id"] == split["id"]
    assert api.get("/api/v1/lineage/no-such-message").status_code == 404

    stream = _sse(api, f"/api/v1/executions/{execution_id}/storage-stream")
    assert len([n for _, n, _ in stream if n == "storage.object_created"]) == objects["count"]


def test_archive_download(api: TestClient, wait_status: Wait, start_text: Start) -> None:
    import io
    import time
    import zipfile

    execution_id = start_text(api)["execution_id"]
    wait_status(api, execution_id, ("completed",))
    job = api.post("/api/v1/content/archive/prepare", json={"execution_id": execution_id})
    assert job.status_code == 202
    job_id = job.json()["job_id"]
    for _ in range(100):
        status = api.get(f"/api/v1/content/archive/{job_id}/status").json()
        if status["status"] in ("completed", "failed"):
            break
        time.sleep(0.1)
    assert status["status"] == "completed" and status["object_count"] > 0
    content = api.get(status["download_url"]).content
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert len(names) == status["object_count"]


def test_invalid_inline_pipeline_and_unknown_queue(api: TestClient) -> None:
    bad = api.post("/api/v1/executions", json={"pipeline_yaml": "version: '1.0'\nroutes: {}\n"})
    assert bad.status_code == 400 and "validation_report" in bad.json()
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "pipelines" / "text.yaml").read_text()
    unknown = api.post("/api/v1/executions", json={"pipeline_yaml": text, "inputs": {"nope": [1]}})
    assert unknown.status_code == 400 and unknown.json()["error_code"] == "UNKNOWN_INPUT_QUEUE"
    both = api.post("/api/v1/executions", json={})
    assert both.status_code == 422


def _start_forever(client: TestClient, **extra: Any) -> Any:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "pipelines" / "text-postgres.yaml").read_text()
    return client.post("/api/v1/executions", json={"pipeline_yaml": text, **extra})


def test_cancel_and_concurrency_limit(
    make_app: Callable[..., TestClient], wait_status: Wait
) -> None:
    api = make_app(max_concurrent_executions=1)
    first = _start_forever(api)
    assert first.status_code == 201, first.text
    execution_id = first.json()["execution_id"]
    over = _start_forever(api)
    assert over.status_code == 429
    assert over.json()["error_code"] == "TOO_MANY_CONCURRENT_EXECUTIONS"
    # a repeated idempotency key returns the existing execution, never a 429
    keyed = _start_forever(api, idempotency_key=f"k-{uuid.uuid4()}")
    assert keyed.status_code == 429
    cancel = api.post(f"/api/v1/executions/{execution_id}/cancel").json()
    assert cancel["status"] == "cancelling"
    done = wait_status(api, execution_id, ("cancelled", "completed", "failed"), timeout=30)
    assert done["status"] == "cancelled"
    again = api.post(f"/api/v1/executions/{execution_id}/cancel")
    assert again.status_code == 409 and again.json()["error_code"] == "EXECUTION_STATE"


def test_concurrent_launches_never_exceed_the_limit(
    make_app: Callable[..., TestClient], wait_status: Wait, api_db_url: str
) -> None:
    """Eight POSTs at once against a limit of three: the launch lock serialises each
    launch's count with its commit (the rows are inserted before it), so exactly three
    start and the others get 429 with nothing left behind."""
    from concurrent.futures import ThreadPoolExecutor

    api = make_app(max_concurrent_executions=3)

    def rows() -> int:
        with connect(api_db_url) as conn:
            row = conn.execute("SELECT count(*) FROM executions").fetchone()
        assert row is not None
        return int(row[0])

    before = rows()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _start_forever(api), range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [429] * 5, [r.text for r in responses]
    assert rows() == before + 3  # the refused ones' rows were rolled back
    started = {r.json()["execution_id"] for r in responses if r.status_code == 201}
    for execution_id in started:
        api.post(f"/api/v1/executions/{execution_id}/cancel")
    for execution_id in started:
        done = wait_status(api, execution_id, ("cancelled", "completed", "failed"), timeout=60)
        assert done["status"] == "cancelled"


def test_idempotency_key(api: TestClient, wait_status: Wait, start_text: Start) -> None:
    key = f"idem-{uuid.uuid4()}"
    first = start_text(api, idempotency_key=key)
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "pipelines" / "text.yaml").read_text()
    second = api.post("/api/v1/executions", json={"pipeline_yaml": text, "idempotency_key": key})
    assert second.status_code == 200
    assert second.json()["execution_id"] == first["execution_id"]
    assert second.json()["created"] is False
    wait_status(api, first["execution_id"], ("completed",))


def test_abandoned_execution_is_interrupted_at_start(
    api_db_url: str, make_app: Callable[..., TestClient]
) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    import socket

    with connect(api_db_url) as conn:
        execution = create_execution(conn, pipeline_name="ghost", config_snapshot={})
        set_workers(
            conn,
            execution.id,
            [{"pid": dead_pid, "host": socket.gethostname(), "server_pid": dead_pid,
              "instance": "gone"}],
        )  # fmt: skip
    api = make_app()
    body = api.get(f"/api/v1/executions/{execution.id}").json()
    assert body["status"] == "interrupted"
    assert "resume" in body["error"]


def test_server_stop_interrupts_and_resume_relaunches(
    make_app: Callable[..., TestClient], wait_status: Wait
) -> None:
    first = make_app()
    started = _start_forever(first)
    assert started.status_code == 201
    execution_id = started.json()["execution_id"]
    wait_status(first, execution_id, ("running",))
    first.__exit__(None, None, None)  # shutdown: interrupted, workers stopped

    second = make_app()
    assert wait_status(second, execution_id, ("interrupted",))["status"] == "interrupted"
    resumed = second.post(f"/api/v1/executions/{execution_id}/resume")
    assert resumed.status_code == 201, resumed.text
    assert resumed.json()["status"] == "running"
    assert second.post(f"/api/v1/executions/{execution_id}/resume").status_code == 409
    second.post(f"/api/v1/executions/{execution_id}/cancel")
    assert wait_status(second, execution_id, ("cancelled",), timeout=30)["status"] == "cancelled"


def test_pipelines_pause_resume(api: TestClient) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "pipelines" / "text.yaml").read_text()
    api.post("/api/v1/configs", json={"name": f"p-{uuid.uuid4().hex[:6]}", "config_yaml": text})
    routes = api.get("/api/v1/pipelines").json()
    assert "dedupe" in {r["route_id"] for r in routes}
    paused = api.patch("/api/v1/pipelines/dedupe", json={"state": "paused"}).json()
    assert paused == {
        "success": True, "route_id": "dedupe", "message": "route dedupe paused", "status": "paused"
    }  # fmt: skip
    assert {
        r["status"] for r in api.get("/api/v1/pipelines").json() if r["route_id"] == "dedupe"
    } == {"paused"}
    assert (
        api.patch("/api/v1/pipelines/dedupe", json={"state": "running"}).json()["status"]
        == "running"
    )
    assert api.patch("/api/v1/pipelines/nope", json={"state": "paused"}).status_code == 404
    assert api.patch("/api/v1/pipelines/dedupe", json={"state": "bogus"}).status_code == 422


def test_two_instances_answer_for_each_other(
    make_app: Callable[..., TestClient], wait_status: Wait
) -> None:
    owner, other = make_app(), make_app()
    started = _start_forever(owner)
    assert started.status_code == 201
    execution_id = started.json()["execution_id"]
    seen = wait_status(other, execution_id, ("running",))
    assert seen["workers"][0]["instance"] == owner.app.state.settings.instance_id  # type: ignore[attr-defined]
    # cancelling through the other instance: the owner sees it on its next heartbeat
    assert other.post(f"/api/v1/executions/{execution_id}/cancel").json()["status"] == "cancelling"
    assert wait_status(other, execution_id, ("cancelled",), timeout=30)["status"] == "cancelled"
    events = [n for _, n, _ in _sse(other, f"/api/v1/executions/{execution_id}/events")]
    # the status events; a worker that started at once (forked) may store its last batch
    # while it drains after the SIGTERM, so a storage event can come between them
    statuses = [n for n in events if n.startswith("execution.")]
    assert statuses[-2:] == ["execution.cancelling", "execution.cancelled"]


def test_worker_logs_tail(api: TestClient, wait_status: Wait, start_text: Start) -> None:
    execution_id = start_text(api)["execution_id"]
    wait_status(api, execution_id, ("completed",))
    run_dir = api.app.state.supervisor.run_dir(uuid.UUID(execution_id))  # type: ignore[attr-defined]
    with (run_dir / "logs" / "process-0.log").open("a") as log:
        log.write("\nfirst line\nthe last words")
    body = api.get(f"/api/v1/executions/{execution_id}/logs", params={"tail": 14}).json()
    assert body == {"execution_id": execution_id, "logs": {"process-0.log": "the last words"}}
    whole = api.get(f"/api/v1/executions/{execution_id}/logs").json()["logs"]["process-0.log"]
    assert whole.endswith("first line\nthe last words")
    assert api.get(f"/api/v1/executions/{uuid.uuid4()}/logs").status_code == 404
    assert api.get(f"/api/v1/executions/{execution_id}/logs", params={"tail": 0}).status_code == 422

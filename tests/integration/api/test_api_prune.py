"""Storage retention through the API (`POST /storage/prune`), with real worker processes,
file storage and Postgres: a dry run lists, a prune deletes only finished executions that
nothing live needs, a named execution that is needed refuses the whole request, and a
replay reading an execution's stages holds the prune off."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from factflow.db.connection import connect
from factflow.db.repositories.executions import create_execution
from factflow.db.repositories.retention import reading_stages

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Wait = Callable[..., dict[str, Any]]
Start = Callable[..., dict[str, Any]]


def _objects(api: TestClient, execution_id: str) -> int:
    listed = api.get("/api/v1/storage/objects", params={"execution_id": execution_id}).json()
    count: int = listed["count"]
    return count


def _finished(api: TestClient, start_text: Start, wait_status: Wait) -> str:
    execution_id: str = start_text(api)["execution_id"]
    assert wait_status(api, execution_id, ("completed", "failed"))["status"] == "completed"
    assert _objects(api, execution_id) > 0
    return execution_id


def test_prune_keeps_what_live_executions_need(
    api: TestClient, start_text: Start, wait_status: Wait, api_db_url: str
) -> None:
    replayed = _finished(api, start_text, wait_status)
    old = _finished(api, start_text, wait_status)
    with connect(api_db_url) as conn:
        # a replay of `replayed` that is running (as the database sees it)
        live = create_execution(
            conn,
            pipeline_name="replay",
            config_snapshot={},
            source="replay",
            replay_source={"execution_id": replayed, "stage": "split"},
        )
    time.sleep(1.1)
    prune = "/api/v1/storage/prune"

    nothing = api.post(prune, json={})
    assert nothing.status_code == 400 and nothing.json()["error_code"] == "RETENTION_INVALID"

    dry = api.post(prune, json={"older_than_seconds": 1, "dry_run": True}).json()
    assert dry["dry_run"] is True
    pruned = {p["execution_id"]: p for p in dry["pruned"]}
    assert old in pruned and replayed not in pruned
    assert pruned[old]["objects"] == _objects(api, old) > 0
    kept = {k["execution_id"]: k["reason"] for k in dry["kept"]}
    assert str(live.id) in kept[replayed]
    assert _objects(api, old) == pruned[old]["objects"]  # a dry run deletes nothing

    refused = api.post(prune, json={"execution_ids": [replayed, old]})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_code"] == "STORAGE_IN_USE"
    assert [k["execution_id"] for k in refused.json()["kept"]] == [replayed]
    assert _objects(api, old) > 0  # refused whole: nothing deleted
    running = api.post(prune, json={"execution_ids": [str(live.id)]})
    assert running.status_code == 409 and "running" in running.json()["kept"][0]["reason"]
    unknown = api.post(prune, json={"execution_ids": [str(uuid.uuid4())]})
    assert unknown.status_code == 400 and unknown.json()["error_code"] == "RETENTION_INVALID"

    # a replay reading `old`'s stages right now holds its prune off
    with connect(api_db_url) as reader, reading_stages(reader, uuid.UUID(old)):
        held = api.post(prune, json={"execution_ids": [old]}).json()
    assert held["pruned"] == [] and held["kept"][0]["reason"] == "a replay is reading it"

    done = api.post(prune, json={"older_than_seconds": 1}).json()
    assert old in [p["execution_id"] for p in done["pruned"]]
    assert done["objects"] >= pruned[old]["objects"]
    assert _objects(api, old) == 0
    assert _objects(api, replayed) > 0
    stats = api.get(f"/api/v1/executions/{old}").json()["stats"]
    assert stats["storage_pruned"]["objects"] == pruned[old]["objects"]
    # a replay of a pruned execution fails loudly, naming what is gone
    replay = api.post(f"/api/v1/executions/{old}/replay", json={"from_stage": "split"})
    assert replay.status_code == 409 and replay.json()["error_code"] == "STORED_MESSAGES_MISSING"

"""Replay and dead letters through the API, with real worker processes and Postgres.

A stored config runs with a wrong `split` (`into: wrong`); the config is fixed (version 2)
and replayed from the stage before it: only the later stages run, over exactly the stored
messages. Missing objects, unknown stages, cross-pipeline replay, selective replay, and
dead letters listed, redriven (queue and new execution) and discarded.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Wait = Callable[..., dict[str, Any]]

PIPELINE = """\
version: "1.0"
name: replayed
queue: {provider: file}
storage: {uri: "file://./output/storage"}
error_handling: {max_retries: 1, retry_delay_seconds: 0.05}
routes:
  ingest:
    inbound: {queue: docs.in, scope: global}
    adapters:
      - type: set_metadata
        name: tag
        config: {values: {tagged: "yes"}}
      - type: split
        name: explode
        config: {field: paragraphs, into: INTO}
    outbound: paragraphs
  finish:
    inbound: {queue: paragraphs}
    adapters:
      - type: set_metadata
        name: stamp
        config: {values: {stamped: "yes"}}
    outbound: done
"""
DOCS = [
    {"payload": {"title": "A", "paragraphs": ["one", "two"]}},
    {"payload": {"title": "B", "paragraphs": ["three"]}},
    {"payload": {"title": "C", "paragraphs": "not a list"}},  # split dead-letters it
]


def _stage_payloads(api: TestClient, execution_id: str, route: str, stage: str) -> list[Any]:
    prefix = f"executions/{execution_id}/{route}/{stage}/"
    objects = api.get("/api/v1/storage/objects", params={"prefix": prefix}).json()["objects"]
    payloads = [api.get(f"/api/v1/storage/objects/{o['key']}").json()["payload"] for o in objects]
    return sorted(payloads, key=lambda p: json.dumps(p, sort_keys=True))


def _lineage(api: TestClient, execution_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.get(f"/api/v1/executions/{execution_id}/lineage").json()
    return rows


def _run_config(api: TestClient, wait_status: Wait) -> tuple[str, str]:
    name = f"replayed-{uuid.uuid4().hex[:6]}"
    yaml_text = PIPELINE.replace("INTO", "wrong")
    created = api.post("/api/v1/configs", json={"name": name, "config_yaml": yaml_text})
    assert created.status_code == 201, created.text
    config_id = created.json()["id"]
    run = api.post(f"/api/v1/configs/{config_id}/run", json={"inputs": {"docs.in": DOCS}})
    assert run.status_code == 201, run.text
    execution_id = run.json()["execution_id"]
    done = wait_status(api, execution_id, ("completed", "failed", "cancelled"))
    assert done["status"] == "completed", done["error"]
    return config_id, execution_id


def test_replay_after_fixing_an_adapter_runs_only_later_stages(
    api: TestClient, wait_status: Wait, tmp_path: Path
) -> None:
    config_id, parent = _run_config(api, wait_status)
    wrong = _stage_payloads(api, parent, "ingest", "explode")
    assert sorted(p["wrong"] for p in wrong) == ["one", "three", "two"]
    tagged = _stage_payloads(api, parent, "ingest", "tag")
    assert len(tagged) == 3

    fixed = api.put(
        f"/api/v1/configs/{config_id}", json={"config_yaml": PIPELINE.replace("INTO", "text")}
    )
    assert fixed.status_code == 200 and fixed.json()["version"] == 2

    dry = api.post(
        f"/api/v1/executions/{parent}/replay",
        json={"from_stage": "tag", "config": "current", "dry_run": True},
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["messages"] == 3 and dry.json()["execution_id"] is None
    assert dry.json()["routes"] == ["ingest", "finish"]
    assert dry.json()["after_stage"] == "tag"

    replay = api.post(
        f"/api/v1/executions/{parent}/replay", json={"from_stage": "tag", "config": "current"}
    )
    assert replay.status_code == 201, replay.text
    body = replay.json()
    child = body["execution_id"]
    done = wait_status(api, child, ("completed", "failed", "cancelled"))
    assert done["status"] == "completed", done["error"]
    assert done["source"] == "replay" and done["config_version"] == 2
    assert done["replay_source"]["execution_id"] == parent
    assert done["replay_source"]["stage"] == "tag"

    # only the stages after `tag` ran, over exactly the three stored messages
    rows = _lineage(api, child)
    assert {(r["route_id"], r["stage_name"]) for r in rows} == {
        ("ingest", "explode"),
        ("finish", "stamp"),
    }
    explode_rows = [r for r in rows if r["stage_name"] == "explode"]
    assert sorted(r["message_id"] for r in explode_rows) == sorted(
        p["message_id"]
        for p in (
            api.get(f"/api/v1/storage/objects/{o['key']}").json()
            for o in api.get(
                "/api/v1/storage/objects", params={"prefix": f"executions/{parent}/ingest/tag/"}
            ).json()["objects"]
        )
    )
    # each replayed row descends from the parent's `tag` row and carries the batch id
    parent_rows = {r["id"]: r for r in _lineage(api, parent)}
    assert all(parent_rows[r["parent_id"]]["stage_name"] == "tag" for r in explode_rows)
    assert {r["replay_batch_id"] for r in rows} == {body["replay_source"]["replay_batch_id"]}
    assert not _stage_payloads(api, child, "ingest", "tag")

    # the fixed adapter's outputs: the same paragraphs under `text`, and the one bad
    # document dead-lettered again
    right = _stage_payloads(api, child, "ingest", "explode")
    assert sorted(p["text"] for p in right) == ["one", "three", "two"]
    assert [{k: v for k, v in p.items() if k != "text"} for p in right] == [
        {k: v for k, v in p.items() if k != "wrong"} for p in wrong
    ]
    assert len(_stage_payloads(api, child, "finish", "stamp")) == 3
    statuses = sorted(r["status"] for r in explode_rows)
    assert statuses == ["completed", "completed", "dead_lettered"]

    # the snapshot config still has the bug: replaying with it reproduces `wrong`
    again = api.post(f"/api/v1/executions/{parent}/replay", json={"from_stage": "tag"})
    assert again.status_code == 201, again.text
    done = wait_status(api, again.json()["execution_id"], ("completed", "failed", "cancelled"))
    assert done["config_version"] == 1
    assert _stage_payloads(api, again.json()["execution_id"], "ingest", "explode") == wrong

    # selective: only messages whose next step failed in the parent (the bad document)
    failed = api.post(
        f"/api/v1/executions/{parent}/replay",
        json={"from_stage": "tag", "filter": {"only_failed": True}, "dry_run": True},
    )
    assert failed.status_code == 200 and failed.json()["messages"] == 1
    by_title = api.post(
        f"/api/v1/executions/{parent}/replay",
        json={"from_stage": "tag", "filter": {"message_ids": ["nope"]}},
    )
    assert by_title.status_code == 409
    assert by_title.json()["missing"] == [f"executions/{parent}/ingest/tag/nope.json"]


def test_replay_refuses_before_starting(api: TestClient, wait_status: Wait, tmp_path: Path) -> None:
    _, parent = _run_config(api, wait_status)
    before = len(api.get("/api/v1/executions", params={"limit": 1000}).json())

    unknown = api.post(f"/api/v1/executions/{parent}/replay", json={"from_stage": "nope"})
    assert unknown.status_code == 400 and "tag" in unknown.json()["detail"]
    assert unknown.json()["error_code"] == "REPLAY_INVALID"
    gone = api.post(f"/api/v1/executions/{uuid.uuid4()}/replay", json={"from_stage": "tag"})
    assert gone.status_code == 404

    # delete one stored `tag` object that a later step consumed: named in the 409
    storage = tmp_path / "storage"
    tag_dir = storage / "executions" / parent / "ingest" / "tag"
    victim = sorted(tag_dir.glob("*.json"))[0]
    victim.unlink()
    missing = api.post(f"/api/v1/executions/{parent}/replay", json={"from_stage": "tag"})
    assert missing.status_code == 409, missing.text
    key = f"executions/{parent}/ingest/tag/{victim.name}"
    assert missing.json()["missing"] == [key]
    assert key in missing.json()["detail"]

    # a stage with no objects at all names its prefix
    shutil.rmtree(storage / "executions" / parent / "ingest" / "explode")
    empty = api.post(f"/api/v1/executions/{parent}/replay", json={"from_stage": "explode"})
    assert empty.status_code == 409
    assert empty.json()["missing"] == [f"executions/{parent}/ingest/explode/"]
    assert len(api.get("/api/v1/executions", params={"limit": 1000}).json()) == before


def test_cross_pipeline_replay_resolves_the_source_in_the_parent(
    api: TestClient, wait_status: Wait
) -> None:
    _, parent = _run_config(api, wait_status)
    # the target shares the route names but its `finish` reads another queue and stamps
    # differently; the source route `ingest` is the parent's, not the target's
    target = (
        PIPELINE.replace("INTO", "text")
        .replace("name: replayed", "name: other")
        .replace('stamped: "yes"', 'stamped: "other"')
    )
    body = {
        "source_execution_id": str(parent),
        "from_stage": "explode",
        "to_route": "finish",
        "target_pipeline_yaml": target,
    }
    response = api.post("/api/v1/replay", json=body)
    assert response.status_code == 201, response.text
    child = response.json()["execution_id"]
    assert response.json()["routes"] == ["finish"]
    done = wait_status(api, child, ("completed", "failed", "cancelled"))
    assert done["status"] == "completed", done["error"]
    assert done["pipeline_name"] == "other"
    rows = _lineage(api, child)
    assert {(r["route_id"], r["stage_name"]) for r in rows} == {("finish", "stamp")}
    assert len(rows) == 3
    stamped = api.get(
        "/api/v1/storage/objects", params={"prefix": f"executions/{child}/finish/stamp/"}
    ).json()["objects"]
    assert len(stamped) == 3
    first = api.get(f"/api/v1/storage/objects/{stamped[0]['key']}").json()
    assert first["metadata"]["stamped"] == "other"
    assert "wrong" in first["payload"]  # the parent's stored messages, unchanged

    no_route = api.post("/api/v1/replay", json={**body, "to_route": None})
    assert no_route.status_code == 400 and "to_route" in no_route.json()["detail"]


def test_dead_letters_listed_redriven_and_discarded(api: TestClient, wait_status: Wait) -> None:
    _, parent = _run_config(api, wait_status)
    letters = api.get("/api/v1/deadletters", params={"execution_id": parent}).json()
    assert len(letters) == 1
    letter = letters[0]
    assert letter["route_id"] == "ingest" and letter["message"]["payload"]["title"] == "C"
    assert api.get(f"/api/v1/deadletters/{letter['id']}").json()["id"] == letter["id"]
    assert api.get("/api/v1/deadletters/999999999").status_code == 404
    assert api.get("/api/v1/deadletters", params={"reason": "nope"}).json() == []

    # into a new execution, at another route's first step (the message skips `split`)
    redriven = api.post(
        "/api/v1/deadletters/redrive",
        json={"ids": [letter["id"]], "into": "execution", "to_route": "finish"},
    )
    assert redriven.status_code == 200, redriven.text
    assert redriven.json()["redriven"] == 1
    (child,) = redriven.json()["executions"]
    done = wait_status(api, child, ("completed", "failed", "cancelled"))
    assert done["status"] == "completed", done["error"]
    assert done["source"] == "redrive"
    rows = _lineage(api, child)
    assert [(r["route_id"], r["stage_name"], r["status"]) for r in rows] == [
        ("finish", "stamp", "completed")
    ]
    assert api.get(f"/api/v1/deadletters/{letter['id']}").json()["redriven_at"] is not None

    # idempotent: a redriven letter is not redriven again
    again = api.post("/api/v1/deadletters/redrive", json={"ids": [letter["id"]]})
    assert again.json() == {"redriven": 0, "dead_letter_ids": [], "executions": []}

    # a new failure, redriven onto its queue (the execution's file queue gets it)
    _, other = _run_config(api, wait_status)
    (second,) = api.get("/api/v1/deadletters", params={"execution_id": other}).json()
    onto = api.post("/api/v1/deadletters/redrive", json={"execution_id": other})
    assert onto.json()["redriven"] == 1 and onto.json()["dead_letter_ids"] == [second["id"]]
    pending = api.get("/api/v1/deadletters", params={"execution_id": other, "pending": True})
    assert pending.json() == []

    assert api.delete(f"/api/v1/deadletters/{second['id']}").status_code == 204
    assert api.get(f"/api/v1/deadletters/{second['id']}").status_code == 404
    assert api.delete(f"/api/v1/deadletters/{second['id']}").status_code == 404
    bad = api.post("/api/v1/deadletters/redrive", json={"into": "queue"})
    assert bad.status_code == 422

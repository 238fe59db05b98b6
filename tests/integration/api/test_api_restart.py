"""Restarting an interrupted execution whose recovery snapshot is gone, from lineage and
stage storage (`factflow.server.restart`), with real worker processes and Postgres.

The run is killed with SIGKILL part-way (some documents not read yet, some between two
steps, some through), its recovery directory and Postgres archives are deleted, and it is
resumed through the API. Every step appends each call to a journal, so the test sees
every invocation of both runs: nothing whose lineage row was written is processed again,
and every document reaches the sink.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from factflow.db.connection import connect
from factflow.db.repositories import executions as executions_repo
from tests.integration.api.conftest import REPO_ROOT

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Wait = Callable[..., dict[str, Any]]
ADAPTER = "tests.integration.flow_adapters:Journaled"
DOCS = 40
SLOW_MS = 100
STAGES = ("tag", "slow", "stamp")

PIPELINE = f"""\
version: "1.0"
name: restarted
queue: {{provider: file}}
routes:
  first:
    # batches of at least 8: `tag` runs a batch ahead of `slow`, so a kill finds
    # messages between the two
    inbound: {{queue: docs.in, scope: global, concurrency: 8}}
    adapters:
      - type: "{ADAPTER}"
        name: tag
        config: {{journal: "JOURNAL/tag", tag: tag}}
      - type: "{ADAPTER}"
        name: slow
        config: {{journal: "JOURNAL/slow", tag: slow, sleep_ms: {SLOW_MS}}}
    outbound: middle
  second:
    inbound: {{queue: middle}}
    adapters:
      - type: "{ADAPTER}"
        name: stamp
        config: {{journal: "JOURNAL/stamp", tag: stamp}}
    outbound: done
"""


def _journal(folder: Path, stage: str) -> list[str]:
    path = folder / stage
    return path.read_text().split() if path.exists() else []


def _rows(db_url: str, execution_id: str) -> dict[str, set[str]]:
    """The message ids each stage has a lineage row for."""
    with connect(db_url) as conn:
        found = conn.execute(
            "SELECT stage_name, message_id FROM lineage WHERE execution_id = %s",
            (uuid.UUID(execution_id),),
        ).fetchall()
    rows: dict[str, set[str]] = {stage: set() for stage in STAGES}
    for stage, message_id in found:
        rows[stage].add(message_id)
    return rows


def _kill_workers(db_url: str, execution_id: str) -> None:
    """The worker processes die with SIGKILL while the row is made `interrupted` first, as
    a lost machine leaves it (else the supervisor would record the exit as a failure)."""
    with connect(db_url) as conn:
        execution = executions_repo.transition(
            conn, uuid.UUID(execution_id), "interrupted", error="test: the worker died"
        )
    for worker in execution.workers:
        os.kill(int(worker["pid"]), signal.SIGKILL)


def _resume(api: TestClient, execution_id: str) -> dict[str, Any]:
    """POST resume once the supervisor saw its workers exit (409 until then)."""
    deadline = time.monotonic() + 20
    while True:
        response = api.post(f"/api/v1/executions/{execution_id}/resume")
        if response.status_code == 201 or time.monotonic() > deadline:
            assert response.status_code == 201, response.text
            body: dict[str, Any] = response.json()
            return body
        time.sleep(0.2)


def test_restart_without_recovery_from_lineage_and_storage(
    make_app: Callable[..., TestClient], wait_status: Wait, api_db_url: str, tmp_path: Path
) -> None:
    journals = tmp_path / "journals"
    journals.mkdir()
    api = make_app(worker_env={"PYTHONPATH": str(REPO_ROOT)}, restart_window_seconds=5)
    docs = [{"payload": {"n": n}} for n in range(DOCS)]
    pipeline = PIPELINE.replace("JOURNAL", str(journals))
    started = api.post(
        "/api/v1/executions", json={"pipeline_yaml": pipeline, "inputs": {"docs.in": docs}}
    )
    assert started.status_code == 201, started.text
    execution_id = started.json()["execution_id"]

    deadline = time.monotonic() + 60
    while True:
        slow = len(_journal(journals, "slow"))
        tagged = len(_rows(api_db_url, execution_id)["tag"])
        # kill in the middle of a batch of `slow`, once `tag`'s rows of it are written:
        # at least two messages are then between the two steps
        if slow >= DOCS // 4 and tagged - slow >= 2:
            break
        assert time.monotonic() < deadline, "the slow step did not get a quarter of the way"
        time.sleep(0.05)
    _kill_workers(api_db_url, execution_id)
    time.sleep(0.5)  # let the killed processes' exit be noticed before their files go
    recovery = tmp_path / "recovery" / execution_id
    for part in recovery.glob("*"):
        part.unlink()
    with connect(api_db_url) as conn:
        conn.execute(
            "DELETE FROM recovery_archives WHERE execution_id = %s", (uuid.UUID(execution_id),)
        )
    before = {stage: _journal(journals, stage) for stage in STAGES}
    rows_before = _rows(api_db_url, execution_id)
    assert 0 < len(rows_before["slow"]) < DOCS, "the kill came too late or too early"

    assert _resume(api, execution_id)["status"] == "running"
    done = wait_status(api, execution_id, ("completed", "failed", "cancelled"), timeout=120)
    assert done["status"] == "completed", done["error"]
    summary = done["stats"]["restart"]
    assert summary["from"] == "lineage"
    # documents not read yet start at the first step; those between two steps after the
    # step that stored them
    assert summary["entries"]["first (first step)"] == DOCS - len(rows_before["tag"])
    assert summary["entries"].get("first/tag", 0) >= 2, summary

    # nothing whose row was written ran again; what ran twice had lost its row in the kill
    for stage in STAGES:
        after = _journal(journals, stage)[len(before[stage]) :]
        assert not set(after) & rows_before[stage], f"{stage} redid recorded messages"
    redone_slow = set(before["slow"]) & set(_journal(journals, "slow")[len(before["slow"]) :])
    # rows are written every 0.5 s: at 100 ms a message, a few calls may lose theirs
    assert len(redone_slow) <= 10, redone_slow
    # every document went through every stage and reached the sink
    rows_after = _rows(api_db_url, execution_id)
    assert all(len(rows_after[stage]) == DOCS for stage in STAGES), {
        s: len(r) for s, r in rows_after.items()
    }
    sink = tmp_path / "server" / "runs" / execution_id / "queues" / "done.jsonl"
    outputs = [json.loads(line) for line in sink.read_text().splitlines()]
    assert {o["payload"]["n"] for o in outputs} == set(range(DOCS))
    assert all(o["metadata"].get("stamp") for o in outputs)
    assert not any("factflow_enter_after" in o["metadata"] for o in outputs)
    # a sink output of the last seconds before the kill may be sent again, never more
    assert max(Counter(o["message_id"] for o in outputs).values()) <= 2

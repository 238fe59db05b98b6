"""Resuming an interrupted execution through the API, with real worker processes and
Postgres: with its recovery snapshot it continues where the snapshot left it; without it,
it restarts from lineage and stage storage (`factflow.server.restart`).

Continuing: the run is killed with SIGKILL part-way and resumed through the API; the
outputs of both runs hold every input, and the ones output twice are exactly the lines
read after the snapshot it resumed from (at most one epoch), so it did not start over.

Restarting: the run is killed with SIGKILL part-way (some documents not read yet, some between two
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
from tests.e2e.helpers import T, count_lines, read_jsonl, wait_until
from tests.e2e.recovery import resume_state
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


CONTINUED_DOCS = 600
CONTINUED_SLEEP_MS = 10
# an epoch lasts at most twice factflow's 1 s snapshot interval (connectors/batching.py):
# at CONTINUED_SLEEP_MS a message, the most lines one epoch reads
ONE_EPOCH = 2 * 1000 // CONTINUED_SLEEP_MS
CONTINUED = f"""\
version: "1.0"
name: continued
queue: {{provider: file}}
routes:
  r:
    inbound: {{queue: docs.in}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {CONTINUED_SLEEP_MS}}}
    outbound: done
"""


def test_resume_continues_from_the_recovery_snapshot(
    make_app: Callable[..., TestClient], wait_status: Wait, tmp_path: Path, api_db_url: str
) -> None:
    api = make_app(worker_env={"PYTHONPATH": str(REPO_ROOT)})
    docs = [{"payload": {"n": n}} for n in range(CONTINUED_DOCS)]
    started = api.post(
        "/api/v1/executions", json={"pipeline_yaml": CONTINUED, "inputs": {"docs.in": docs}}
    )
    assert started.status_code == 201, started.text
    execution_id = started.json()["execution_id"]
    sink = tmp_path / "server" / "runs" / execution_id / "queues" / "done.jsonl"
    wait_until(lambda: count_lines(sink) >= CONTINUED_DOCS // 3, 60, "a third of the outputs")
    _kill_workers(api_db_url, execution_id)
    wait_until(lambda: not api.app.state.supervisor.is_local(uuid.UUID(execution_id)), 20,  # type: ignore[attr-defined]
               "the supervisor to see its workers exit")  # fmt: skip
    # the row said interrupted before the kill: nothing to restart, and none counted
    assert api.app.state.supervisor.restarts == 0  # type: ignore[attr-defined]
    before_kill = count_lines(sink)
    assert before_kill < CONTINUED_DOCS, "the run ended before it could be killed"
    recovery = tmp_path / "recovery" / execution_id
    [resume_at] = resume_state(recovery, "factflow_continued.source__docs_in").values()
    assert resume_at.line > 0, "no snapshot with progress before the kill"

    assert _resume(api, execution_id)["status"] == "running"
    done = wait_status(api, execution_id, ("completed", "failed", "cancelled"), timeout=60)
    assert done["status"] == "completed", done["error"]
    seen = Counter(o["payload"]["n"] for o in read_jsonl(sink))
    assert set(seen) == set(range(CONTINUED_DOCS)), "every input reaches the output"
    assert max(seen.values()) <= 2
    duplicated = sorted(n for n, count in seen.items() if count > 1)
    # exactly the lines read after the snapshot: the resume started from it (without it
    # every line before the kill would be output twice)
    assert duplicated == list(range(resume_at.line, before_kill))
    assert len(duplicated) <= ONE_EPOCH, f"{len(duplicated)} duplicates"


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
    # the supervisor sees the killed processes' exit before their files go
    wait_until(lambda: not api.app.state.supervisor.is_local(uuid.UUID(execution_id)), 20,  # type: ignore[attr-defined]
               "the supervisor to see its workers exit")  # fmt: skip
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

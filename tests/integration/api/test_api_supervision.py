"""Stale detection with real server processes, worker processes and Postgres: a server
that stops beating its execution's heartbeat while its process lives on (frozen with
SIGSTOP: not dead, so only the heartbeat tells) has the execution marked `interrupted`
by another replica after `FACTFLOW_STALE_AFTER_SECONDS` without a beat, no sooner and at
most a sweep later, and its orphaned workers stopped.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from factflow.dataflows.launch import free_ports
from factflow.db.connection import connect
from factflow.db.repositories import executions as repo
from tests.e2e.helpers import wait_until
from tests.integration.api.conftest import TEXT_POSTGRES_YAML, MakeApp
from tests.integration.servers import Replica

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STALE_SECONDS = 2.0
# the supervisor sweeps every third of the stale limit, between ticks of 0.2 s
SWEEP_SECONDS = STALE_SECONDS / 3 + 0.2


def _execution(db_url: str, execution_id: str) -> repo.Execution:
    with connect(db_url) as conn:
        return repo.get_execution(conn, uuid.UUID(execution_id))


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def owner(tmp_path: Path, api_db_url: str) -> Iterator[Replica]:
    """A server replica on the module's database (heartbeat every 0.3 s)."""
    replica = Replica(
        "owner", tmp_path / "owner", free_ports(1)[0], api_db_url,
        FACTFLOW_HEARTBEAT_SECONDS="0.3", FACTFLOW_RESUME_ABANDONED="false",
    )  # fmt: skip
    try:
        replica.wait_healthy()
        yield replica
    finally:
        replica.kill()  # SIGKILL ends a stopped process too


def test_a_server_that_stops_beating_has_its_execution_interrupted(
    owner: Replica, make_app: MakeApp, api_db_url: str
) -> None:
    started = httpx.post(
        f"{owner.url}/api/v1/executions", json={"pipeline_yaml": TEXT_POSTGRES_YAML}, timeout=30
    )
    assert started.status_code == 201, started.text
    execution_id = started.json()["execution_id"]
    pids = [int(w["pid"]) for w in started.json()["workers"]]
    watcher = make_app(stale_after_seconds=STALE_SECONDS)

    def beats_past_the_limit() -> bool:
        execution = _execution(api_db_url, execution_id)
        beat = execution.heartbeat_at or execution.started_at
        return (beat - execution.started_at).total_seconds() > STALE_SECONDS + SWEEP_SECONDS

    # while the owner beats, the watcher leaves the execution alone past the limit
    wait_until(beats_past_the_limit, 30, "the owner to beat for longer than the stale limit")
    assert watcher.get(f"/api/v1/executions/{execution_id}").json()["status"] == "running"

    owner.proc.send_signal(signal.SIGSTOP)
    wait_until(
        lambda: _execution(api_db_url, execution_id).status == "interrupted",
        STALE_SECONDS + 30,
        "the watcher to find the execution abandoned",
    )
    execution = _execution(api_db_url, execution_id)
    assert execution.heartbeat_at is not None
    silent = (execution.updated_at - execution.heartbeat_at).total_seconds()
    # no sooner than the limit; at most a sweep later, plus stopping the orphans
    # (SIGTERM, they exit within the grace period)
    assert STALE_SECONDS <= silent <= STALE_SECONDS + SWEEP_SECONDS + 5, silent
    assert execution.error is not None and "resume" in execution.error
    assert not any(_alive(pid) for pid in pids), "the orphaned workers were stopped"
    body: dict[str, Any] = watcher.get(f"/api/v1/executions/{execution_id}").json()
    assert body["status"] == "interrupted"

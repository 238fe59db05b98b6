"""Pausing a route everywhere: its sources stop fetching until it resumes."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from factflow.db.connection import connect
from factflow.db.migrate import migrate
from factflow.db.repositories.route_states import set_route_paused
from tests.e2e.helpers import REPO_ROOT, read_jsonl, worker_env, write_jsonl

pytestmark = pytest.mark.integration

PIPELINE = """
version: "1.0"
name: pausable
queue: {provider: file, path: QUEUES}
routes:
  {route}:
    inbound: {queue: in}
    adapters: [{type: passthrough}]
    outbound: out
"""


def test_a_paused_route_reads_nothing_until_it_resumes(pg_url: str, tmp_path: Path) -> None:
    route = f"r{uuid.uuid4().hex[:8]}"  # routes are paused across executions: keep it ours
    with connect(pg_url) as conn:
        migrate(conn)
        set_route_paused(conn, route, True)
    queues = tmp_path / "queues"
    write_jsonl(queues / "in.jsonl", [{"n": n} for n in range(20)])
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE.replace("QUEUES", str(queues)).replace("{route}", route))
    env = worker_env(
        FACTFLOW_PIPELINE=str(pipeline),
        FACTFLOW_DATABASE_URL=pg_url,
        FACTFLOW_EXECUTION_ID=str(uuid.uuid4()),
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1"],
        env=env,
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(4)
        assert worker.poll() is None, "a paused pipeline must wait, not end"
        assert read_jsonl(queues / "out.jsonl") == []
        with connect(pg_url) as conn:
            set_route_paused(conn, route, False)
        _, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, stderr.decode()[-2000:]
    assert sorted(r["payload"]["n"] for r in read_jsonl(queues / "out.jsonl")) == list(range(20))

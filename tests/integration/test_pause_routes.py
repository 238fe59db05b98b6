"""Pausing a route everywhere: its sources stop fetching until it resumes.

A second route in the same worker, not paused, reads a file of its own: once all of it
has come out, the worker has polled its sources (the paused one's too, in the same loop),
so the paused route's empty output means something and no fixed sleep is needed."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from factflow.db.connection import connect
from factflow.db.migrate import migrate
from factflow.db.repositories.route_states import set_route_paused
from tests.e2e.helpers import REPO_ROOT, read_jsonl, wait_until, worker_env, write_jsonl

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
  {control}:
    inbound: {queue: control.in}
    adapters: [{type: passthrough}]
    outbound: control.out
"""


def test_a_paused_route_reads_nothing_until_it_resumes(pg_url: str, tmp_path: Path) -> None:
    route = f"r{uuid.uuid4().hex[:8]}"  # routes are paused across executions: keep it ours
    with connect(pg_url) as conn:
        migrate(conn)
        set_route_paused(conn, route, True)
    queues = tmp_path / "queues"
    control = f"c{uuid.uuid4().hex[:8]}"
    write_jsonl(queues / "in.jsonl", [{"n": n} for n in range(20)])
    write_jsonl(queues / "control.in.jsonl", [{"n": n} for n in range(20)])
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        PIPELINE.replace("QUEUES", str(queues))
        .replace("{route}", route)
        .replace("{control}", control)
    )
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
        wait_until(
            lambda: (
                len(read_jsonl(queues / "control.out.jsonl")) == 20 or worker.poll() is not None
            ),
            60,
            "the route that is not paused to get through its input",
        )
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

"""The read path's query budget: `GET /executions/{id}` sends one query for a finished
execution (its row with its lineage totals; checking the pooled connection out costs none)
and two for a live one (the workers' counters too). Counted from libpq's protocol trace of
the app's only pooled connection, so a change that adds a round trip fails here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg.pq import Trace

from factflow.db.connection import connect
from factflow.db.repositories.executions import create_execution, transition

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.integration.api.conftest import MakeApp

POOL_SIZE = 2  # the least the settings allow
# a fixed pool, every connection traced, so the trace sees every statement the request
# sends; no sweep and no heartbeat meanwhile (they would use the pool too); open mode: the
# credentials check is auth's own budget
SETTINGS = {
    "environment": "development",
    "auth_secret": None,
    "pool_min_size": POOL_SIZE,
    "pool_max_size": POOL_SIZE,
    "stale_after_seconds": 3600,
    "heartbeat_seconds": 3600,
}


@contextmanager
def statements(client: TestClient, trace_dir: Path) -> Iterator[list[str]]:
    """The statements sent on the pool's connections inside the block (each simple query
    or extended-protocol Execute; filled in when the block ends)."""
    pool = client.app.state.pool  # type: ignore[attr-defined]
    sent: list[str] = []
    traces = [trace_dir / f"conn-{i}.trace" for i in range(POOL_SIZE)]
    with ExitStack() as files:
        outs = [files.enter_context(path.open("w")) for path in traces]
        with ExitStack() as held:  # every connection at once: each gets its own trace
            for out in outs:
                conn = held.enter_context(pool.connection())
                conn.pgconn.trace(out.fileno())
                conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        yield sent
        with ExitStack() as held:
            for _ in outs:
                held.enter_context(pool.connection()).pgconn.untrace()  # flushes libpq's buffer
    for path in traces:
        # one line per protocol message (`F\t<length>\t<type>\t...`, F: to the server);
        # a query's own newlines continue its line
        for line in path.read_text().splitlines():
            fields = line.split("\t", 3)
            if len(fields) > 2 and fields[0] == "F" and fields[2] in ("Query", "Execute"):
                sent.append(line)


def _execution(url: str, *, finished: bool) -> uuid.UUID:
    with connect(url) as conn:
        execution = create_execution(
            conn, pipeline_name="read-path", config_snapshot={"config_yaml": "x"}
        )
        if finished:
            transition(conn, execution.id, "completed")
    return execution.id


def test_get_execution_sends_one_query_for_a_finished_one(
    make_app: MakeApp, api_db_url: str, tmp_path: Path
) -> None:
    api = make_app(**SETTINGS)
    execution_id = _execution(api_db_url, finished=True)
    api.get(f"/api/v1/executions/{execution_id}")  # warm: psycopg prepares after 5 uses
    with statements(api, tmp_path) as sent:
        response = api.get(f"/api/v1/executions/{execution_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed" and body["stats"]["lineage"]["total"] == 0
    assert len(sent) == 1, sent


def test_get_execution_sends_two_queries_for_a_live_one(
    make_app: MakeApp, api_db_url: str, tmp_path: Path
) -> None:
    api = make_app(**SETTINGS)
    execution_id = _execution(api_db_url, finished=False)
    with statements(api, tmp_path) as sent:
        response = api.get(f"/api/v1/executions/{execution_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert response.json()["stats"]["counts"] == {}  # no worker wrote counters
    assert len(sent) == 2, sent


def test_get_unknown_execution_is_404_after_one_query(make_app: MakeApp, tmp_path: Path) -> None:
    api = make_app(**SETTINGS)
    with statements(api, tmp_path) as sent:
        response = api.get(f"/api/v1/executions/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"
    assert len(sent) == 1, sent

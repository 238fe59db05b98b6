"""Executions: checked status transitions, immutable snapshot, idempotency, resume."""

from __future__ import annotations

import itertools
import uuid

import psycopg
import pytest

from factflow.db import DbConnection
from factflow.db.exceptions import ConflictError, DatabaseError, IllegalTransitionError
from factflow.db.repositories import executions as ex
from factflow.db.repositories.events import list_events

pytestmark = pytest.mark.integration

# how to reach each status from a new (running) execution
PATHS: dict[ex.ExecutionStatus, list[ex.ExecutionStatus]] = {
    "running": [],
    "cancelling": ["cancelling"],
    "interrupted": ["interrupted"],
    "completed": ["completed"],
    "failed": ["failed"],
    "cancelled": ["cancelled"],
}


def _new(conn: DbConnection, **kwargs: object) -> ex.Execution:
    return ex.create_execution(
        conn,
        pipeline_name="p",
        config_snapshot={"routes": {"a": 1}},
        **kwargs,  # type: ignore[arg-type]
    )


def test_python_transitions_match_the_database_table(conn: DbConnection) -> None:
    rows = set(conn.execute("SELECT from_status, to_status FROM execution_transitions"))
    pairs = {(a, b) for a, targets in ex.TRANSITIONS.items() for b in targets}
    assert rows == pairs
    assert set(ex.TRANSITIONS) == set(ex.STATUSES) == set(PATHS)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(ex.STATUSES, repeat=2)))
def test_every_transition_is_checked(
    conn: DbConnection, source: ex.ExecutionStatus, target: ex.ExecutionStatus
) -> None:
    execution = _new(conn)
    for step in PATHS[source]:
        ex.transition(conn, execution.id, step)
    if target in ex.TRANSITIONS[source]:
        moved = ex.transition(conn, execution.id, target, error="e" if target == "failed" else None)
        assert moved.status == target
        assert (moved.completed_at is not None) == (target in ex.TERMINAL)
    else:
        with pytest.raises(IllegalTransitionError, match=f"{source} -> {target}"):
            ex.transition(conn, execution.id, target)
        assert ex.get_execution(conn, execution.id).status == source


def test_the_database_refuses_illegal_transitions_from_any_writer(conn: DbConnection) -> None:
    execution = _new(conn)
    ex.transition(conn, execution.id, "completed")
    with pytest.raises(psycopg.errors.CheckViolation, match="illegal status transition"):
        conn.execute("UPDATE executions SET status = 'running' WHERE id = %s", (execution.id,))


def test_the_config_snapshot_is_immutable(conn: DbConnection) -> None:
    execution = _new(conn)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="immutable"):
        conn.execute("UPDATE executions SET config_snapshot = '{}' WHERE id = %s", (execution.id,))
    assert ex.get_execution(conn, execution.id).config_snapshot == {"routes": {"a": 1}}


def test_transitions_emit_events(conn: DbConnection) -> None:
    execution = _new(conn)
    ex.transition(conn, execution.id, "cancelling")
    ex.transition(conn, execution.id, "cancelled")
    events = list_events(conn, execution_id=execution.id)
    assert [e.type for e in events] == [
        "execution.started",
        "execution.cancelling",
        "execution.cancelled",
    ]
    assert events[-1].payload["from"] == "cancelling"


def test_failed_keeps_the_error_and_stats(conn: DbConnection) -> None:
    execution = _new(conn)
    failed = ex.transition(conn, execution.id, "failed", error="boom", stats={"messages": 3})
    assert (failed.error, failed.stats) == ("boom", {"messages": 3})


def test_an_idempotency_key_returns_the_first_execution(conn: DbConnection) -> None:
    key = f"key-{uuid.uuid4()}"
    first = _new(conn, idempotency_key=key, source="webhook", trigger_context={"by": "x"})
    again = _new(conn, idempotency_key=key)
    assert again.id == first.id
    assert (again.source, again.trigger_context) == ("webhook", {"by": "x"})


def test_a_reused_execution_id_is_a_conflict(conn: DbConnection) -> None:
    execution = _new(conn)
    with pytest.raises(ConflictError, match=str(execution.id)):
        _new(conn, execution_id=execution.id)


def test_resume_moves_interrupted_back_to_running_with_new_workers(conn: DbConnection) -> None:
    execution = _new(conn, workers=[{"pid": 1}])
    ex.transition(conn, execution.id, "interrupted")
    resumed = ex.resume_execution(conn, execution.id, workers=[{"pid": 2, "process_id": 0}])
    assert resumed.status == "running"
    assert resumed.completed_at is None
    assert resumed.workers == [{"pid": 2, "process_id": 0}]
    assert resumed.heartbeat_at is not None
    # a running execution whose workers died unnoticed is taken over as is
    again = ex.resume_execution(conn, execution.id, workers=[{"pid": 3}])
    assert (again.status, again.workers) == ("running", [{"pid": 3}])
    ex.transition(conn, execution.id, "completed")
    with pytest.raises(IllegalTransitionError, match="completed is final"):
        ex.resume_execution(conn, execution.id)


def test_list_filters_by_status_and_pages(conn: DbConnection) -> None:
    made = [_new(conn) for _ in range(3)]
    ex.transition(conn, made[0].id, "failed")
    failed_ids = {e.id for e in ex.list_executions(conn, status="failed", limit=10_000)}
    assert made[0].id in failed_ids
    assert made[1].id not in failed_ids
    page1 = ex.list_executions(conn, status=["running", "failed"], limit=2)
    page2 = ex.list_executions(conn, status=["running", "failed"], limit=2, offset=2)
    assert len(page1) == 2
    assert not {e.id for e in page1} & {e.id for e in page2}
    assert ex.count_executions(conn, status="failed") >= 1


def test_delete_removes_a_finished_execution_and_refuses_a_running_one(
    conn: DbConnection,
) -> None:
    execution = _new(conn)
    with pytest.raises(DatabaseError, match="cancel it before deleting"):
        ex.delete_execution(conn, execution.id)
    ex.transition(conn, execution.id, "completed")
    ex.delete_execution(conn, execution.id)
    assert ex.find_execution(conn, execution.id) is None
    assert list_events(conn, execution_id=execution.id) == []

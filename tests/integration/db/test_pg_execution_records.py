"""Executions beyond the transitions (test_pg_executions.py): what a new row holds, the
event payloads webhooks send, the messages of refusals, counting and filtering, the
heartbeat, stats merging, totals, deletes, and the running count per API key."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from factflow.db import DbConnection
from factflow.db.exceptions import DatabaseError, IllegalTransitionError, NotFoundError
from factflow.db.repositories import executions as ex
from factflow.db.repositories.configs import create_config
from factflow.db.repositories.events import list_events

pytestmark = pytest.mark.integration


def _new(conn: DbConnection, **kwargs: object) -> ex.Execution:
    return ex.create_execution(
        conn,
        pipeline_name="p",
        config_snapshot={"routes": {"a": 1}},
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_new_execution_holds_what_it_was_started_with(conn: DbConnection) -> None:
    config = create_config(conn, name=f"c-{uuid.uuid4().hex[:8]}", config_yaml="version: '1.0'")
    execution_id, key = uuid.uuid4(), uuid.uuid4()
    made = _new(
        conn,
        execution_id=execution_id,
        config_id=config.id,
        config_version=1,
        source="replay",
        replay_source={"of": "x"},
        trigger_context={"by": "cron"},
        workers=[{"pid": 7}],
        started_by="ann (ff_live_abc)",
        started_by_key=key,
    )
    assert made == ex.get_execution(conn, execution_id)
    assert (made.id, made.config_id, made.config_version) == (execution_id, config.id, 1)
    assert (made.status, made.source, made.replay_source) == ("running", "replay", {"of": "x"})
    assert (made.trigger_context, made.workers) == ({"by": "cron"}, [{"pid": 7}])
    assert (made.started_by, made.pipeline_name) == ("ann (ff_live_abc)", "p")
    assert (made.completed_at, made.error, made.stats, made.idempotency_key) == (
        None,
        None,
        {},
        None,
    )
    assert not made.is_terminal
    assert ex.count_running_by_key(conn, key) == 1
    [started] = list_events(conn, execution_id=execution_id)
    assert started.type == "execution.started"
    assert started.payload == {
        "from": None,
        "status": "running",
        "error": None,
        "pipeline_name": "p",
        "config_id": str(config.id),
        "config_version": 1,
        "source": "replay",
        "started_at": made.started_at.isoformat(),
        "completed_at": None,
    }


def test_a_new_execution_has_defaults(conn: DbConnection) -> None:
    made = _new(conn)
    assert (made.source, made.replay_source, made.trigger_context, made.workers) == (
        "api",
        None,
        {},
        [],
    )
    assert (made.config_id, made.started_by) == (None, None)
    # no replay source is SQL NULL, not a JSON null (queries test `IS NULL`)
    (replay_is_null,) = conn.execute(
        "SELECT replay_source IS NULL FROM executions WHERE id = %s", (made.id,)
    ).fetchone()
    assert replay_is_null is True
    [started] = list_events(conn, execution_id=made.id)
    assert started.payload["config_id"] is None


def test_executions_without_an_idempotency_key_are_all_created(conn: DbConnection) -> None:
    assert _new(conn).id != _new(conn).id


def test_the_final_event_says_where_it_came_from_and_when_it_ended(conn: DbConnection) -> None:
    made = _new(conn)
    failed = ex.transition(conn, made.id, "failed", error="boom")
    assert failed.is_terminal
    assert isinstance(failed.completed_at, datetime)
    event = list_events(conn, execution_id=made.id)[-1]
    assert event.type == "execution.failed"
    assert event.payload["from"] == "running"
    assert (event.payload["status"], event.payload["error"]) == ("failed", "boom")
    assert event.payload["completed_at"] == failed.completed_at.isoformat()


def test_resuming_emits_resumed_and_keeps_error_and_stats_unless_given(
    conn: DbConnection,
) -> None:
    made = _new(conn)
    ex.transition(conn, made.id, "interrupted", error="worker died", stats={"n": 1})
    resumed = ex.transition(conn, made.id, "running")
    assert (resumed.error, resumed.stats, resumed.completed_at) == ("worker died", {"n": 1}, None)
    assert list_events(conn, execution_id=made.id)[-1].type == "execution.resumed"


def test_an_illegal_transition_lists_the_allowed_ones(conn: DbConnection) -> None:
    with pytest.raises(IllegalTransitionError) as caught:
        ex.check_transition("interrupted", "completed")
    assert str(caught.value) == (
        "illegal execution transition interrupted -> completed (allowed: cancelled, failed,"
        " running)"
    )
    with pytest.raises(IllegalTransitionError) as final:
        ex.check_transition("failed", "running")
    assert str(final.value) == (
        "illegal execution transition failed -> running (allowed: none: failed is final)"
    )
    ex.check_transition("running", "completed")


def test_unknown_executions_are_not_found(conn: DbConnection) -> None:
    missing = uuid.uuid4()
    assert ex.find_execution(conn, missing) is None
    for call in (
        lambda: ex.get_execution(conn, missing),
        lambda: ex.get_execution_with_totals(conn, missing),
        lambda: ex.transition(conn, missing, "completed"),
        lambda: ex.set_workers(conn, missing, []),
    ):
        with pytest.raises(NotFoundError) as caught:
            call()
        assert str(caught.value) == f"execution {missing} does not exist"


def test_totals_come_with_the_execution(conn: DbConnection) -> None:
    made = _new(conn)
    execution, totals = ex.get_execution_with_totals(conn, made.id)
    assert execution == made
    assert (totals.total, totals.completed, totals.first_started_at) == (0, 0, None)


def test_the_heartbeat_and_new_workers_are_recorded(conn: DbConnection) -> None:
    made = _new(conn)
    assert made.heartbeat_at is None
    ex.heartbeat(conn, made.id)
    beat = ex.get_execution(conn, made.id).heartbeat_at
    assert beat is not None
    moved = ex.set_workers(conn, made.id, [{"pid": 9, "host": "h"}])
    assert moved.workers == [{"pid": 9, "host": "h"}]
    assert moved.heartbeat_at is not None and moved.heartbeat_at >= beat


def test_stats_merge_top_level_keys(conn: DbConnection) -> None:
    made = _new(conn)
    ex.merge_stats(conn, made.id, {"a": 1, "b": {"x": 1}})
    ex.merge_stats(conn, made.id, {"b": {"y": 2}, "c": 3})
    assert ex.get_execution(conn, made.id).stats == {"a": 1, "b": {"y": 2}, "c": 3}


def test_a_transition_with_stats_replaces_them(conn: DbConnection) -> None:
    made = _new(conn)
    ex.merge_stats(conn, made.id, {"a": 1})
    done = ex.transition(conn, made.id, "completed", stats={"b": 2})
    assert (done.stats, done.error) == ({"b": 2}, None)


def test_counts_by_status_leave_out_the_excluded_one(conn: DbConnection) -> None:
    status = "cancelling"
    _new(conn)  # running: not counted
    before = ex.count_executions(conn, status=status)
    made = [_new(conn) for _ in range(2)]
    for execution in made:
        ex.transition(conn, execution.id, status)
    assert ex.count_executions(conn, status=status) == before + 2
    assert ex.count_executions(conn, status=[status]) == before + 2
    assert ex.count_executions(conn, status=status, exclude=made[0].id) == before + 1
    assert ex.count_executions(conn) > ex.count_executions(conn, status=status)


def test_listing_filters_by_config_and_orders_newest_first(conn: DbConnection) -> None:
    config = create_config(conn, name=f"c-{uuid.uuid4().hex[:8]}", config_yaml="version: '1.0'")
    made = [_new(conn, config_id=config.id, config_version=1) for _ in range(3)]
    listed = ex.list_executions(conn, config_id=config.id)
    assert [e.id for e in listed] == [e.id for e in reversed(made)]
    assert [e.id for e in ex.list_executions(conn, config_id=config.id, limit=1, offset=1)] == [
        made[1].id
    ]
    assert ex.list_executions(conn, config_id=config.id, status="failed") == []
    assert ex.list_executions(conn, config_id=config.id, status=["failed", "completed"]) == []


def test_a_listing_has_50_executions_unless_told(conn: DbConnection) -> None:
    for _ in range(51):
        _new(conn)
    assert len(ex.list_executions(conn)) == 50
    assert len(ex.list_executions(conn, limit=51)) == 51


def test_a_final_execution_cannot_be_resumed(conn: DbConnection) -> None:
    made = _new(conn)
    ex.transition(conn, made.id, "failed")
    with pytest.raises(IllegalTransitionError) as caught:
        ex.resume_execution(conn, made.id)
    assert str(caught.value) == (
        "illegal execution transition failed -> running (allowed: none: failed is final)"
    )


def test_running_executions_are_counted_per_key(conn: DbConnection) -> None:
    key = uuid.uuid4()
    running, cancelling, done = (_new(conn, started_by_key=key) for _ in range(3))
    ex.transition(conn, cancelling.id, "cancelling")
    ex.transition(conn, done.id, "completed")
    _new(conn, started_by_key=uuid.uuid4())
    assert ex.count_running_by_key(conn, key) == 2
    assert ex.count_running_by_key(conn, key, exclude=running.id) == 1
    assert ex.count_running_by_key(conn, uuid.uuid4()) == 0


@pytest.mark.parametrize("status", ["interrupted", "failed", "cancelled"])
def test_interrupted_and_final_executions_can_be_deleted(
    conn: DbConnection, status: ex.ExecutionStatus
) -> None:
    made = _new(conn)
    ex.transition(conn, made.id, status)
    ex.delete_execution(conn, made.id)
    assert ex.find_execution(conn, made.id) is None


def test_a_cancelling_execution_is_not_deleted(conn: DbConnection) -> None:
    made = _new(conn)
    ex.transition(conn, made.id, "cancelling")
    with pytest.raises(DatabaseError) as caught:
        ex.delete_execution(conn, made.id)
    assert str(caught.value) == f"execution {made.id} is cancelling; cancel it before deleting"
    assert ex.find_execution(conn, made.id) is not None

"""Events and schedules start executions through the API, against a real Postgres."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from factflow.db.connection import connect
from tests.integration.api.conftest import DOCS, TEXT_YAML, MakeApp

pytestmark = pytest.mark.integration


def _config(client: Any, name: str) -> str:
    yaml = TEXT_YAML.replace("name: text", f"name: {name}", 1)
    response = client.post("/api/v1/configs", json={"name": name, "config_yaml": yaml})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _executions_of(db_url: str, key: str, value: str) -> list[tuple[Any, ...]]:
    with connect(db_url) as conn:
        return conn.execute(
            "SELECT id, config_id, trigger_context FROM executions WHERE trigger_context->>%s = %s",
            (key, value),
        ).fetchall()


def test_event_starts_every_matching_config_once(make_app: MakeApp, api_db_url: str) -> None:
    client = make_app()
    first, second, third = (_config(client, n) for n in ("ev-one", "ev-two", "ev-three"))
    condition = {"field": "env", "operator": "eq", "value": "prod"}
    for config in (first, second):
        made = client.post(
            "/api/v1/triggers",
            json={"config_id": config, "event": "docs.*", "condition": condition,
                  "input_queue": "docs.in"},
        )  # fmt: skip
        assert made.status_code == 201, made.text
    client.post("/api/v1/triggers", json={"config_id": third, "event": "other.*"})
    event = {"name": "docs.arrived", "data": {"env": "prod", **DOCS[0]["payload"]}, "id": "e-1"}
    sent = client.post("/api/v1/events", json=event)
    assert sent.status_code == 201, sent.text
    results = sent.json()["results"]
    assert sorted(r["config_id"] for r in results) == sorted([first, second])
    assert all(r["execution_id"] and r["error"] is None for r in results)
    again = client.post("/api/v1/events", json=event)
    assert again.status_code == 200 and again.json()["results"] == results
    rows = _executions_of(api_db_url, "trigger", "event")
    assert len(rows) == 2
    assert rows[0][2]["event"]["name"] == "docs.arrived"
    skipped = client.post("/api/v1/events", json={"name": "docs.arrived", "data": {"env": "dev"}})
    assert skipped.json()["results"] == []
    listed = client.get("/api/v1/events").json()
    assert [e["id"] for e in listed][-1] == "e-1"
    assert client.get("/api/v1/events/e-1").json()["results"] == results


def test_invalid_trigger_and_schedule(make_app: MakeApp) -> None:
    client = make_app()
    config = _config(client, "bad-triggers")
    bad = client.post(
        "/api/v1/triggers",
        json={"config_id": config, "event": "x", "condition": {"field": "a", "operator": "eqq"}},
    )
    assert bad.status_code == 400 and "E110" in bad.json()["detail"]
    cron = client.post("/api/v1/schedules", json={"config_id": config, "cron": "61 * * * *"})
    assert cron.status_code == 400 and cron.json()["error_code"] == "SCHEDULE_INVALID"


def test_schedule_ticks_once_across_two_instances(make_app: MakeApp, api_db_url: str) -> None:
    clients = [make_app(instance_id=f"sched-{i}", schedule_poll_seconds=0.05) for i in range(2)]
    config = _config(clients[0], "scheduled")
    made = clients[0].post(
        "/api/v1/schedules", json={"config_id": config, "cron": "*/5 * * * *", "timezone": "UTC"}
    )
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert len(schedule["next_runs"]) == 5
    with connect(api_db_url) as conn:
        conn.execute(
            "UPDATE schedules SET next_run_at = now() - interval '1 second' WHERE id = %s",
            (schedule["schedule_id"],),
        )
    deadline = time.monotonic() + 20
    while not _executions_of(api_db_url, "schedule_id", schedule["schedule_id"]):
        assert time.monotonic() < deadline, "the schedule never ticked"
        time.sleep(0.05)
    # both instances finish two more rounds: the tick was due in each, so a second start
    # would be committed by then
    rounds = [c.app.state.scheduler.rounds + 2 for c in clients]
    while any(c.app.state.scheduler.rounds < r for c, r in zip(clients, rounds, strict=True)):
        assert time.monotonic() < deadline, "the schedulers stopped polling"
        time.sleep(0.05)
    rows = _executions_of(api_db_url, "schedule_id", schedule["schedule_id"])
    assert len(rows) == 1
    after = clients[1].get(f"/api/v1/schedules/{schedule['schedule_id']}").json()
    assert after["last_execution_id"] == str(rows[0][0])
    assert datetime.fromisoformat(after["next_run_at"]) > datetime.fromisoformat(
        after["last_run_at"]
    )


@pytest.mark.parametrize(("missed", "runs"), [("skip", 0), ("run_once", 1)])
def test_missed_ticks(make_app: MakeApp, api_db_url: str, missed: str, runs: int) -> None:
    client = make_app(schedule_poll_seconds=0.05)
    config = _config(client, f"missed-{missed.replace('_', '-')}")
    schedule = client.post(
        "/api/v1/schedules", json={"config_id": config, "cron": "* * * * *", "missed": missed}
    ).json()
    with connect(api_db_url) as conn:
        conn.execute(
            "UPDATE schedules SET next_run_at = now() - interval '3 hours' WHERE id = %s",
            (schedule["schedule_id"],),
        )
    deadline = time.monotonic() + 20
    while True:
        after = client.get(f"/api/v1/schedules/{schedule['schedule_id']}").json()
        if after["last_error"] or after["last_execution_id"]:
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.05)
    rows = _executions_of(api_db_url, "schedule_id", schedule["schedule_id"])
    # the missed ticks' executions are the late ones; an on-time tick (late: false) may
    # follow when the test crosses a minute boundary, as it should
    assert len([row for row in rows if row[2]["late"]]) == runs, rows
    assert (after["last_error"] is not None) == (missed == "skip")
    assert after["next_run_at"] >= schedule["next_run_at"]  # the next tick, not a missed one

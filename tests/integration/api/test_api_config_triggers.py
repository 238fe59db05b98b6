"""A config's `triggers:` (registered when it is saved and when a server starts), and the
flow control of event triggers (rate limit, debounce, init payload), through the API
against a real Postgres; executions are started for real (worker processes)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from factflow.compiler.plan_codec import read_plan
from factflow.db.connection import connect
from factflow.db.repositories import configs as configs_repo
from tests.integration.api.conftest import TEXT_YAML, MakeApp

pytestmark = pytest.mark.integration

TRIGGERS = """
triggers:
  - event: "docs.*"
    input_queue: docs.in
    condition: {field: env, operator: eq, value: prod}
  - cron: "0 3 * * *"
    timezone: Europe/Oslo
"""


def _with(triggers: str, name: str) -> str:
    return TEXT_YAML.replace("name: text", f"name: {name}", 1) + triggers


def _save(client: Any, name: str, yaml: str) -> str:
    response = client.post("/api/v1/configs", json={"name": name, "config_yaml": yaml})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _of(client: Any, what: str, config_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"/api/v1/{what}?config_id={config_id}").json()
    return found


def _executions(db_url: str, config_id: str) -> list[tuple[Any, ...]]:
    with connect(db_url) as conn:
        return conn.execute(
            "SELECT id, trigger_context FROM executions WHERE config_id = %s ORDER BY started_at",
            (config_id,),
        ).fetchall()


def _open_bursts(db_url: str, config_id: str) -> int:
    """Debounced bursts of the config's triggers not started yet."""
    with connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM trigger_debounces d JOIN event_triggers t"
            " ON t.id = d.trigger_id WHERE t.config_id = %s",
            (config_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_saved_config_registers_its_triggers(make_app: MakeApp) -> None:
    client = make_app()
    config = _save(client, "yaml-triggers", _with(TRIGGERS, "yaml-triggers"))
    [trigger] = _of(client, "triggers", config)
    [schedule] = _of(client, "schedules", config)
    assert trigger["origin"] == schedule["origin"] == "config"
    assert trigger["event"] == "docs.*" and trigger["input_queue"] == "docs.in"
    assert schedule["timezone"] == "Europe/Oslo" and len(schedule["next_runs"]) == 5
    # deleting one through the API is refused: it would come back with the next save
    refused = client.delete(f"/api/v1/schedules/{schedule['schedule_id']}")
    assert refused.status_code == 409 and "triggers:" in refused.json()["detail"]

    # a new version: the unchanged schedule keeps its row, the changed trigger is replaced
    changed = TRIGGERS.replace("value: prod", "value: staging")
    updated = client.put(
        f"/api/v1/configs/{config}", json={"config_yaml": _with(changed, "yaml-triggers")}
    )
    assert updated.status_code == 200, updated.text
    [trigger2] = _of(client, "triggers", config)
    [schedule2] = _of(client, "schedules", config)
    assert schedule2["schedule_id"] == schedule["schedule_id"]
    assert trigger2["trigger_id"] != trigger["trigger_id"]
    assert trigger2["condition"]["value"] == "staging"

    # an API-made trigger stays across saves; an invalid version has no YAML triggers
    extra = client.post("/api/v1/triggers", json={"config_id": config, "event": "manual"})
    assert extra.status_code == 201 and extra.json()["origin"] == "api"
    broken = _with(TRIGGERS.replace('"0 3 * * *"', '"0 3 * *"'), "yaml-triggers")
    saved = client.put(f"/api/v1/configs/{config}", json={"config_yaml": broken})
    assert saved.json()["is_runnable"] is False
    assert [t["origin"] for t in _of(client, "triggers", config)] == ["api"]
    assert _of(client, "schedules", config) == []

    assert client.delete(f"/api/v1/configs/{config}").status_code == 204
    assert _of(client, "triggers", config) == []


def test_invalid_triggers_are_reported_with_codes(make_app: MakeApp) -> None:
    client = make_app()
    bad = "\ntriggers:\n  - cron: '* * *'\n  - {event: x, input_queue: nowhere}\n"
    report = client.post("/api/v1/configs/validate", json={"config_yaml": TEXT_YAML + bad}).json()
    codes = {(i["code"], i["path"]) for i in report["issues"] if i["severity"] == "error"}
    assert codes == {("E115", "triggers[0].cron"), ("E207", "triggers[1].input_queue")}
    config = _save(client, "api-bad", TEXT_YAML.replace("name: text", "name: api-bad"))
    posted = client.post(
        "/api/v1/triggers",
        json={"config_id": config, "event": "x",
              "debounce": {"period_seconds": 5, "timeout_seconds": 1}},
    )  # fmt: skip
    assert posted.status_code == 400 and posted.json()["error_code"] == "TRIGGER_INVALID"
    assert "E404 at debounce.timeout_seconds" in posted.json()["detail"]


def test_a_starting_server_registers_configs_saved_before(
    make_app: MakeApp, api_db_url: str
) -> None:
    make_app()  # migrates the database
    with connect(api_db_url) as conn:
        stored = configs_repo.create_config(
            conn, name="stored-directly", config_yaml=_with(TRIGGERS, "stored-directly")
        )
    client = make_app()
    assert [t["origin"] for t in _of(client, "triggers", str(stored.id))] == ["config"]
    first = _of(client, "schedules", str(stored.id))
    assert len(first) == 1
    # a second instance starting registers nothing twice
    make_app()
    assert _of(client, "schedules", str(stored.id)) == first


def test_rate_limit_refuses_beyond_the_limit_per_key(make_app: MakeApp, api_db_url: str) -> None:
    client = make_app()
    triggers = """
triggers:
  - event: "build.*"
    input_queue: docs.in
    rate_limit: {limit: 2, period_seconds: 60, key: repo}
"""
    config = _save(client, "rate-limited", _with(triggers, "rate-limited"))
    outcomes = []
    for i, repo in enumerate(["a", "a", "a", "b"]):
        sent = client.post(
            "/api/v1/events", json={"name": "build.done", "data": {"repo": repo, "n": i}}
        )
        assert sent.status_code == 201, sent.text
        [result] = sent.json()["results"]
        outcomes.append(result["outcome"])
    assert outcomes == ["started", "started", "rate_limited", "started"]
    assert len(_executions(api_db_url, config)) == 3


def test_debounce_starts_one_execution_per_burst_with_its_last_event(
    make_app: MakeApp, api_db_url: str
) -> None:
    client = make_app(schedule_poll_seconds=0.05)
    triggers = """
triggers:
  - event: "push"
    input_queue: docs.in
    debounce: {period_seconds: 1.0, key: repo}
"""
    config = _save(client, "debounced", _with(triggers, "debounced"))
    ids = []
    for i, repo in enumerate(["a", "a", "b", "a"]):
        sent = client.post(
            "/api/v1/events", json={"name": "push", "data": {"repo": repo, "n": i}, "id": f"p{i}"}
        ).json()
        assert sent["results"][0]["outcome"] == "debounced"
        ids.append(sent["id"])
    deadline = time.monotonic() + 30
    # every burst is closed in the transaction that starts it: once none is open, every
    # start there will be is committed (an extra one would come from a burst left open)
    while _open_bursts(api_db_url, config):
        assert time.monotonic() < deadline, "the bursts never started"
        time.sleep(0.05)
    rows = _executions(api_db_url, config)
    assert len(rows) == 2
    started = {r[1]["event"]["data"]["repo"]: r[1] for r in rows}
    assert started["a"]["event"]["id"] == "p3" and started["a"]["debounce"]["events"] == 3
    assert started["b"]["event"]["id"] == "p2" and started["b"]["debounce"]["events"] == 1
    last = client.get("/api/v1/events/p3").json()["results"][0]
    assert last["outcome"] == "started" and last["execution_id"] == str(
        next(r[0] for r in rows if r[1]["event"]["id"] == "p3")
    )
    assert client.get("/api/v1/events/p0").json()["results"][0]["outcome"] == "debounced"


def test_init_payload_takes_the_event_data(make_app: MakeApp, tmp_path: Path) -> None:
    client = make_app()
    yaml = """version: "1.0"
name: init-from-event
routes:
  a:
    inbound: {queue: start}
    outbound: out
init_message: {route: a, payload: {greeting: hello, who: nobody}}
triggers:
  - {event: hello, init_payload: true}
"""
    config = _save(client, "init-from-event", yaml)
    sent = client.post("/api/v1/events", json={"name": "hello", "data": {"who": "world"}})
    [result] = sent.json()["results"]
    assert result["outcome"] == "started", result
    execution = client.get(f"/api/v1/executions/{result['execution_id']}").json()
    assert execution["config_id"] == config
    # the plan the workers run (make_app's data_dir is tmp_path/server)
    plan = read_plan(tmp_path / "server" / "runs" / result["execution_id"] / "plan.json")
    assert plan.init_message is not None
    assert plan.init_message.payload == {"greeting": "hello", "who": "world"}

"""A pipeline's `triggers:`: every problem in one pass, and the plan that carries them."""

from __future__ import annotations

from factflow.compiler.compile import compile_text
from factflow.compiler.plan_codec import plan_from_json, plan_to_json
from factflow.compiler.render import render_plan
from factflow.compiler.triggers import trigger_problems

PIPELINE = """version: "1.0"
name: triggered
routes:
  a:
    inbound: {queue: docs.in}
    outbound: out
triggers:
  - event: "docs.*"
    input_queue: docs.in
    condition: {field: env, operator: eq, value: prod}
    rate_limit: {limit: 10, period_seconds: 60}
    debounce: {period_seconds: 2.5, key: repo}
  - {cron: "0 3 * * *", timezone: Europe/Oslo, max_running: 1}
"""


def test_a_trigger_fed_queue_is_fed_and_the_plan_keeps_the_triggers() -> None:
    result = compile_text(PIPELINE)
    # docs.in is fed by the trigger: no E202, and no W504 (something starts the pipeline)
    assert [i.code for i in result.report.issues] == []
    plan = result.require_plan()
    assert [t.kind for t in plan.triggers] == ["event", "schedule"]
    assert plan.to_dict()["triggers"][1] == {
        "cron": "0 3 * * *", "timezone": "Europe/Oslo", "max_running": 1,
    }  # fmt: skip
    assert plan_from_json(plan_to_json(plan)).triggers == plan.triggers
    text = render_plan(plan)
    assert "event 'docs.*' [if] -> docs.in, at most 10 per 60 s, debounced 2.5 s" in text
    assert "schedule '0 3 * * *' (Europe/Oslo, missed: skip), max 1 running" in text


def test_every_problem_of_one_trigger_at_once() -> None:
    raw = {
        "cron": "* * *",
        "timezone": "Nowhere/Land",
        "condition": {"field": "a", "operator": "equals"},
        "debounce": {"period_seconds": 5, "timeout_seconds": 1, "key": "a..b"},
    }
    found = {(p.code, p.path) for p in trigger_problems(raw, ("triggers", 0))}
    assert found == {
        ("E115", ("triggers", 0, "cron")),
        ("E116", ("triggers", 0, "timezone")),
        ("E117", ("triggers", 0, "condition")),
        ("E117", ("triggers", 0, "debounce")),
        ("E110", ("triggers", 0, "condition", "operator")),
        ("E112", ("triggers", 0, "debounce", "key")),
        ("E404", ("triggers", 0, "debounce", "timeout_seconds")),
    }


def test_an_event_trigger_with_schedule_keys_and_the_reverse() -> None:
    assert [p.code for p in trigger_problems({"event": "x", "missed": "skip"})] == ["E117"]
    assert trigger_problems({"event": "x"}) == []
    assert trigger_problems({"cron": "*/5 * * * *", "max_running": 2}) == []

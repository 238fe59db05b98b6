"""Checks of one `triggers:` entry that need no pipeline: its kind, cron, zone, condition,
keys and numbers. The compiler runs them on every entry; the triggers API runs the same
ones on a trigger or schedule posted to it, so both report the same E-codes."""

from __future__ import annotations

from typing import Any

from factflow.compiler.config import TRIGGER_EVENT_KEYS, TRIGGER_SCHEDULE_KEYS
from factflow.conditions import condition_problems, field_path_problem
from factflow.cron import cron_problems
from factflow.types import ConfigProblem

_KINDS = "an event trigger has `event:` (a glob over event names), a schedule `cron:`"


def trigger_problems(raw: Any, at: tuple[str | int, ...] = ()) -> list[ConfigProblem]:
    """Every problem of a raw trigger mapping (E117, E115, E116, E108-E112, E404); the
    pydantic model reports unknown keys, types and ranges."""
    if not isinstance(raw, dict):
        return []  # the model reports a non-mapping (E104)
    has_event, has_cron = raw.get("event") is not None, raw.get("cron") is not None
    if has_event == has_cron:
        what = "both `event:` and `cron:`" if has_event else "neither `event:` nor `cron:`"
        return [ConfigProblem(at, "E117", f"the trigger has {what}", f"{_KINDS}; give one")]
    problems: list[ConfigProblem] = []
    foreign = TRIGGER_SCHEDULE_KEYS if has_event else TRIGGER_EVENT_KEYS
    kind = "an event trigger" if has_event else "a schedule"
    problems += [
        ConfigProblem(
            (*at, key),
            "E117",
            f"`{key}` does not apply to {kind}",
            f"remove `{key}`, or make it its own trigger ({_KINDS})",
        )
        for key in foreign
        if key in raw
    ]
    if has_cron:
        problems += cron_problems(raw["cron"], raw.get("timezone", "UTC"), at)
    if "condition" in raw and raw["condition"] is not None:
        problems += condition_problems(raw["condition"], (*at, "condition"))
    for section in ("rate_limit", "debounce"):
        part = raw.get(section)
        if isinstance(part, dict) and part.get("key") is not None:
            problem = field_path_problem(part["key"], (*at, section, "key"))
            if problem is not None:
                problems.append(problem)
    debounce = raw.get("debounce")
    if isinstance(debounce, dict):
        period, timeout = debounce.get("period_seconds"), debounce.get("timeout_seconds")
        if (
            isinstance(period, int | float)
            and isinstance(timeout, int | float)
            and timeout < period
        ):
            problems.append(
                ConfigProblem(
                    (*at, "debounce", "timeout_seconds"),
                    "E404",
                    f"debounce timeout_seconds {timeout} is below period_seconds {period}:"
                    " the burst would always end by the timeout",
                    "make timeout_seconds >= period_seconds, or leave it out",
                )
            )
    return problems

"""Which triggers an event matches: a glob over its name, a condition over its data."""

from __future__ import annotations

import fnmatch

from factflow.conditions import ConditionConfig, compile_condition, condition_problems
from factflow.messages import Message
from factflow.triggers.exceptions import TriggerError
from factflow.types import JsonDict


def check_condition(condition: JsonDict | None) -> None:
    """Raise TriggerError with every problem (code, path, message) of a condition written
    in the pipeline condition language, over the event's data as the payload."""
    if condition is None:
        return
    problems = condition_problems(condition)
    if problems:
        lines = "; ".join(
            f"{p.code} at condition.{'.'.join(str(x) for x in p.path) or '(root)'}: "
            f"{p.message} ({p.suggestion})"
            for p in problems
        )
        msg = f"invalid trigger condition: {lines}"
        raise TriggerError(msg)


def matches(pattern: str, condition: JsonDict | None, name: str, data: JsonDict) -> bool:
    """Whether an event `name` with `data` fires a trigger (glob `pattern`, `condition`)."""
    if not fnmatch.fnmatchcase(name, pattern):
        return False
    if condition is None:
        return True
    predicate = compile_condition(ConditionConfig.model_validate(condition))
    return bool(predicate(Message(payload=data)))

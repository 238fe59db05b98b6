"""Field paths and conditions: compiled once into predicates over messages.

A field path names a payload field (`url`, `payload.title`) or a metadata field
(`metadata.lang`); dots go into nested mappings and `[n]` into lists.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from factflow.messages import Message
from factflow.types import ConfigProblem


class ConditionConfig(BaseModel):
    """A leaf test (`field`, `operator`, `value`) or a combination (`all`, `any`, `not`).

    Which form is used, and the operator, regex and field path, are checked by
    `conditions.condition_problems` so that each problem gets its own code.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str | None = None
    operator: str | None = None
    value: Any = None
    all: list[ConditionConfig] | None = None
    any: list[ConditionConfig] | None = None
    not_: ConditionConfig | None = Field(default=None, alias="not")


FIELD_PATH_RE = re.compile(r"^[A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*|\[\d+\])*$")
_SEGMENT_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()

Predicate = Callable[[Message], bool]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A user's `matches` regex. Python warns (FutureWarning) about patterns whose meaning
    may change in a later version, such as `[[]`; they are valid today, so no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(pattern)


def parse_field_path(path: str) -> tuple[str, tuple[str | int, ...]]:
    """`metadata.lang` -> ('metadata', ('lang',)); a bare name is a payload field."""
    parts: list[str | int] = [
        int(index) if index else name for name, index in _SEGMENT_RE.findall(path)
    ]
    if parts and parts[0] in ("payload", "metadata"):
        return str(parts[0]), tuple(parts[1:])
    return "payload", tuple(parts)


def field_getter(path: str) -> Callable[[Message], Any]:
    """A function returning the value at `path`, or `MISSING` when it is absent."""
    root, parts = parse_field_path(path)

    def get(message: Message) -> Any:
        value: Any = message.payload if root == "payload" else message.metadata
        for part in parts:
            if isinstance(part, int):
                if not isinstance(value, list) or part >= len(value):
                    return _MISSING
                value = value[part]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return _MISSING
        return value

    return get


def is_missing(value: Any) -> bool:
    return value is _MISSING


# The operators are plain functions rather than lambdas in the table below because
# mutation testing (scripts/mutation.sh) mutates function bodies only. Values that cannot
# be compared (a string and a number) make a test false, never an error.


def _eq(actual: Any, expected: Any) -> bool:
    return bool(actual == expected)


def _neq(actual: Any, expected: Any) -> bool:
    return bool(actual != expected)


def _gt(actual: Any, expected: Any) -> bool:
    try:
        return bool(actual > expected)
    except TypeError:
        return False


def _gte(actual: Any, expected: Any) -> bool:
    try:
        return bool(actual >= expected)
    except TypeError:
        return False


def _lt(actual: Any, expected: Any) -> bool:
    try:
        return bool(actual < expected)
    except TypeError:
        return False


def _lte(actual: Any, expected: Any) -> bool:
    try:
        return bool(actual <= expected)
    except TypeError:
        return False


def _contains(actual: Any, expected: Any) -> bool:
    try:
        return expected in actual
    except TypeError:
        return False


def _in(actual: Any, expected: Any) -> bool:
    return _contains(expected, actual)


def _not_in(actual: Any, expected: Any) -> bool:
    return not _contains(expected, actual)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _eq,
    "neq": _neq,
    "gt": _gt,
    "lt": _lt,
    "gte": _gte,
    "lte": _lte,
    "in": _in,
    "not_in": _not_in,
    "contains": _contains,
}
KNOWN_OPERATORS = frozenset(OPERATORS) | {"matches", "exists"}


def compile_condition(condition: ConditionConfig) -> Predicate:
    """A predicate for a validated condition (operators and regexes already checked)."""
    if condition.all is not None:
        parts = [compile_condition(c) for c in condition.all]
        return lambda m: all(p(m) for p in parts)
    if condition.any is not None:
        parts = [compile_condition(c) for c in condition.any]
        return lambda m: any(p(m) for p in parts)
    if condition.not_ is not None:
        inner = compile_condition(condition.not_)
        return lambda m: not inner(m)
    assert condition.field is not None and condition.operator is not None
    get = field_getter(condition.field)
    expected = condition.value
    if condition.operator == "exists":
        want = expected if isinstance(expected, bool) else True
        return lambda m: (not is_missing(get(m))) == want
    if condition.operator == "matches":
        # no value is the empty pattern, as condition_problems checked it (not "None")
        pattern = compile_pattern("" if expected is None else str(expected))
        return lambda m: isinstance(v := get(m), str) and pattern.search(v) is not None
    op = OPERATORS[condition.operator]

    def holds(message: Message) -> bool:
        actual = get(message)
        # a missing field satisfies only the negative operators
        if is_missing(actual):
            return condition.operator in ("neq", "not_in")
        return op(actual, expected)

    return holds


def field_path_problem(path: object, at: tuple[str | int, ...]) -> ConfigProblem | None:
    """E112 when `path` is not a field path such as `url`, `payload.a[0]`, `metadata.lang`."""
    if isinstance(path, str) and FIELD_PATH_RE.match(path):
        return None
    return ConfigProblem(
        at,
        "E112",
        f"malformed field path {path!r}",
        "use a name like `url`, `payload.title`, `metadata.lang` or `items[0].id`",
    )


def condition_problems(raw: object, at: tuple[str | int, ...] = ()) -> list[ConfigProblem]:
    """Every problem of a raw condition mapping: its form, operator, regex, field path."""
    if not isinstance(raw, dict):
        return [ConfigProblem(at, "E108", "a condition must be a mapping", _FORMS)]
    forms = [k for k in ("all", "any", "not") if k in raw]
    leaf = "field" in raw or "operator" in raw
    if len(forms) + leaf != 1:
        return [ConfigProblem(at, "E108", "a condition must have exactly one form", _FORMS)]
    if forms:
        form = forms[0]
        value = raw[form]
        if form == "not":
            return condition_problems(value, (*at, "not"))
        if not isinstance(value, list) or not value:
            return [ConfigProblem((*at, form), "E108", f"`{form}` needs a list", _FORMS)]
        return [p for i, c in enumerate(value) for p in condition_problems(c, (*at, form, i))]
    problems: list[ConfigProblem] = []
    if "field" not in raw or "operator" not in raw:
        missing = "field" if "field" not in raw else "operator"
        problems.append(ConfigProblem(at, "E108", f"the condition has no `{missing}`", _FORMS))
    if "field" in raw and (problem := field_path_problem(raw["field"], (*at, "field"))):
        problems.append(problem)
    operator = raw.get("operator")
    if "operator" in raw and (not isinstance(operator, str) or operator not in KNOWN_OPERATORS):
        close = difflib.get_close_matches(str(operator), sorted(KNOWN_OPERATORS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        problems.append(
            ConfigProblem(
                (*at, "operator"),
                "E110",
                f"unknown condition operator {operator!r}",
                f"{hint}operators: {', '.join(sorted(KNOWN_OPERATORS))}",
            )
        )
    if operator == "matches":
        try:
            compile_pattern(str(raw.get("value", "")))
        except re.error as exc:
            problems.append(
                ConfigProblem(
                    (*at, "value"),
                    "E111",
                    f"invalid regular expression {raw.get('value')!r}: {exc}",
                    "fix the pattern (Python `re` syntax); quote it in YAML",
                )
            )
    if operator in ("in", "not_in") and not isinstance(raw.get("value"), list):
        problems.append(
            ConfigProblem(
                (*at, "value"),
                "E108",
                f"`{operator}` needs a list as `value`",
                "write the value as a YAML list, e.g. `value: [en, no]`",
            )
        )
    return problems


_FORMS = "write `{field: F, operator: OP, value: V}`, or `all: [...]`, `any: [...]`, `not: {...}`"

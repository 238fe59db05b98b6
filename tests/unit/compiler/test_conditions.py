"""Conditions: every operator, missing fields, all / any / not, field paths, problems."""

from __future__ import annotations

from typing import Any

import pytest

from factflow import Message
from factflow.conditions import (
    KNOWN_OPERATORS,
    ConditionConfig,
    compile_condition,
    condition_problems,
    field_getter,
    field_path_problem,
    is_missing,
    parse_field_path,
)

MESSAGE = Message(
    payload={
        "n": 5,
        "lang": "en",
        "tags": ["a", "b"],
        "url": "https://x.org/p",
        "doc": {"items": [{"id": 1}, {"id": 2}]},
        "none": None,
    },
    metadata={"source": "web", "depth": 2},
)


def holds(condition: dict[str, Any], message: Message = MESSAGE) -> bool:
    return compile_condition(ConditionConfig.model_validate(condition))(message)


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("lang", "eq", "en", True),
        ("lang", "eq", "de", False),
        ("lang", "neq", "de", True),
        ("lang", "neq", "en", False),
        ("n", "gt", 4, True),
        ("n", "gt", 5, False),
        ("n", "lt", 6, True),
        ("n", "lt", 5, False),
        ("n", "gte", 5, True),
        ("n", "lte", 4, False),
        ("lang", "in", ["en", "de"], True),
        ("lang", "in", ["fr"], False),
        ("lang", "not_in", ["fr"], True),
        ("lang", "not_in", ["en"], False),
        ("tags", "contains", "a", True),
        ("tags", "contains", "z", False),
        ("url", "contains", "x.org", True),
        ("url", "matches", "^https?://", True),
        ("url", "matches", "^ftp:", False),
        ("url", "matches", "x\\.org", True),  # search, not a full match
        ("lang", "exists", None, True),
        ("none", "exists", None, True),  # present with null is present
        ("absent", "exists", None, False),
        ("absent", "exists", False, True),
        ("lang", "exists", False, False),
        ("metadata.source", "eq", "web", True),
        ("metadata.depth", "gt", 1, True),
        ("payload.lang", "eq", "en", True),
        ("doc.items[1].id", "eq", 2, True),
        ("doc.items[5].id", "exists", None, False),
        ("tags[0]", "eq", "a", True),
    ],
)
def test_operators(field: str, operator: str, value: Any, expected: bool) -> None:
    assert holds({"field": field, "operator": operator, "value": value}) is expected


def test_every_known_operator_is_covered() -> None:
    expected = {"eq", "neq", "gt", "lt", "gte", "lte", "in", "not_in", "contains", "matches"}
    assert expected | {"exists"} == KNOWN_OPERATORS


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", "x", False),
        ("neq", "x", True),
        ("gt", 0, False),
        ("lt", 0, False),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("contains", "x", False),
        ("matches", ".*", False),
    ],
)
def test_missing_field_satisfies_only_negative_operators(
    operator: str, value: Any, expected: bool
) -> None:
    assert holds({"field": "absent.deep", "operator": operator, "value": value}) is expected


@pytest.mark.parametrize(
    ("field", "operator", "value"),
    [
        ("lang", "gt", 3),  # str > int: no TypeError, just false
        ("n", "contains", "5"),  # int has no `in`
        ("n", "matches", "5"),  # not a string
        ("tags", "in", ["a"]),  # unhashable compared by ==, fine, false
    ],
)
def test_type_mismatches_are_false_not_errors(field: str, operator: str, value: Any) -> None:
    assert holds({"field": field, "operator": operator, "value": value}) is False


def test_all_any_not() -> None:
    yes = {"field": "lang", "operator": "eq", "value": "en"}
    no = {"field": "lang", "operator": "eq", "value": "de"}
    assert holds({"all": [yes, yes]}) is True
    assert holds({"all": [yes, no]}) is False
    assert holds({"any": [no, yes]}) is True
    assert holds({"any": [no, no]}) is False
    assert holds({"not": no}) is True
    assert holds({"not": yes}) is False
    assert holds({"all": [{"any": [no, yes]}, {"not": {"all": [yes, no]}}]}) is True


def test_field_paths() -> None:
    assert parse_field_path("url") == ("payload", ("url",))
    assert parse_field_path("payload.title") == ("payload", ("title",))
    assert parse_field_path("metadata.lang") == ("metadata", ("lang",))
    assert parse_field_path("a.b[2].c") == ("payload", ("a", "b", 2, "c"))
    assert field_getter("doc.items[0].id")(MESSAGE) == 1
    assert is_missing(field_getter("n.deeper")(MESSAGE))
    assert is_missing(field_getter("tags[9]")(MESSAGE))
    assert field_getter("metadata")(MESSAGE) == MESSAGE.metadata


@pytest.mark.parametrize("path", ["url", "payload.a[0]", "metadata.lang", "items[0].id", "a-b"])
def test_good_field_paths(path: str) -> None:
    assert field_path_problem(path, ()) is None


@pytest.mark.parametrize("path", ["", "a..b", "[0]", "a.", "1abc", "a b", "a[x]", 5, None])
def test_bad_field_paths_are_e112(path: object) -> None:
    problem = field_path_problem(path, ("field",))
    assert problem is not None
    assert (problem.code, problem.path) == ("E112", ("field",))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lang == en", [("E108", ())]),
        ({}, [("E108", ())]),
        ({"field": "a", "all": []}, [("E108", ())]),
        ({"field": "a"}, [("E108", ())]),
        ({"operator": "eq"}, [("E108", ())]),
        ({"all": {"field": "a"}}, [("E108", ("all",))]),
        ({"any": []}, [("E108", ("any",))]),
        ({"field": "a", "operator": "in", "value": "x"}, [("E108", ("value",))]),
        ({"field": "a", "operator": "not_in"}, [("E108", ("value",))]),
        ({"field": "a", "operator": "like"}, [("E110", ("operator",))]),
        ({"field": "a", "operator": ["eq"]}, [("E110", ("operator",))]),
        ({"field": "a", "operator": "matches", "value": "(("}, [("E111", ("value",))]),
        ({"field": "a..b", "operator": "eq"}, [("E112", ("field",))]),
        (
            {"any": [{"field": "ok", "operator": "eq"}, {"not": {"field": "x", "operator": "?"}}]},
            [("E110", ("any", 1, "not", "operator"))],
        ),
        (
            {"field": "a b", "operator": "nope"},
            [("E112", ("field",)), ("E110", ("operator",))],
        ),
    ],
)
def test_condition_problems(raw: object, expected: list[tuple[str, tuple[Any, ...]]]) -> None:
    assert [(p.code, p.path) for p in condition_problems(raw)] == expected


def test_valid_conditions_have_no_problems() -> None:
    assert condition_problems({"field": "a", "operator": "exists"}) == []
    assert (
        condition_problems({"all": [{"not": {"field": "a", "operator": "eq", "value": 1}}]}) == []
    )


def test_unknown_operator_suggests_a_close_one() -> None:
    [problem] = condition_problems({"field": "a", "operator": "not-in"})
    assert problem.suggestion.startswith("did you mean 'not_in'?")
    [far] = condition_problems({"field": "a", "operator": "equals"})
    assert far.suggestion.startswith("operators: contains, eq,")


FORMS = "write `{field: F, operator: OP, value: V}`, or `all: [...]`, `any: [...]`, `not: {...}`"


@pytest.mark.parametrize(
    ("raw", "message", "suggestion"),
    [
        ("lang == en", "a condition must be a mapping", FORMS),
        ({"field": "a", "any": []}, "a condition must have exactly one form", FORMS),
        ({"operator": "eq"}, "the condition has no `field`", FORMS),
        ({"all": {"field": "a"}}, "`all` needs a list", FORMS),
        ({"field": "a"}, "the condition has no `operator`", FORMS),
        ({"field": "a", "not": {"field": "b"}}, "a condition must have exactly one form", FORMS),
        (
            {"field": "a", "operator": "in", "value": "x"},
            "`in` needs a list as `value`",
            "write the value as a YAML list, e.g. `value: [en, no]`",
        ),
        (
            {"field": "a[", "operator": "exists"},
            "malformed field path 'a['",
            "use a name like `url`, `payload.title`, `metadata.lang` or `items[0].id`",
        ),
        (
            {"field": "a", "operator": "matches", "value": "(("},
            "invalid regular expression '((': missing ), unterminated subpattern at position 1",
            "fix the pattern (Python `re` syntax); quote it in YAML",
        ),
        (
            {"field": "a", "operator": "gtee"},
            "unknown condition operator 'gtee'",
            "did you mean 'gte'? operators: contains, eq, exists, gt, gte, in, lt, lte, matches,"
            " neq, not_in",
        ),
    ],
)
def test_condition_problems_say_what_is_wrong_and_how_to_fix_it(
    raw: object, message: str, suggestion: str
) -> None:
    [problem] = condition_problems(raw)
    assert (problem.message, problem.suggestion) == (message, suggestion)


def test_a_matches_without_a_value_is_an_empty_pattern() -> None:
    # an absent value is the empty pattern, which matches everything: no E111
    assert condition_problems({"field": "a", "operator": "matches"}) == []
    assert holds({"field": "lang", "operator": "matches"}) is True
    assert holds({"field": "n", "operator": "matches"}) is False  # still only strings


def test_a_pattern_python_warns_about_is_valid_and_matches_silently() -> None:
    # `[[]` (a class holding `[`) draws a FutureWarning; pytest turns warnings into errors
    raw = {"field": "s", "operator": "matches", "value": "[[]"}
    assert condition_problems(raw) == []
    predicate = compile_condition(ConditionConfig.model_validate(raw))
    assert predicate(Message(payload={"s": "a[b"})) is True
    assert predicate(Message(payload={"s": "ab"})) is False

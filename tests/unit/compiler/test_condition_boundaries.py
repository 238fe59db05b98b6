"""Every condition operator at its boundary, on the types a payload holds, and with the
field missing; property-based (hypothesis) where a rule covers every value."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factflow import Message
from factflow.conditions import ConditionConfig, compile_condition


def holds(condition: dict[str, Any], payload: Any) -> bool:
    return compile_condition(ConditionConfig.model_validate(condition))(Message(payload=payload))


def leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": op, "value": value}


ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

# -- ordering: at, below and above the boundary ---------------------------------------


@pytest.mark.parametrize(
    ("op", "below", "at", "above"),
    [
        ("gt", False, False, True),
        ("gte", False, True, True),
        ("lt", True, False, False),
        ("lte", True, True, False),
    ],
)
@pytest.mark.parametrize(
    ("boundary", "step"),
    [(5, 1), (5, 0.001), (0, 1), (-3, 1), (2.5, 0.5), ("m", None)],
)
def test_ordering_at_below_and_above_the_boundary(
    op: str, below: bool, at: bool, above: bool, boundary: Any, step: Any
) -> None:
    if isinstance(boundary, str):
        lower, upper = "l", "n"  # strings order as Python orders them
    else:
        lower, upper = boundary - step, boundary + step
    assert holds(leaf("n", op, boundary), {"n": lower}) is below
    assert holds(leaf("n", op, boundary), {"n": boundary}) is at
    assert holds(leaf("n", op, boundary), {"n": upper}) is above


@pytest.mark.parametrize("op", ORDERING)
def test_an_int_and_an_equal_float_are_at_the_boundary(op: str) -> None:
    at = op in ("gte", "lte")
    assert holds(leaf("n", op, 5), {"n": 5.0}) is at
    assert holds(leaf("n", op, 5.0), {"n": 5}) is at


numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=True),
)


@given(op=st.sampled_from(sorted(ORDERING)), actual=numbers, boundary=numbers)
def test_ordering_of_numbers_is_arithmetic(op: str, actual: float, boundary: float) -> None:
    assert holds(leaf("n", op, boundary), {"n": actual}) is ORDERING[op](actual, boundary)


@given(op=st.sampled_from(sorted(ORDERING)), actual=st.text(), boundary=st.text())
def test_ordering_of_strings_is_lexicographic(op: str, actual: str, boundary: str) -> None:
    assert holds(leaf("s", op, boundary), {"s": actual}) is ORDERING[op](actual, boundary)


@given(op=st.sampled_from(sorted(ORDERING)), actual=st.text(), boundary=numbers)
def test_a_string_never_orders_against_a_number(op: str, actual: str, boundary: float) -> None:
    assert holds(leaf("s", op, boundary), {"s": actual}) is False
    assert holds(leaf("s", op, actual), {"s": boundary}) is False


@given(op=st.sampled_from(sorted(ORDERING)), actual=numbers)
def test_a_null_boundary_never_holds(op: str, actual: float) -> None:
    assert holds(leaf("n", op, None), {"n": actual}) is False
    assert holds(leaf("n", op, actual), {"n": None}) is False


def test_nan_is_never_ordered() -> None:
    for op in ORDERING:
        assert holds(leaf("n", op, 1), {"n": math.nan}) is False


# -- equality on types -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "expected", "equal"),
    [
        (5, 5, True),
        (5, 5.0, True),  # JSON has one number type
        (5, "5", False),
        ("en", "en", True),
        ("en", "EN", False),  # case matters
        ("", None, False),
        (None, None, True),  # a present null equals null
        (0, None, False),
        (False, None, False),
        ([1, 2], [1, 2], True),
        ([1, 2], [2, 1], False),
        ({"a": 1}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
    ],
)
def test_eq_and_neq_on_types(actual: Any, expected: Any, equal: bool) -> None:
    assert holds(leaf("v", "eq", expected), {"v": actual}) is equal
    assert holds(leaf("v", "neq", expected), {"v": actual}) is not equal


json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@given(actual=json_values, expected=json_values)
def test_neq_is_exactly_not_eq_on_present_fields(actual: Any, expected: Any) -> None:
    eq = holds(leaf("v", "eq", expected), {"v": actual})
    assert holds(leaf("v", "neq", expected), {"v": actual}) is not eq
    assert eq is (actual == expected)


# -- membership, contains, matches -------------------------------------------------------


@given(actual=st.integers(0, 9) | st.text(max_size=2), choices=st.lists(st.integers(0, 9)))
def test_in_and_not_in_are_membership_and_its_complement(actual: Any, choices: list[int]) -> None:
    member = actual in choices
    assert holds(leaf("v", "in", choices), {"v": actual}) is member
    assert holds(leaf("v", "not_in", choices), {"v": actual}) is not member


def test_in_compares_by_equality_not_identity_or_substring() -> None:
    assert holds(leaf("v", "in", [1, 2]), {"v": 2.0}) is True
    assert holds(leaf("v", "in", ["english"]), {"v": "eng"}) is False  # not a substring
    assert holds(leaf("v", "in", [[1], [2]]), {"v": [2]}) is True
    assert holds(leaf("v", "not_in", [[1], [2]]), {"v": [3]}) is True


@pytest.mark.parametrize(
    ("actual", "expected", "contained"),
    [
        (["a", "b"], "a", True),
        (["a", "b"], "c", False),
        (["ab"], "a", False),  # a list holds elements, not substrings
        ("hello", "ell", True),
        ("hello", "", True),  # every string holds the empty string
        ("hello", "Hell", False),
        ({"k": 1}, "k", True),  # a mapping holds its keys
        ({"k": 1}, 1, False),
        (12, 1, False),  # a number holds nothing
        ("12", 1, False),  # nor does a string hold a number
        (None, "a", False),
    ],
)
def test_contains(actual: Any, expected: Any, contained: bool) -> None:
    assert holds(leaf("v", "contains", expected), {"v": actual}) is contained


@given(prefix=st.text(max_size=5), word=st.text(min_size=1, max_size=5), suffix=st.text(max_size=5))
def test_contains_finds_a_substring_anywhere(prefix: str, word: str, suffix: str) -> None:
    assert holds(leaf("v", "contains", word), {"v": prefix + word + suffix}) is True


@pytest.mark.parametrize(
    ("actual", "pattern", "matched"),
    [
        ("https://x.org", "^https://", True),
        ("see https://x.org", "^https://", False),  # anchored patterns stay anchored
        ("see https://x.org", "https://", True),  # search, not fullmatch
        ("abc", "^abc$", True),
        ("abcd", "^abc$", False),
        ("ABC", "abc", False),  # case matters unless the pattern says (?i)
        ("ABC", "(?i)abc", True),
        (123, "1", False),  # only strings match
        (None, ".*", False),
        (["a"], "a", False),
    ],
)
def test_matches(actual: Any, pattern: str, matched: bool) -> None:
    assert holds(leaf("v", "matches", pattern), {"v": actual}) is matched


# -- exists and missing fields ------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, "", False, [], {}])
def test_a_present_field_exists_whatever_its_value(value: Any) -> None:
    assert holds(leaf("v", "exists", None), {"v": value}) is True
    assert holds(leaf("v", "exists", True), {"v": value}) is True
    assert holds(leaf("v", "exists", False), {"v": value}) is False


@pytest.mark.parametrize("payload", [{}, {"w": 1}, {"v": {}}, "a string", None, [1]])
def test_a_missing_field_does_not_exist(payload: Any) -> None:
    assert holds(leaf("v.x", "exists", None), payload) is False
    assert holds(leaf("v.x", "exists", False), payload) is True


def test_the_last_list_index_exists_and_one_past_it_does_not() -> None:
    payload = {"items": ["a", "b"]}
    assert holds(leaf("items[1]", "exists", None), payload) is True
    assert holds(leaf("items[2]", "exists", None), payload) is False
    assert holds(leaf("items[1]", "eq", "b"), payload) is True


@given(op=st.sampled_from(["eq", "gt", "gte", "lt", "lte", "contains"]), value=json_values)
def test_a_missing_field_fails_every_positive_operator(op: str, value: Any) -> None:
    assert holds(leaf("absent", op, value), {"present": value}) is False
    assert holds(leaf("absent", "in", [value]), {"present": value}) is False
    assert holds(leaf("absent", "matches", ".*"), {"present": value}) is False


@given(value=st.just([None]) | st.just([]) | st.just([0, "x"]))
def test_a_missing_field_holds_for_the_negative_operators(value: list[Any]) -> None:
    assert holds(leaf("absent", "not_in", value), {}) is True
    assert holds(leaf("absent", "neq", value), {}) is True
    assert holds(leaf("absent", "neq", None), {}) is True  # missing is not null


# -- all, any, not ----------------------------------------------------------------------

YES = leaf("t", "eq", True)
NO = leaf("t", "eq", False)


@given(parts=st.lists(st.booleans(), min_size=1, max_size=5))
def test_all_any_and_not_combine_like_their_names(parts: list[bool]) -> None:
    conditions = [YES if part else NO for part in parts]
    payload = {"t": True}
    assert holds({"all": conditions}, payload) is all(parts)
    assert holds({"any": conditions}, payload) is any(parts)
    assert holds({"not": {"all": conditions}}, payload) is not all(parts)
    assert holds({"not": {"not": {"any": conditions}}}, payload) is any(parts)

"""Stage keys: the seed system's layout, and no way for an id to escape it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factflow.storage import InvalidKeyError, parse_stage_key, stage_key, stage_prefix
from factflow.storage.keys import StageKey, check_key, check_prefix, segment_problem

BAD_SEGMENTS = ["", "a/b", "/a", "a\\b", ".", "..", ".hidden", "a\x00b", "tab\there", "x" * 201]


def test_stage_key_layout() -> None:
    assert stage_key("e1", "ingest", "split", "m1") == "executions/e1/ingest/split/m1.json"
    assert stage_key("e1", "ingest", "split", "m1", ext=".txt").endswith("/m1.txt")
    assert stage_key("e1", "ingest", "split", "m1", ext=None) == "executions/e1/ingest/split/m1"
    assert stage_key("e1", "ingest", "split", "m1", ext="") == "executions/e1/ingest/split/m1"


def test_spaces_unicode_and_dots_inside_are_allowed() -> None:
    key = stage_key("e1", "ingest.v2", "Split Paragraphs ü", "a..b")
    assert key == "executions/e1/ingest.v2/Split Paragraphs ü/a..b.json"


@pytest.mark.parametrize("bad", BAD_SEGMENTS)
@pytest.mark.parametrize(
    ("position", "what"),
    [(0, "execution id"), (1, "route id"), (2, "stage name"), (3, "message id")],
)
def test_bad_segments_are_rejected_naming_the_part(bad: str, position: int, what: str) -> None:
    parts = ["e1", "route", "stage", "m1"]
    parts[position] = bad
    with pytest.raises(InvalidKeyError, match=what):
        stage_key(*parts)


def test_non_string_segment_is_rejected() -> None:
    with pytest.raises(InvalidKeyError, match="message id must be a string"):
        stage_key("e1", "r", "s", 42)  # type: ignore[arg-type]


@pytest.mark.parametrize("ext", ["json", "./x", ".", ".a/b", ".meta.json", ". json"])
def test_bad_extensions_are_rejected(ext: str) -> None:
    with pytest.raises(InvalidKeyError, match="extension"):
        stage_key("e1", "r", "s", "m1", ext=ext)


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a//b", "a/", "a/../b", "./a", "a/.tmp-1", "a/b.meta.json", "a/" + "x" * 1030],
)
def test_check_key_rejects(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)


@pytest.mark.parametrize("prefix", ["", "executions/", "executions/e1", "executions/e1/r"])
def test_check_prefix_accepts_partial_last_segment(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/executions", "../x", "a//b", "a/../", "a/.."])
def test_check_prefix_rejects(prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_prefix(prefix)


def test_stage_prefix_levels() -> None:
    assert stage_prefix() == "executions/"
    assert stage_prefix("e1") == "executions/e1/"
    assert stage_prefix("e1", "r") == "executions/e1/r/"
    assert stage_prefix("e1", "r", "s") == "executions/e1/r/s/"
    with pytest.raises(InvalidKeyError, match="then the route id"):
        stage_prefix(None, "r")
    with pytest.raises(InvalidKeyError, match="route id"):
        stage_prefix("e1", "../r")


def test_parse_stage_key_round_trip() -> None:
    key = stage_key("e1", "r", "s", "m.1")
    assert parse_stage_key(key) == StageKey("e1", "r", "s", "m.1", ".json")
    assert parse_stage_key("executions/e1/r/s/m1", ext=None) == StageKey("e1", "r", "s", "m1", "")
    with pytest.raises(InvalidKeyError, match="not a stage key"):
        parse_stage_key("other/e1/r/s/m1.json")
    with pytest.raises(InvalidKeyError, match="not a stage key"):
        parse_stage_key("executions/e1/r/m1.json")


def test_segment_problem_is_what_the_compiler_can_report() -> None:
    assert segment_problem("split") is None
    assert segment_problem("a/b") == "contains a path separator ('/' or '\\')"


@given(st.lists(st.text(max_size=12), min_size=4, max_size=4))
def test_any_ids_give_a_five_segment_key_or_a_clear_error(parts: list[str]) -> None:
    """No id can add, remove or climb out of a level of the layout."""
    try:
        key = stage_key(parts[0], parts[1], parts[2], parts[3], ext=None)
    except InvalidKeyError:
        assert any(segment_problem(p) is not None for p in parts)
        return
    assert key.split("/") == ["executions", *parts]
    assert parse_stage_key(key, ext=None) == StageKey(parts[0], parts[1], parts[2], parts[3], "")

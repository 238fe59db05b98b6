"""The built-in adapters' `process` logic (no Bytewax needed)."""

from __future__ import annotations

import pickle

import pytest

from factflow import Context, Message
from factflow.adapters.builtin.deduplicate import DeduplicateAdapter
from factflow.adapters.builtin.filter import FilterAdapter
from factflow.adapters.builtin.map import MapAdapter
from factflow.adapters.builtin.passthrough import PassthroughAdapter
from factflow.adapters.builtin.set_metadata import SetMetadataAdapter
from factflow.adapters.builtin.split import SplitAdapter
from factflow.messages import content_hash

from . import sample_adapters

CTX = Context(execution_id="exec-1", route_id="r")


def msg(payload: object, **metadata: object) -> Message:
    return Message(payload=payload, metadata=dict(metadata))


def test_passthrough_returns_the_same_message() -> None:
    message = msg({"a": 1})
    assert PassthroughAdapter().process(message, CTX) == [message]


def test_filter_keeps_what_holds_and_drops_the_rest() -> None:
    adapter = FilterAdapter({"field": "lang", "operator": "eq", "value": "en"})
    en, de = msg({"lang": "en"}), msg({"lang": "de"})
    assert adapter.process(en, CTX) == [en]
    assert adapter.process(de, CTX) == []
    assert adapter.process(msg({}), CTX) == []


def test_filter_with_combined_condition_on_metadata() -> None:
    adapter = FilterAdapter(
        {
            "all": [
                {"field": "metadata.source", "operator": "in", "value": ["web", "api"]},
                {"not": {"field": "draft", "operator": "eq", "value": True}},
            ]
        }
    )
    assert len(adapter.process(msg({"draft": False}, source="web"), CTX)) == 1
    assert adapter.process(msg({"draft": True}, source="web"), CTX) == []
    assert adapter.process(msg({}, source="mail"), CTX) == []


def test_filter_check_config_reports_condition_problems() -> None:
    problems = FilterAdapter.check_config({"field": "x", "operator": "like"})
    assert [(p.code, p.path) for p in problems] == [("E110", ("operator",))]
    assert FilterAdapter.check_config({"field": "x", "operator": "exists"}) == []


def test_map_replaces_the_payload_with_a_child_message() -> None:
    adapter = MapAdapter({"function": f"{sample_adapters.__name__}:shout"})
    parent = msg({"text": "hi", "n": 1}, lang="en")
    [child] = adapter.process(parent, CTX)
    assert child.payload == {"text": "HI", "n": 1}
    assert child.metadata == {"lang": "en"}
    assert child.correlation_id == parent.message_id
    assert child.message_id != parent.message_id
    assert parent.payload == {"text": "hi", "n": 1}


@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("json", "not of the form"),
        (f"{sample_adapters.__name__}:nope", "has no attribute"),
        (f"{sample_adapters.__name__}:NOT_CALLABLE", "is not callable"),
        ("no_such_module_abc:f", "No module named"),
    ],
)
def test_map_check_config_names_the_problem(function: str, error: str) -> None:
    [problem] = MapAdapter.check_config({"function": function})
    assert (problem.code, problem.path) == ("E303", ("function",))
    assert error in problem.message
    assert MapAdapter.check_config({"function": "json:dumps"}) == []


def test_split_without_into_emits_each_element() -> None:
    parent = msg({"items": ["a", "b", "c"]}, origin="x")
    children = SplitAdapter({"field": "items"}).process(parent, CTX)
    assert [c.payload for c in children] == ["a", "b", "c"]
    assert [c.metadata for c in children] == [
        {"origin": "x", "split_index": i, "split_count": 3} for i in range(3)
    ]
    assert {c.correlation_id for c in children} == {parent.message_id}
    assert len({c.message_id for c in children}) == 3


def test_split_with_into_keeps_the_rest_of_the_payload() -> None:
    parent = msg({"title": "T", "paragraphs": ["p1", "p2"]})
    children = SplitAdapter({"field": "paragraphs", "into": "text"}).process(parent, CTX)
    assert [c.payload for c in children] == [
        {"title": "T", "paragraphs": ["p1", "p2"], "text": "p1"},
        {"title": "T", "paragraphs": ["p1", "p2"], "text": "p2"},
    ]


def test_split_nested_field_and_empty_list() -> None:
    adapter = SplitAdapter({"field": "doc.parts"})
    assert [c.payload for c in adapter.process(msg({"doc": {"parts": [1, 2]}}), CTX)] == [1, 2]
    assert adapter.process(msg({"doc": {"parts": []}}), CTX) == []


@pytest.mark.parametrize(
    ("payload", "found"),
    [({"items": "abc"}, "found str"), ({"items": {"a": 1}}, "found dict"), ({}, "found nothing")],
)
def test_split_of_a_non_list_is_a_value_error(payload: object, found: str) -> None:
    with pytest.raises(ValueError, match=f"split: field 'items' must be a list, {found}"):
        SplitAdapter({"field": "items"}).process(msg(payload), CTX)


def test_split_check_config_rejects_a_bad_field_path() -> None:
    [problem] = SplitAdapter.check_config({"field": "a..b"})
    assert problem.code == "E112"
    assert SplitAdapter.check_config({"field": "a.b[0]"}) == []


def test_set_metadata_merges_values() -> None:
    parent = msg({"a": 1}, lang="en", keep="yes")
    [out] = SetMetadataAdapter({"values": {"lang": "de", "pipeline": "text"}}).process(parent, CTX)
    assert out.metadata == {"lang": "de", "keep": "yes", "pipeline": "text"}
    assert out.payload == {"a": 1}
    assert out.message_id == parent.message_id
    assert parent.metadata == {"lang": "en", "keep": "yes"}


def test_deduplicate_by_key_field() -> None:
    adapter = DeduplicateAdapter({"key": "url"})
    first = msg({"url": "u1", "n": 1})
    assert adapter.process(first, CTX) == [first]
    assert adapter.process(msg({"url": "u1", "n": 2}), CTX) == []
    assert len(adapter.process(msg({"url": "u2"}), CTX)) == 1


def test_deduplicate_by_metadata_key_and_missing_key() -> None:
    adapter = DeduplicateAdapter({"key": "metadata.id"})
    assert len(adapter.process(msg({"a": 1}, id=7), CTX)) == 1
    assert adapter.process(msg({"a": 2}, id=7), CTX) == []
    # every message without the key counts as the same (missing) key
    assert len(adapter.process(msg({"a": 3}), CTX)) == 1
    assert adapter.process(msg({"a": 4}), CTX) == []


def test_deduplicate_without_key_uses_the_content_hash() -> None:
    adapter = DeduplicateAdapter()
    assert len(adapter.process(msg({"a": 1, "b": 2}), CTX)) == 1
    assert adapter.process(msg({"b": 2, "a": 1}), CTX) == []  # same content, other key order
    assert len(adapter.process(msg({"a": 1, "b": 3}), CTX)) == 1
    assert adapter.key_of(msg({"a": 1})) == content_hash({"a": 1})


def test_deduplicate_snapshot_and_restore_survive_a_restart() -> None:
    adapter = DeduplicateAdapter({"key": "id"})
    for i in (1, 2, 1):
        adapter.process(msg({"id": i}), CTX)
    state = pickle.loads(pickle.dumps(adapter.snapshot()))
    assert state == sorted(state)
    assert len(state) == 2

    restarted = DeduplicateAdapter({"key": "id"})
    restarted.restore(state)
    assert restarted.process(msg({"id": 1}), CTX) == []
    assert restarted.process(msg({"id": 2}), CTX) == []
    assert len(restarted.process(msg({"id": 3}), CTX)) == 1

    fresh = DeduplicateAdapter({"key": "id"})
    fresh.restore(None)
    assert len(fresh.process(msg({"id": 1}), CTX)) == 1


def test_deduplicate_is_stateful_and_checks_its_key_path() -> None:
    assert DeduplicateAdapter.stateful is True
    assert [p.code for p in DeduplicateAdapter.check_config({"key": "[0]"})] == ["E112"]
    assert DeduplicateAdapter.check_config({}) == []

"""The positional loader: where keys and values are, duplicate keys, merges, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from factflow.compiler.compile import compile_text
from factflow.compiler.diagnostics import Location
from factflow.compiler.loader import (
    MAX_DEPTH,
    MAX_VALUES,
    Position,
    load_file,
    load_text,
    parse_yaml,
)

TEXT = """\
version: "1.0"
routes:
  crawl:
    inbound: {queue: urls, concurrency: 2}
    adapters:
      - type: passthrough
      - type: split
        config:
          field: items
    outbound:
      - pages
"""


def test_positions_of_keys_and_values() -> None:
    loaded = load_text(TEXT, "p.yaml")
    assert loaded.issues == []
    keys, values = loaded.key_positions, loaded.value_positions
    assert keys[("version",)] == Position(1, 1)
    assert values[("version",)] == Position(1, 10)
    assert keys[("routes", "crawl")] == Position(3, 3)
    assert values[("routes", "crawl", "inbound", "queue")] == Position(4, 22)
    assert keys[("routes", "crawl", "inbound", "concurrency")] == Position(4, 28)
    assert values[("routes", "crawl", "inbound", "concurrency")] == Position(4, 41)
    assert values[("routes", "crawl", "adapters", 0)] == Position(6, 9)
    assert values[("routes", "crawl", "adapters", 1, "type")] == Position(7, 15)
    assert keys[("routes", "crawl", "adapters", 1, "config", "field")] == Position(9, 11)
    assert values[("routes", "crawl", "outbound", 0)] == Position(11, 9)


def test_locate_prefers_value_or_key_and_falls_back_to_the_parent() -> None:
    loaded = load_text(TEXT, "p.yaml")
    path = ("routes", "crawl", "inbound", "concurrency")
    assert loaded.locate(path) == Location("p.yaml", 4, 41)
    assert loaded.locate(path, at_key=True) == Location("p.yaml", 4, 28)
    # a key that is not there is reported at the nearest thing that is
    missing = ("routes", "crawl", "adapters", 0, "config")
    assert loaded.locate(missing) == Location("p.yaml", 6, 9)
    assert loaded.locate(("nowhere", "at", "all")) == Location("p.yaml", 1, 1)


def test_values_are_plain_python() -> None:
    loaded = load_text(TEXT)
    assert loaded.data["routes"]["crawl"]["inbound"] == {"queue": "urls", "concurrency": 2}
    assert loaded.data["routes"]["crawl"]["outbound"] == ["pages"]


def test_duplicate_key_is_e002_and_the_first_is_kept() -> None:
    loaded = load_text('version: "1.0"\nname: a\nname: b\n', "p.yaml")
    assert [(i.code, i.location) for i in loaded.issues] == [("E002", Location("p.yaml", 3, 1))]
    assert "first defined on line 2" in loaded.issues[0].message
    assert loaded.data["name"] == "a"


def test_second_route_with_the_same_id_is_not_lost_silently() -> None:
    text = """\
version: "1.0"
routes:
  crawl:
    inbound: {queue: a}
    outbound: b
  index:
    inbound: {queue: b}
  crawl:
    inbound: {queue: c}
init_message: {route: crawl}
"""
    result = compile_text(text, file="p.yaml")
    assert not result.report.is_valid
    assert result.plan is None
    [issue] = [i for i in result.report.issues if i.code == "E002"]
    assert issue.to_dict()["path"] == "routes.crawl"
    assert (issue.location.line, issue.location.column) == (8, 3)  # type: ignore[union-attr]


def test_duplicate_keys_in_flow_mappings_and_nested() -> None:
    loaded = load_text("a: {x: 1, x: 2}\nb:\n  - {y: 1}\n  - {y: 1, y: 3}\n")
    got = [(i.path, i.location.line, i.location.column) for i in loaded.issues if i.location]
    assert got == [(("a", "x"), 1, 11), (("b", 1, "y"), 4, 12)]


def test_same_key_in_different_mappings_is_fine() -> None:
    loaded = load_text("a: {x: 1}\nb: {x: 1}\n")
    assert loaded.issues == []


MERGE = """\
version: "1.0"
routes:
  first:
    inbound: &defaults {queue: in, concurrency: 2, prefetch: 10}
    outbound: mid
  second:
    inbound:
      <<: *defaults
      queue: mid
      prefetch: 20
    outbound: out
init_message: {route: first}
"""


def test_merge_keys_merge_and_own_keys_override() -> None:
    loaded = load_text(MERGE, "p.yaml")
    assert loaded.issues == []
    inbound = loaded.data["routes"]["second"]["inbound"]
    assert inbound == {"queue": "mid", "concurrency": 2, "prefetch": 20}
    # an own key is at its own line; a merged one where the anchor defines it
    assert loaded.key_positions[("routes", "second", "inbound", "prefetch")] == Position(10, 7)
    assert loaded.key_positions[("routes", "second", "inbound", "concurrency")] == Position(4, 36)
    result = compile_text(MERGE)
    assert result.report.issues == ()
    assert result.plan is not None
    assert result.plan.route("second").prefetch == 20
    assert result.plan.route("second").concurrency.initial == 2


def test_merge_of_a_list_of_mappings_first_wins() -> None:
    loaded = load_text("a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n  w: 0\n")
    assert loaded.issues == []
    assert loaded.data["c"] == {"x": 1, "y": 1, "z": 2, "w": 0}


def test_duplicate_own_key_next_to_a_merge_is_still_e002() -> None:
    loaded = load_text("a: &a {x: 1}\nb:\n  <<: *a\n  x: 2\n  x: 3\n")
    assert [(i.code, i.path) for i in loaded.issues] == [("E002", ("b", "x"))]
    assert loaded.data["b"] == {"x": 2}


def test_merge_of_a_scalar_is_e001() -> None:
    loaded = load_text("a:\n  <<: 5\n")
    assert [i.code for i in loaded.issues] == ["E001"]
    assert loaded.data is None


def test_unreadable_file_is_e004(tmp_path: Path) -> None:
    loaded = load_file(tmp_path / "nope.yaml")
    assert [i.code for i in loaded.issues] == ["E004"]
    assert loaded.data is None
    assert loaded.text == ""


def test_readable_file_keeps_its_name(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text('version: "1.0"\nname: x\n', encoding="utf-8")
    loaded = load_file(path)
    assert loaded.file == str(path)
    assert loaded.data == {"version": "1.0", "name": "x"}


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a: [1, 2\n", 2, 1),
        ("a:\n\tb: 1\n", 2, 1),
        ('a: "open\n', 2, 1),
        ("a: b: c\n", 1, 5),
    ],
)
def test_syntax_errors_are_e001_with_position(text: str, line: int, column: int) -> None:
    loaded = load_text(text, "p.yaml")
    assert [(i.code, i.location) for i in loaded.issues] == [
        ("E001", Location("p.yaml", line, column))
    ]
    assert loaded.data is None


def test_empty_and_non_mapping_documents_are_e003() -> None:
    for text in ["", "# nothing\n", "- a\n", "just text\n", "42\n"]:
        assert [i.code for i in load_text(text).issues] == ["E003"], text


# -- regressions found by the fuzz tests --------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 2024-13-01\n", "cannot read '2024-13-01' as timestamp"),
        ("a: !!int abc\n", "cannot read 'abc' as int"),
        ("a: !!float abc\n", "cannot read 'abc' as float"),
        ("a: !!bool maybe\n", "cannot read 'maybe' as bool"),
    ],
)
def test_values_yaml_cannot_convert_are_e001_not_exceptions(text: str, message: str) -> None:
    loaded = load_text(text, "p.yaml")
    assert [(i.code, i.location) for i in loaded.issues] == [("E001", Location("p.yaml", 1, 4))]
    assert message in loaded.issues[0].message
    assert isinstance(loaded.data["a"], str)  # the text is kept


def test_alias_loop_is_e001_at_the_key() -> None:
    loaded = load_text('version: "1.0"\nroutes: &a\n  x: *a\n', "p.yaml")
    [issue] = loaded.issues
    assert (issue.code, issue.location) == ("E001", Location("p.yaml", 3, 3))
    assert "loop" in issue.message
    assert loaded.data["routes"] == {"x": None}


def test_alias_bomb_is_e001_not_a_hang() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    loaded = load_text("\n".join(lines) + "\n")
    assert [i.code for i in loaded.issues] == ["E001"]
    assert str(MAX_VALUES) in loaded.issues[0].message
    assert loaded.data is None


def test_deep_nesting_is_e001() -> None:
    loaded = load_text("a: " + "[" * 1500 + "]" * 1500 + "\n")
    assert [i.code for i in loaded.issues] == ["E001"]
    assert "nested too deeply" in loaded.issues[0].message


def test_complex_keys_become_their_text() -> None:
    loaded = load_text("? [a, b]\n: 1\n")
    assert loaded.data == {"[a, b]": 1}
    # and the validator reports the unknown key instead of crashing on the '['
    issues = compile_text("? [a, b]\n: 1\n").report.issues
    assert ("E101", "[a, b]") in [(i.code, i.to_dict()["path"]) for i in issues]


def test_non_string_keys_become_strings() -> None:
    assert load_text("1: a\ntrue: b\nnull: c\n").data == {"1": "a", "True": "b", "None": "c"}


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 100_000 + "]" * 100_000,
        "a: " + "{b: " * 60_000 + "1" + "}" * 60_000,
        "a:\n" + "- " * 100_000 + "x\n",
    ],
    ids=["flow sequences", "flow mappings", "block sequences"],
)
def test_nesting_that_crashed_libyaml_is_e001(text: str) -> None:
    # composed as it was, each of these ended the process with a segfault
    loaded = load_text(text)
    assert [i.code for i in loaded.issues] == ["E001"]
    assert "nested too deeply" in loaded.issues[0].message
    with pytest.raises(RecursionError, match="deeper than 1000"):
        parse_yaml(text)


def test_parse_yaml_reads_what_safe_load_reads() -> None:
    text = "name: x\nroutes: {a: [1, 2.5, true, null, '3']}\n" + "# pad\n" * 1_000
    assert parse_yaml(text) == yaml.safe_load(text)
    padding = " " * 5_000  # long enough to be scanned
    nested = "a: " + "[" * 100 + "]" * 100 + padding
    assert parse_yaml(nested) == yaml.safe_load(nested)
    over = MAX_DEPTH  # with the top mapping one level deeper than allowed
    with pytest.raises(RecursionError):
        parse_yaml("a: " + "[" * over + "]" * over + padding)

"""Mutated and random pipelines: the compiler reports issues, it never raises."""

from __future__ import annotations

import contextlib
import copy
import json
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factflow.compiler.codes import CODES
from factflow.compiler.compile import CompileResult, compile_text
from factflow.compiler.render import render_mermaid, render_plan, render_report

PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"

SMALL = """\
version: "1.0"
name: small
queue: {provider: stomp, url: "stomp://127.0.0.1:61613"}
error_handling: {max_retries: 1, dead_letter_queue: /queue/dead}
backpressure: {min_concurrency: 1, max_concurrency: 4}
routes:
  first:
    inbound: {queue: /queue/in, concurrency: 2, prefetch: 4}
    adapters:
      - type: filter
        config:
          all:
            - {field: metadata.lang, operator: in, value: [en, de]}
            - {not: {field: x, operator: exists}}
      - type: split
        config: {field: items}
        condition: {field: items, operator: exists}
    outbound:
      - queue: /queue/mid
        condition:
          any: [{field: n, operator: gt, value: 1}, {field: s, operator: matches, value: "^a"}]
      - /queue/other
  second:
    inbound: {queue: /queue/mid, external: true}
    key: id
    loop: false
    adapters:
      - type: deduplicate
        config: {key: id}
      - type: set_metadata
        config: {values: {seen: true}}
    outbound: /queue/out
    error_handling: {max_retries: 4, backoff: fixed}
init_message: {route: first, payload: {items: [1, 2]}}
"""

SEEDS = [SMALL, *(p.read_text() for p in sorted(PIPELINES.glob("*.yaml")))]
SEED_DATA = [yaml.safe_load(s) for s in SEEDS]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["1.0", "/queue/x", "filter", "split", "eq", "matches", "((", "a..b", "x:Y", "", "-"]
    ),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value` (not the root)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return out
    for key, child in items:
        out.append((*prefix, key))
        out.extend(paths(child, (*prefix, key)))
    return out


def parent_of(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def check(result: CompileResult) -> None:
    """What must hold for any input: a report, known codes, positions, a plan iff valid."""
    report = result.report
    assert (result.plan is not None) == report.is_valid
    for issue in report.issues:
        assert issue.code in CODES
        assert issue.severity == ("warning" if issue.code.startswith("W") else "error")
        assert issue.location is not None
        assert issue.location.line >= 1
        assert issue.location.column >= 1
        assert issue.message
        assert issue.suggestion
    json.dumps(report.to_dict())
    assert render_report(result)
    if result.plan is not None:
        json.dumps(result.plan.to_dict(), default=str)
        assert render_plan(result.plan)
        assert render_mermaid(result.plan).startswith("flowchart")


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@FUZZ
@given(st.data())
def test_structural_mutations_only_produce_reports(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(SEED_DATA), label="seed"))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        all_paths = paths(doc)
        if not all_paths:
            break
        path = data.draw(st.sampled_from(all_paths), label="path")
        parent = parent_of(doc, path)
        key = path[-1]
        action = data.draw(st.sampled_from(["drop", "garbage", "rename", "insert", "swap"]))
        if action == "drop":
            del parent[key]
        elif action == "garbage":
            parent[key] = data.draw(garbage, label="value")
        elif action == "rename" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=10), label="new key")] = parent.pop(key)
        elif action == "insert" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=10), label="key")] = data.draw(garbage)
        elif action == "insert" and isinstance(parent, list):
            parent.insert(key, data.draw(garbage, label="item"))
        elif action == "swap":
            other = data.draw(st.sampled_from(all_paths), label="other")
            with contextlib.suppress(KeyError, IndexError, TypeError):  # moved away already
                parent[key] = copy.deepcopy(parent_of(doc, other)[other[-1]])
    check(compile_text(yaml.safe_dump(doc, sort_keys=False)))


@FUZZ
@given(st.data())
def test_line_edits_only_produce_reports(data: st.DataObject) -> None:
    lines = data.draw(st.sampled_from(SEEDS), label="seed").splitlines()
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        if not lines:
            break
        index = data.draw(st.integers(0, len(lines) - 1), label="line")
        action = data.draw(st.sampled_from(["delete", "duplicate", "insert", "indent", "cut"]))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "insert":
            noise = data.draw(st.text(alphabet=string.printable, max_size=30), label="text")
            lines.insert(index, noise)
        elif action == "indent":
            lines[index] = data.draw(st.sampled_from(["", " ", "  ", "\t"])) + lines[index]
        else:
            cut = data.draw(st.integers(0, len(lines[index])), label="cut")
            lines[index] = lines[index][:cut]
    check(compile_text("\n".join(lines) + "\n"))


yaml_tokens = st.sampled_from(
    [*":-[]{},#&*!|>'\"%@`?<= \n\t", *"abqrstuvxyz019.", "\n  ", ": ", "- ", "&a ", "*a", "<<: "]
)
yaml_like = st.lists(yaml_tokens, max_size=80).map("".join)


@FUZZ
@given(st.one_of(st.text(max_size=200), yaml_like))
def test_random_text_only_produces_reports(text: str) -> None:
    check(compile_text(text))


@FUZZ
@given(garbage)
def test_random_documents_only_produce_reports(doc: Any) -> None:
    check(compile_text(yaml.safe_dump(doc)))
    if isinstance(doc, dict):
        check(compile_text(yaml.safe_dump({"version": "1.0", "routes": doc})))


REGRESSIONS = {
    # each of these raised from compile_text before it was fixed
    "operator-is-a-list": (
        'version: "1.0"\nroutes:\n  a:\n    inbound: {queue: q}\n    outbound:\n'
        "      - {queue: x, condition: {field: a, operator: []}}\ninit_message: {route: a}\n",
        "E110",
    ),
    "complex-key": ("? [a, b]\n: 1\n", "E101"),
    "impossible-date": ('version: "1.0"\ndescription: 2024-13-01\n', "E001"),
    "tagged-int": ("version: !!int abc\n", "E001"),
    "alias-loop": ('version: "1.0"\nroutes: &a\n  x: *a\n', "E001"),
    "empty-module-in-dotted-path": (
        'version: "1.0"\nroutes:\n  a:\n    inbound: {queue: q}\n    adapters:\n'
        '      - type: ":X"\n    outbound: o\ninit_message: {route: a}\n',
        "E107",
    ),
    "relative-module-in-dotted-path": (
        'version: "1.0"\nroutes:\n  a:\n    inbound: {queue: q}\n    adapters:\n'
        '      - type: ".x:X"\n    outbound: o\ninit_message: {route: a}\n',
        "E107",
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions(name: str) -> None:
    text, code = REGRESSIONS[name]
    result = compile_text(text)
    check(result)
    assert code in [i.code for i in result.report.issues]

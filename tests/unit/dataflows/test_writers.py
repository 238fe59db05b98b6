"""Writers as outbounds (`sink: {type, config}`): compiled like adapters, run as Bytewax
sinks, durable and idempotent by message id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factflow.compiler.compile import compile_text
from factflow.exceptions import ConfigurationError
from factflow.storage import open_storage
from factflow.testing import run_pipeline
from factflow.writers.base import WriterContext
from factflow.writers.builtin import JsonLinesStorageWriter

PIPELINE = """
version: "1.0"
queue: {provider: memory}
routes:
  split:
    inbound: {queue: docs.in}
    adapters:
      - type: split
        config: {field: paragraphs, into: text}
    outbound:
      - sink: {type: jsonl_storage, config: {name: paragraphs}}
      - queue: short
        condition: {field: text, operator: eq, value: "b"}
"""


def _objects(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.jsonl"))


def test_a_sink_outbound_writes_batches_to_storage_idempotently(tmp_path: Path) -> None:
    docs = [{"paragraphs": ["a", "b"]}, {"paragraphs": ["c"]}]
    for _ in range(2):  # the second run writes the same batches: same keys, no copies
        with open_storage(f"file://{tmp_path}") as storage:
            result = run_pipeline(PIPELINE, {"docs.in": docs}, storage=storage)
    assert [p["text"] for p in result.payloads("short")] == ["b"]
    objects = _objects(tmp_path / "executions")
    assert objects, "the writer stored nothing"
    assert all(p.parent.name == "paragraphs" for p in objects)
    lines = [json.loads(line) for p in objects for line in p.read_text().splitlines()]
    assert sorted(m["payload"]["text"] for m in lines) == ["a", "b", "c"]


def test_the_plan_lists_the_writer_and_no_queue_for_it() -> None:
    plan = compile_text(PIPELINE).require_plan()
    route = plan.route("split")
    assert [(w.type, w.config) for w in route.writers] == [
        ("jsonl_storage", {"name": "paragraphs"})
    ]
    assert [o.queue for o in route.outbound] == ["short"]
    assert route.writers[0].step_id == "split__0_sink_jsonl_storage"


def test_a_writer_config_is_checked_against_its_schema() -> None:
    report = compile_text(PIPELINE.replace("{name: paragraphs}", "{nmae: x}")).report
    assert [(i.code, i.path) for i in report.issues if i.severity == "error"] == [
        ("E301", ("routes", "split", "outbound", 0, "sink", "config", "nmae"))
    ]
    assert any("did you mean 'name'" in i.suggestion for i in report.issues)


def test_queue_and_sink_together_are_refused() -> None:
    text = PIPELINE.replace(
        "- sink: {type: jsonl_storage", "- queue: q\n        sink: {type: jsonl_storage"
    )
    report = compile_text(text).report
    assert not report.is_valid
    assert any("either a `queue` or a `sink" in i.message for i in report.issues)


def test_the_storage_writer_needs_storage() -> None:
    context = WriterContext(execution_id="e", route_id="r", step_id="s")
    with pytest.raises(ConfigurationError, match="needs stage storage"):
        JsonLinesStorageWriter({}, context)

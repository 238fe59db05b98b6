"""Messages entering a route part-way (`dataflows.entries`, what a restart from lineage
and storage feeds): in-process with real Bytewax on the memory provider."""

from __future__ import annotations

import json
from pathlib import Path

from bytewax.testing import run_main

from factflow.connectors.memory import MemoryQueues
from factflow.dataflows.build import FlowOptions, build_dataflow
from factflow.dataflows.entries import ENTER_AFTER, mark_entry
from factflow.testing import compile_plan

PIPELINE = """\
version: "1.0"
name: t
queue: {provider: memory}
routes:
  r:
    inbound: {queue: in}
    adapters:
      - {type: set_metadata, name: a, config: {values: {a: true}}}
      - {type: set_metadata, name: b, config: {values: {b: true}}}
      - {type: set_metadata, name: c, config: {values: {c: true}}}
    outbound: mid
  s:
    inbound: {queue: mid}
    adapters:
      - {type: set_metadata, name: d, config: {values: {d: true}}}
    outbound: out
"""


def _write(path: Path, envelopes: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in envelopes))
    return str(path)


def test_entries_skip_the_steps_up_to_their_mark_and_lose_it(tmp_path: Path) -> None:
    plan = compile_plan(PIPELINE)
    entries = {
        "r": _write(
            tmp_path / "r.jsonl",
            [
                mark_entry({"message_id": "start", "payload": {"n": 0}}, -1),
                mark_entry({"message_id": "after-a", "payload": {"n": 1}}, 0),
                mark_entry({"message_id": "after-c", "payload": {"n": 2}}, 2),
            ],
        ),
        "s": _write(
            tmp_path / "s.jsonl", [mark_entry({"message_id": "after-d", "payload": {"n": 3}}, 0)]
        ),
    }
    inputs = {"in": _write(tmp_path / "in.jsonl", [{"payload": {"n": 4}}])}
    MemoryQueues.clear()
    options = FlowOptions(
        execution_id="e", queue_override=plan.queue, inputs=inputs, entries=entries
    )
    run_main(build_dataflow(plan, options))
    out = {r["payload"]["n"]: r["metadata"] for r in MemoryQueues.read("out")}
    steps = {n: sorted(k for k in meta if k in "abcd") for n, meta in out.items()}
    assert steps == {
        0: ["a", "b", "c", "d"],
        1: ["b", "c", "d"],
        2: ["d"],
        3: [],
        4: ["a", "b", "c", "d"],  # the queue's own messages run every step, as before
    }
    assert not any(ENTER_AFTER in meta for meta in out.values())

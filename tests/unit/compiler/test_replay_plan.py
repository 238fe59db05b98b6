"""The replay plan transform: a route entered after a stage, only what it reaches."""

from __future__ import annotations

import textwrap

import pytest

from factflow.compiler.compile import compile_text
from factflow.compiler.plan import Plan
from factflow.compiler.plan_codec import plan_from_json, plan_to_json
from factflow.compiler.replay import ENTRY_START, downstream_routes, entered_at, stage_index
from factflow.exceptions import ConfigurationError

PIPELINE = """
version: "1.0"
queue: {provider: file, path: /tmp/q}
routes:
  ingest:
    inbound: {queue: docs.in}
    adapters:
      - {type: set_metadata, name: tag, config: {values: {a: 1}}}
      - {type: split, name: explode, config: {field: items}}
      - {type: passthrough, name: last}
    outbound: parts
  side:
    inbound: {queue: other.in}
    adapters: [{type: passthrough}]
    outbound: parts
  finish:
    inbound: {queue: parts}
    adapters: [{type: passthrough, name: stamp}]
    outbound: done
init_message: {route: ingest, payload: {items: [1]}}
"""


def plan() -> Plan:
    result = compile_text(textwrap.dedent(PIPELINE).lstrip("\n"))
    assert result.plan is not None, [i.to_dict() for i in result.report.errors]
    return result.plan


def test_entered_after_a_stage_keeps_later_steps_with_their_ids() -> None:
    full = plan()
    after = stage_index(full.route("ingest"), "tag")
    cut = entered_at(full, "ingest", after)
    assert [r.id for r in cut.routes] == ["ingest", "finish"]
    ingest = cut.route("ingest")
    assert [s.stage for s in ingest.adapters] == ["explode", "last"]
    original = full.route("ingest").adapters[1:]
    assert [s.step_id for s in ingest.adapters] == [s.step_id for s in original]
    assert [s.index for s in ingest.adapters] == [1, 2]
    assert cut.init_message is None
    assert {s.queue for s in cut.sources} == set()  # docs.in is fed by the caller now
    assert {(e.from_route, e.to_route) for e in cut.edges} == {("ingest", "finish")}
    assert {d.route for d in cut.dead_letters} == {"ingest", "finish"}
    assert plan_from_json(plan_to_json(cut)) == cut  # the workers read it as plan.json


def test_entered_at_the_start_and_after_the_last_stage() -> None:
    full = plan()
    whole = entered_at(full, "finish", ENTRY_START)
    assert [r.id for r in whole.routes] == ["finish"]
    assert [s.stage for s in whole.route("finish").adapters] == ["stamp"]
    empty = entered_at(full, "ingest", stage_index(full.route("ingest"), "last"))
    assert empty.route("ingest").adapters == ()
    assert downstream_routes(full, "side") == ["side", "finish"]


def test_unknown_stage_and_index() -> None:
    full = plan()
    with pytest.raises(ConfigurationError, match="its stages: tag, explode, last"):
        stage_index(full.route("ingest"), "nope")
    with pytest.raises(ConfigurationError, match="no adapter 7"):
        entered_at(full, "ingest", 7)

"""Helpers to test adapters and pipelines in-process, in the spirit of `bytewax.testing`.

    from factflow.testing import run_pipeline
    result = run_pipeline("pipelines/text.yaml", inputs={"docs.in": [{"paragraphs": ["a"]}]})
    assert result.payloads("paragraphs.all") == [...]

Pipelines run on the `memory` provider whatever their YAML says, with stage storage off
unless given, on one worker (`bytewax.testing.run_main`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bytewax.testing import run_main

from factflow.adapters.base import Adapter, Context
from factflow.adapters.registry import AdapterRegistry, default_registry
from factflow.compiler.compile import compile_file, compile_text
from factflow.compiler.plan import Plan
from factflow.connectors.memory import MemoryQueues
from factflow.dataflows.build import FlowOptions, build_dataflow
from factflow.messages import Message

TEST_EXECUTION_ID = "test-execution"


@dataclass
class PipelineResult:
    """What the run wrote: every queue's records (envelopes, or dead-letter records)."""

    plan: Plan
    queues: dict[str, list[dict[str, Any]]]

    def messages(self, queue: str) -> list[Message]:
        return [Message.from_envelope(r) for r in self.queues.get(queue, [])]

    def payloads(self, queue: str) -> list[Any]:
        return [r.get("payload") for r in self.queues.get(queue, [])]

    def dead_letters(self, route_id: str) -> list[dict[str, Any]]:
        return self.queues.get(self.plan.route(route_id).dead_letter_queue, [])


def compile_plan(pipeline: str | Path, registry: AdapterRegistry | None = None) -> Plan:
    """A plan from a file path or YAML text; invalid pipelines raise ConfigurationError."""
    text = str(pipeline)
    result = compile_text(text, registry) if "\n" in text else compile_file(pipeline, registry)
    return result.require_plan()


def run_pipeline(
    pipeline: str | Path | Plan,
    inputs: dict[str, list[Any]] | None = None,
    *,
    registry: AdapterRegistry | None = None,
    storage: Any = None,
) -> PipelineResult:
    """Run a pipeline to completion on in-memory queues; `inputs` are payloads or envelopes."""
    registry = registry or default_registry()
    plan = pipeline if isinstance(pipeline, Plan) else compile_plan(pipeline, registry)
    MemoryQueues.clear()
    for queue, records in (inputs or {}).items():
        MemoryQueues.put(queue, list(records))
    memory = replace(plan.queue, provider="memory")
    options = FlowOptions(
        execution_id=TEST_EXECUTION_ID,
        storage=storage,
        queue_override=memory,
        extra_sources=tuple(inputs or ()),
    )
    run_main(build_dataflow(plan, options, registry))  # type: ignore[no-untyped-call]
    queues = {q: MemoryQueues.read(q) for q in _written_queues(plan)}
    return PipelineResult(plan, queues)


def _written_queues(plan: Plan) -> set[str]:
    return {s.queue for s in plan.sinks} | {d.queue for d in plan.dead_letters}


def call_adapter(adapter: Adapter, message: Message | Any) -> list[Message]:
    """Call one adapter on one message (or payload), sync or async, outside any dataflow."""
    if not isinstance(message, Message):
        message = Message(payload=message)
    result = adapter.process(message, Context(execution_id=TEST_EXECUTION_ID, route_id="test"))
    if inspect.isawaitable(result):
        return list(asyncio.run(_awaited(result)))
    return list(result)


async def _awaited(result: Awaitable[list[Message]]) -> list[Message]:
    return await result

"""The Context the runtime gives an adapter: stage, worker index, storage, LLM client,
logger and metrics, in a real Bytewax run (two worker threads, `cluster_main`).

The LLM provider is the local OpenAI-compatible server of tests/unit/llm/conftest.py, a
declared test double: no LLM provider is reachable from this machine.
"""

from __future__ import annotations

from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main

from factflow.connectors.memory import MemoryQueues
from factflow.dataflows.build import FlowOptions, build_dataflow
from factflow.dataflows.progress import progress
from factflow.dataflows.workers import add_worker_probe, current_worker_index
from factflow.llm import LLMConfig, LLMLimits
from factflow.storage import open_storage
from factflow.testing import compile_plan
from tests.unit.llm.conftest import COMPLETION_TOKENS, PROMPT_TOKENS, FakeProvider

pytest_plugins = ["tests.unit.llm.conftest"]

PIPELINE = """\
version: "1.0"
name: ctx
queue: {provider: memory}
routes:
  ask:
    inbound: {queue: questions}
    adapters:
      - type: tests.unit.dataflows.context_adapters:AskLLM
    outbound: answers
"""


def test_adapters_get_a_typed_context_with_a_working_llm_client(
    provider: FakeProvider, tmp_path: Path
) -> None:
    plan = compile_plan(PIPELINE)
    stage = plan.route("ask").adapters[0].stage
    provider.queue(429, 500)  # two of the first calls fail once each and are retried
    MemoryQueues.clear()
    MemoryQueues.put("questions", [{"q": f"question {n}"} for n in range(8)])
    before = progress().snapshot().get(f"adapter:ask:{stage}:llm_tokens", 0)
    options = FlowOptions(
        execution_id="exec-ctx",
        storage=open_storage(f"file://{tmp_path}"),
        source_partitions=2,
        llm=LLMConfig(
            model="openai/factflow-test-model",
            api_base=provider.url,
            api_key="sk-test",
            limits=LLMLimits(backoff_seconds=0.01),
        ),
    )
    flow = build_dataflow(plan, options)
    cluster_main(flow, [], 0, worker_count_per_proc=2)  # type: ignore[no-untyped-call]

    answers = [r["payload"] for r in MemoryQueues.read("answers")]
    assert sorted(a["q"] for a in answers) == [f"question {n}" for n in range(8)]
    assert {a["answer"] for a in answers} == {"an answer"}
    assert sum(a["attempts"] for a in answers) == len(provider.requests) == 10
    assert {a["worker"] for a in answers} <= {0, 1}  # which worker read what varies
    for a in answers:
        assert (a["stage"], a["route"], a["execution"]) == (stage, "ask", "exec-ctx")
        assert a["storage"] is True
        assert a["embeddings"] is False  # no embedding model configured
        assert a["logger"] == f"factflow.adapter.ask.{stage}"
    tokens = progress().snapshot()[f"adapter:ask:{stage}:llm_tokens"] - before
    assert tokens == 8 * (PROMPT_TOKENS + COMPLETION_TOKENS)


def test_each_worker_thread_knows_its_index() -> None:
    flow = Dataflow("probe")
    add_worker_probe(flow)
    items = op.redistribute("spread", op.input("in", flow, TestingSource(list(range(60)))))
    seen: list[int] = []
    op.inspect("see", items, lambda _step, _item: seen.append(current_worker_index()))
    cluster_main(flow, [], 0, worker_count_per_proc=3)  # type: ignore[no-untyped-call]
    assert len(seen) == 60
    assert set(seen) == {0, 1, 2}
    assert current_worker_index() == 0  # outside a dataflow

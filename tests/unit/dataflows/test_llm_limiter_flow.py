"""The LLM client's adaptive limiter (factflow/llm/limiter.py) inside a running flow: the
worker's one client bounds the calls of a route that would run more at once, a 429 halves
the bound while calls are in flight, so the retried and the waiting calls are held until
calls end, and successes raise it back to its maximum.

The provider is the local OpenAI-compatible server (tests/llm_provider.py), a declared
test double that records when each request arrived and how many were in flight.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bytewax.testing import cluster_main

from factflow.connectors.memory import MemoryQueues
from factflow.dataflows.build import FlowOptions, build_dataflow
from factflow.llm import LiteLLMClient, LLMConfig, LLMLimits
from factflow.storage import open_storage
from factflow.testing import compile_plan
from tests.unit.dataflows.context_adapters import AskLLMNoting
from tests.unit.llm.conftest import FakeProvider

pytest_plugins = ["tests.unit.llm.conftest"]

MAX, FLOOR, MESSAGES = 8, 2, 32
LATENCY, STALL = 0.3, 0.4
PIPELINE = """\
version: "1.0"
name: limiter
queue: {provider: memory}
routes:
  ask:
    inbound: {queue: questions, concurrency: 16}
    backpressure: {max_concurrency: 16, target_latency_ms: 60000}
    adapters:
      - type: tests.unit.dataflows.context_adapters:AskLLMNoting
    outbound: answers
"""


def test_the_llm_limiter_halves_on_429s_and_grows_back_inside_a_flow(
    provider: FakeProvider, tmp_path: Path
) -> None:
    # every answer takes LATENCY seconds; of the first wave (MAX calls at most, where the
    # route would run 16), three are refused with 429 and five take STALL more: the limit
    # goes 8 -> 4 -> 2 (the floor) with five calls in flight, so nothing more may start
    # until one of those ends, LATENCY + STALL after it started
    llm = LLMConfig(
        model="openai/factflow-test-model",
        api_base=provider.url,
        api_key="sk-test",
        limits=LLMLimits(max_concurrency=MAX, floor=FLOOR, backoff_seconds=0.01),
    )
    # litellm's first 429 costs it most of a second (imports on its error path): paid
    # here, outside the timed flow
    provider.queue(429)
    asyncio.run(LiteLLMClient(llm).complete([{"role": "user", "content": "warm-up"}]))
    provider.arrivals.clear()
    provider.latency = LATENCY
    provider.queue(429, 429, 429, *[STALL] * (MAX - 3))
    AskLLMNoting.limits.clear()
    MemoryQueues.clear()
    MemoryQueues.put("questions", list(range(MESSAGES)))
    options = FlowOptions(
        execution_id="exec-limiter",
        storage=open_storage(f"file://{tmp_path}"),
        source_partitions=1,
        llm=llm,
    )
    flow = build_dataflow(compile_plan(PIPELINE), options)
    cluster_main(flow, [], 0, worker_count_per_proc=1)  # type: ignore[no-untyped-call]

    answers = [r["payload"] for r in MemoryQueues.read("answers")]
    assert sorted(a["n"] for a in answers) == list(range(MESSAGES))
    assert sorted(a["attempts"] for a in answers)[-3:] == [2, 2, 2]  # the three refused
    arrivals = provider.arrivals
    assert len(arrivals) == MESSAGES + 3
    t0 = arrivals[0][0]
    print("\narrivals (s, in flight):", [(round(t - t0, 3), n) for t, n in arrivals])
    # never more calls at once than the limiter's maximum
    assert max(n for _, n in arrivals) <= MAX, arrivals
    # the limiter's MAX slots went to the first MAX calls: the next call could start only
    # once a slot was free and the limit allowed it. Answers go in arrival order, so the
    # 4th arrival is the first stalled call: with the halving nothing more starts before
    # it ends; without, the three retries come LATENCY + 10 ms after their 429s
    first_stalled_end = arrivals[3][0] + LATENCY + STALL
    held = arrivals[MAX][0] - first_stalled_end
    assert held >= -0.01, f"call {MAX + 1} came {-held:.3f}s before a stalled call ended"
    # each success raised the limit by one: lowered, then back at the maximum by the end
    assert min(AskLLMNoting.limits) < MAX
    assert AskLLMNoting.limits[-1] == MAX

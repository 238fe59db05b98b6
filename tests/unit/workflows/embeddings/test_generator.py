"""embedding_generator: what is embedded, batching across messages in flight, config
checks at compile time, and the litellm backend against a local OpenAI-compatible server
(tests/unit/llm/conftest.py: a declared test double; everything else is real)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from factflow.adapters.base import Context
from factflow.compiler.compile import compile_text
from factflow.llm import LiteLLMClient, LLMConfig, LLMLimits
from factflow.messages import Message
from factflow.workflows.embeddings.batcher import Coalescer
from factflow.workflows.embeddings.errors import EmbeddingError
from factflow.workflows.embeddings.generator import EmbeddingGeneratorAdapter, embedding_text
from tests.llm_provider import PROMPT_TOKENS
from tests.unit.llm.conftest import FakeProvider


def test_title_and_headings_are_embedded_above_the_text() -> None:
    payload = {"text": "Body.", "title": "Page", "heading_path": ["Page", "Part", "Sub"]}
    assert embedding_text(payload, "text", include_title=True, include_headings=True) == (
        "Page\nPart > Sub\nBody."
    )
    assert embedding_text(payload, "text", include_title=False, include_headings=False) == "Body."
    with pytest.raises(EmbeddingError, match="no text in 'text'"):
        embedding_text({"text": " "}, "text", include_title=True, include_headings=True)


def test_calls_in_flight_together_become_batched_model_calls() -> None:
    seen: list[int] = []

    async def model(texts: Sequence[str]) -> list[list[float]]:
        seen.append(len(texts))
        return [[float(len(t))] for t in texts]

    async def run() -> list[list[float]]:
        coalescer = Coalescer(model, max_batch=8)
        return await asyncio.gather(*(coalescer.embed("x" * i) for i in range(20)))

    vectors = asyncio.run(run())
    assert vectors == [[float(i)] for i in range(20)]
    assert seen == [8, 8, 4]


def test_a_failed_model_call_fails_every_text_in_it() -> None:
    async def model(texts: Sequence[str]) -> list[list[float]]:
        msg = "model down"
        raise RuntimeError(msg)

    async def run() -> list[Any]:
        coalescer = Coalescer(model, max_batch=4)
        return await asyncio.gather(
            *(coalescer.embed(str(i)) for i in range(3)), return_exceptions=True
        )

    results = asyncio.run(run())
    assert [str(r) for r in results] == ["model down"] * 3


PIPELINE = """
version: "1.0"
routes:
  embed:
    inbound: {queue: segments}
    adapters:
      - type: embedding_generator
        config: CONFIG
    outbound: out
init_message: {route: embed, payload: {text: x}}
"""


def _codes(config: str) -> list[tuple[str, str]]:
    report = compile_text(PIPELINE.replace("CONFIG", config)).report
    return [(i.code, ".".join(map(str, i.path))) for i in report.issues]


def test_config_problems_are_compile_errors() -> None:
    assert _codes("{}") == []
    assert _codes("{slots: [{name: a}, {name: b, model: all-MiniLM-L6-v2}]}") == []
    unknown = _codes("{slots: [{model: no-such-model}]}")
    assert unknown == [("E303", "routes.embed.adapters.0.config.slots.0.model")]
    assert _codes("{slots: [{name: a}, {name: a}]}")[0][0] == "E303"
    assert _codes("{slots: [{name: Bad-Name}]}")[0][0] == "E303"
    assert _codes("{batch: 3}")[0][0] == "E301"


def test_litellm_slot_embeds_through_the_context_client(provider: FakeProvider) -> None:
    model = "openai/text-embedding-test"
    config = LLMConfig(embedding_model=model, api_base=provider.url, api_key="k")
    client = LiteLLMClient(config)
    context = Context(execution_id="e", route_id="r", embeddings=client)
    adapter = EmbeddingGeneratorAdapter(
        {"slots": [{"name": "remote", "backend": "litellm", "model": model}], "batch_size": 10}
    )
    messages = [Message(payload={"text": "t" * i}) for i in range(1, 4)]

    async def run() -> list[list[Message]]:
        return await asyncio.gather(*(adapter.process(m, context) for m in messages))

    outputs = [out[0] for out in asyncio.run(run())]
    slots = [o.payload["embeddings"]["remote"] for o in outputs]
    assert [s["vector"] for s in slots] == [[1.0, 0.5], [2.0, 0.5], [3.0, 0.5]]
    assert {(s["model"], s["backend"], s["dimensions"]) for s in slots} == {(model, "litellm", 2)}
    assert len(provider.requests) == 1  # one batched request for the three messages
    assert provider.requests[0][1]["input"] == ["t", "tt", "ttt"]
    # the call's usage as the provider reported it, for the execution's accounting
    (call,) = context.usage
    assert (call.kind, call.provider, call.model) == ("embedding", "openai", model)
    assert (call.prompt_tokens, call.completion_tokens) == (PROMPT_TOKENS, 0)
    assert call.latency_ms > 0


def test_litellm_slot_refuses_a_client_bound_to_another_model(provider: FakeProvider) -> None:
    config = LLMConfig(
        embedding_model="openai/other", api_base=provider.url, api_key="k", limits=LLMLimits()
    )
    context = Context(execution_id="e", route_id="r", embeddings=LiteLLMClient(config))
    adapter = EmbeddingGeneratorAdapter(
        {"slots": [{"backend": "litellm", "model": "openai/text-embedding-test"}]}
    )
    with pytest.raises(EmbeddingError, match="FACTFLOW_EMBEDDING_MODEL=openai/text-embedding"):
        asyncio.run(adapter.process(Message(payload={"text": "x"}), context))


def test_litellm_slot_without_a_client_says_what_to_set() -> None:
    adapter = EmbeddingGeneratorAdapter({"slots": [{"backend": "litellm", "model": "openai/m"}]})
    context = Context(execution_id="e", route_id="r")
    with pytest.raises(EmbeddingError, match="set FACTFLOW_EMBEDDING_MODEL=openai/m"):
        asyncio.run(adapter.process(Message(payload={"text": "x"}), context))

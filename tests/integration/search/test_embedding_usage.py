"""Embedding usage: query embeddings of search (the local model and litellm) and the
pipeline's embeddings (against the execution, shown in its stats) become `llm_usage` rows
in a real Postgres. The litellm provider is the local OpenAI-compatible server of
tests/llm_provider.py (a declared test double: no provider is reachable here)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.adapters.base import Context, ModelCall
from factflow.dataflows.usage import DbUsageLog
from factflow.db.connection import connect
from factflow.db.repositories import executions as executions_repo
from factflow.db.repositories.search_index import Slot
from factflow.db.repositories.usage import usage_groups
from factflow.messages import Message
from factflow.search import QueryEmbedder, SearchOptions, SearchService
from factflow.workflows.embeddings import EmbeddingGeneratorAdapter
from factflow.workflows.embeddings.backends import load_local, local_model
from tests.integration.search.conftest import make_client
from tests.llm_provider import PROMPT_TOKENS, FakeProvider, serve_provider


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with serve_provider() as fake:
        yield fake


def _tokens(texts: list[str]) -> int:
    instance, _ = load_local(local_model("all-MiniLM-L6-v2"))
    return int(sum(len(ids) for ids in instance.tokenizer(texts)["input_ids"]))


def test_a_local_query_embedding_is_recorded_with_its_tokens_and_no_cost(
    seeded_db: str, minilm: str
) -> None:
    query = "how do I configure retries for a route"
    with connect(seeded_db) as conn:
        SearchService(QueryEmbedder()).semantic(conn, SearchOptions(query=query))
        rows = conn.execute(
            "SELECT kind, purpose, provider, model, prompt_tokens, completion_tokens, cost_usd,"
            " latency_ms, execution_id FROM llm_usage WHERE purpose = 'query'"
        ).fetchall()
    assert len(rows) == 1
    kind, purpose, provider, model, prompt, completion, cost, latency, execution = rows[0]
    assert (kind, purpose, provider, model) == ("embedding", "query", "local", minilm)
    assert prompt == _tokens([query]) > 0  # the model's own tokenizer: [CLS] ... [SEP]
    assert (completion, cost, execution) == (0, 0.0, None)
    assert latency > 0


def test_a_litellm_query_embedding_records_the_usage_the_provider_reports(
    provider: FakeProvider,
) -> None:
    slot = Slot(name="remote", model="openai/text-embedding-test", backend="litellm", dimensions=2)
    embedder = QueryEmbedder(api_base=provider.url, api_key="k")
    vectors, usage = embedder.embed(slot, ["abc"])
    assert vectors == [[3.0, 0.5]]
    assert (usage.kind, usage.purpose, usage.provider, usage.model) == (
        "embedding",
        "query",
        "openai",
        "openai/text-embedding-test",
    )
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, 0)
    assert usage.cost_usd is None  # litellm's price table has no such model


def test_pipeline_embeddings_are_recorded_against_the_execution_and_in_its_stats(
    index_db: str, minilm: str, tmp_path: Path
) -> None:
    with connect(index_db) as conn:
        execution = executions_repo.create_execution(
            conn, pipeline_name="embed", config_snapshot={}
        ).id
    adapter = EmbeddingGeneratorAdapter({"batch_size": 8})
    usage = DbUsageLog(index_db, execution)
    context = Context(execution_id=str(execution), route_id="embed", usage=usage)
    texts = [f"segment number {i} about retries" for i in range(5)]

    async def run() -> None:
        await asyncio.gather(
            *(adapter.process(Message(payload={"text": t}), context) for t in texts)
        )

    asyncio.run(run())
    usage.close()
    with connect(index_db) as conn:
        (group,) = usage_groups(conn, ["provider", "model"], execution_id=execution)
    assert group.key == {"provider": "local", "model": minilm}
    assert group.calls == 1  # the five texts were one batched model call
    assert group.prompt_tokens == _tokens(texts)
    assert (group.completion_tokens, group.cost_usd, group.unpriced_calls) == (0, 0.0, 0)

    with make_client(index_db, tmp_path) as client:
        stats = client.get(f"/api/v1/executions/{execution}/stats")
        assert stats.status_code == 200, stats.text
        embedding = stats.json()["usage"]["embedding"]
        assert (embedding["calls"], embedding["prompt_tokens"]) == (1, _tokens(texts))
        other = client.get(f"/api/v1/executions/{uuid.uuid4()}/stats")
        assert other.status_code == 404


def test_an_unreachable_database_loses_the_row_but_not_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = DbUsageLog("postgresql://nobody@127.0.0.1:1/none", uuid.uuid4())
    with caplog.at_level(logging.WARNING, logger="factflow.dataflows.usage"):
        log.record(ModelCall(kind="embedding", provider="local", model="m", prompt_tokens=3))
    assert "usage of a m call not recorded" in caplog.text

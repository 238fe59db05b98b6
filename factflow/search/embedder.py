"""Query vectors: a query is embedded with the model its slot is bound to, by the same
backend the pipeline used (the local model loaded once per process, or litellm), and what
the call used (tokens, cost, latency) is returned for the `llm_usage` table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from factflow.db.repositories.search_index import Slot
from factflow.db.repositories.usage import UsageRecord
from factflow.exceptions import ConfigurationError
from factflow.llm import Embeddings, LiteLLMClient, LLMConfig, LLMError
from factflow.search.exceptions import SearchUnavailableError
from factflow.workflows.embeddings.backends import (
    default_batch_size,
    embedding_call,
    encode_local,
    local_model,
)

FEW_TEXTS = 8
"""Up to this many texts (a query) are encoded on one torch thread."""


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the block. A query is one short text: more threads
    only contend for the cores (on 2 busy cores, measured: 420 ms p50 with 2 threads, 50 ms
    with 1). The setting is the process's; the server encodes nothing else at the time but
    other queries, which want the same."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class QueryEmbedder:
    """Embeds texts for a slot. `api_base` / `api_key` are the litellm provider's
    (`FACTFLOW_LLM_API_BASE`, `FACTFLOW_LLM_API_KEY`; else the provider's own variable)."""

    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def embed(self, slot: Slot, texts: list[str]) -> tuple[list[list[float]], UsageRecord]:
        """The vectors of `texts` and the call's usage (purpose `query`, no thread)."""
        started = time.perf_counter()
        try:
            if slot.backend == "local":
                model = local_model(slot.model)
                if len(texts) <= FEW_TEXTS:
                    with _one_thread():
                        result = encode_local(model, texts, default_batch_size())
                else:
                    result = encode_local(model, texts, default_batch_size())
            else:
                result = asyncio.run(self._litellm(slot, texts))
        except (ConfigurationError, LLMError, ImportError, OSError) as exc:
            msg = f"the model of slot {slot.name!r} ({slot.model}) is not available: {exc}"
            raise SearchUnavailableError(msg) from exc
        vectors = result.vectors
        if any(len(v) != slot.dimensions for v in vectors):
            msg = f"{slot.model} returned vectors that are not {slot.dimensions} long"
            raise SearchUnavailableError(msg)
        call = embedding_call(result, local=slot.backend == "local", started=started)
        # the slot's model as bound: providers answer with names of their own (no prefix)
        record = UsageRecord(
            kind="embedding",
            purpose="query",
            provider=call.provider,
            model=slot.model,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=0,
            cost_usd=call.cost_usd,
            latency_ms=call.latency_ms,
        )
        return vectors, record

    async def _litellm(self, slot: Slot, texts: list[str]) -> Embeddings:
        # a client per call: its limiter belongs to the event loop that runs the call
        config = LLMConfig(embedding_model=slot.model, api_base=self.api_base, api_key=self.api_key)
        return await LiteLLMClient(config).embed(texts)

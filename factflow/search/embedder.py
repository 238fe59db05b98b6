"""Query vectors: a query is embedded with the model its slot is bound to, by the same
backend the pipeline used (the local model loaded once per process, or litellm)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from factflow.db.repositories.search_index import Slot
from factflow.exceptions import ConfigurationError
from factflow.llm import LiteLLMClient, LLMConfig, LLMError
from factflow.search.exceptions import SearchUnavailableError
from factflow.workflows.embeddings.backends import default_batch_size, encode_local, local_model

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

    def embed(self, slot: Slot, texts: list[str]) -> list[list[float]]:
        try:
            if slot.backend == "local":
                model = local_model(slot.model)
                if len(texts) <= FEW_TEXTS:
                    with _one_thread():
                        vectors = encode_local(model, texts, default_batch_size())
                else:
                    vectors = encode_local(model, texts, default_batch_size())
            else:
                vectors = asyncio.run(self._litellm(slot, texts))
        except (ConfigurationError, LLMError, ImportError, OSError) as exc:
            msg = f"the model of slot {slot.name!r} ({slot.model}) is not available: {exc}"
            raise SearchUnavailableError(msg) from exc
        if any(len(v) != slot.dimensions for v in vectors):
            msg = f"{slot.model} returned vectors that are not {slot.dimensions} long"
            raise SearchUnavailableError(msg)
        return vectors

    async def _litellm(self, slot: Slot, texts: list[str]) -> list[list[float]]:
        # a client per call: its limiter belongs to the event loop that runs the call
        config = LLMConfig(embedding_model=slot.model, api_base=self.api_base, api_key=self.api_key)
        result = await LiteLLMClient(config).embed(texts)
        return result.vectors

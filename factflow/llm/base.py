"""What adapters program against: the client protocols and the result of one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from factflow.exceptions import FactflowError

ChatMessage = Mapping[str, Any]
"""One chat message in the OpenAI shape: `{"role": "user", "content": "..."}`."""


class LLMError(FactflowError):
    """An LLM call failed for good: not retryable, or still failing after the last attempt.

    Raised from an adapter it is retried and dead-lettered like any adapter failure; the
    cause is chained. `attempts` is how many calls were made.
    """

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class Usage:
    """What one call consumed, as the provider reported it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    """None when litellm has no price for the model (self-hosted and unknown models)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    """The answer of one chat completion."""

    text: str
    model: str
    usage: Usage
    attempts: int
    """Calls made, the successful one included (1 when nothing was retried)."""
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One vector per input text, in input order."""

    vectors: list[list[float]]
    model: str
    usage: Usage
    attempts: int


class LLMClient(Protocol):
    """A chat model. Calls are async, retried and rate limited inside the client; one that
    still fails raises `LLMError`. Safe to call concurrently from one event loop."""

    async def complete(self, messages: Sequence[ChatMessage], **options: Any) -> Completion:
        """One completion of `messages`; `options` go to the provider (`temperature`,
        `max_tokens`, `response_format`, ...)."""
        ...


class EmbeddingClient(Protocol):
    """An embedding model, with the same retry and limit contract as `LLMClient`."""

    async def embed(self, texts: Sequence[str], **options: Any) -> Embeddings:
        """One vector per text, in order; `options` go to the provider (`dimensions`)."""
        ...

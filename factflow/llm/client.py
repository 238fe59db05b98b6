"""`LiteLLMClient`: chat completions and embeddings through litellm, with the seed
system's limits (SEED-SYSTEM 6.13).

Each call holds a slot of the `AdaptiveLimiter` and is tried up to `max_attempts` times:
- a 429 halves the limiter (the provider asked for fewer calls at once) and is retried;
- a 5xx, a timeout or a lost connection is retried with the limit left alone;
- anything else (400, 401, a model that does not exist) fails at once.
Retries wait a jittered, doubling delay outside the slot, so a waiting call never blocks
another. The provider SDK's own retries are off: every attempt is counted here.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from factflow.exceptions import ConfigurationError
from factflow.extras import LLM
from factflow.llm.base import ChatMessage, Completion, Embeddings, LLMError, Usage
from factflow.llm.limiter import FLOOR, MAX_CONCURRENCY, AdaptiveLimiter
from factflow.settings import Settings

MAX_ATTEMPTS = 7

_RATE_LIMITED, _TRANSIENT = "rate_limited", "transient"


@dataclass(frozen=True, slots=True)
class LLMLimits:
    max_attempts: int = MAX_ATTEMPTS
    max_concurrency: int = MAX_CONCURRENCY
    floor: int = FLOOR
    backoff_seconds: float = 0.5
    """The first retry waits up to this long (full jitter); each further one doubles it."""
    max_backoff_seconds: float = 30.0
    timeout_seconds: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # jitter: calls retried together spread out


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Which models a worker's client calls, and where."""

    model: str | None = None
    embedding_model: str | None = None
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    limits: LLMLimits = field(default_factory=LLMLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig | None:
        """`FACTFLOW_LLM_MODEL`, `FACTFLOW_EMBEDDING_MODEL`, `FACTFLOW_LLM_API_BASE`,
        `FACTFLOW_LLM_API_KEY`; None when no model is set (adapters then get no client)."""
        if settings.llm_model is None and settings.embedding_model is None:
            return None
        key = settings.llm_api_key
        return cls(
            model=settings.llm_model,
            embedding_model=settings.embedding_model,
            api_base=settings.llm_api_base,
            api_key=key.get_secret_value() if key is not None else None,
        )


class LiteLLMClient:
    """Both `LLMClient` and `EmbeddingClient`. Making one does nothing (litellm is imported
    on the first call); use one per event loop, since its limiter belongs to that loop."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        limits = config.limits
        self.limiter = AdaptiveLimiter(limits.max_concurrency, limits.floor)

    async def complete(self, messages: Sequence[ChatMessage], **options: Any) -> Completion:
        model = self._model(self.config.model, "FACTFLOW_LLM_MODEL")
        litellm = _litellm()
        arguments = {**self._arguments(), **options, "model": model, "messages": list(messages)}
        response, attempts = await self._call(model, lambda: litellm.acompletion(**arguments))
        choice = response.choices[0]
        return Completion(
            text=choice.message.content or "",
            model=str(response.model or model),
            usage=_usage(litellm, response, completion=True),
            attempts=attempts,
            finish_reason=choice.finish_reason,
        )

    async def stream(
        self, messages: Sequence[ChatMessage], **options: Any
    ) -> AsyncGenerator[str | Completion, None]:
        """One completion streamed: each text delta as it arrives, then the `Completion`
        (whole text, usage). Opening the stream is retried like `complete`; a stream that
        breaks after its first token raises `LLMError` (the tokens were already used).
        Closing the iterator early (a client that left) closes the provider's stream."""
        model = self._model(self.config.model, "FACTFLOW_LLM_MODEL")
        litellm = _litellm()
        arguments = {
            **self._arguments(),
            **options,
            "model": model,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        response, attempts = await self._call(model, lambda: litellm.acompletion(**arguments))
        parts: list[str] = []
        prompt = completed = 0
        finish: str | None = None
        try:
            async for chunk in response:
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
                    completed = int(getattr(usage, "completion_tokens", 0) or 0)
                for choice in chunk.choices or []:
                    delta = getattr(choice.delta, "content", None)
                    if delta:
                        parts.append(delta)
                        yield delta
                    finish = choice.finish_reason or finish
        except Exception as exc:
            msg = f"the stream from {model} broke: {type(exc).__name__}: {exc}"
            raise LLMError(msg, attempts) from exc
        finally:
            close = getattr(response, "aclose", None)
            if close is not None:
                await close()
        text = "".join(parts)
        if not prompt:  # the provider sent no usage: count as litellm would bill it
            prompt = int(litellm.token_counter(model=model, messages=list(messages)))
            completed = int(litellm.token_counter(model=model, text=text))
        yield Completion(
            text=text,
            model=model,
            usage=Usage(prompt, completed, _price(litellm, model, prompt, completed)),
            attempts=attempts,
            finish_reason=finish,
        )

    async def embed(self, texts: Sequence[str], **options: Any) -> Embeddings:
        model = self._model(self.config.embedding_model, "FACTFLOW_EMBEDDING_MODEL")
        litellm = _litellm()
        arguments = {**self._arguments(), **options, "model": model, "input": list(texts)}
        response, attempts = await self._call(model, lambda: litellm.aembedding(**arguments))
        vectors = [list(item["embedding"]) for item in response.data]
        return Embeddings(vectors, model, _usage(litellm, response, completion=False), attempts)

    async def _call(self, model: str, call: Callable[[], Awaitable[Any]]) -> tuple[Any, int]:
        limits = self.config.limits
        attempt = 0
        while True:
            attempt += 1
            async with self.limiter.slot():
                try:
                    response = await call()
                except Exception as exc:
                    kind = _retry_kind(exc)
                    if kind == _RATE_LIMITED:
                        self.limiter.on_rate_limited()
                    if kind is None or attempt >= limits.max_attempts:
                        why = (
                            "failed" if kind is None else f"still failing after {attempt} attempts"
                        )
                        msg = f"LLM call to {model} {why}: {type(exc).__name__}: {exc}"
                        raise LLMError(msg, attempt) from exc
                else:
                    self.limiter.on_success()
                    return response, attempt
            await asyncio.sleep(limits.backoff(attempt))

    def _arguments(self) -> dict[str, Any]:
        config = self.config
        arguments: dict[str, Any] = {
            "timeout": config.limits.timeout_seconds,
            # neither litellm nor the OpenAI SDK retries: they would hide attempts (and 429s)
            "num_retries": 0,
            "max_retries": 0,
        }
        if config.api_base is not None:
            arguments["api_base"] = config.api_base
        if config.api_key is not None:
            arguments["api_key"] = config.api_key
        return arguments

    @staticmethod
    def _model(model: str | None, variable: str) -> str:
        if model is None:
            msg = f"no model configured for this call: set {variable}"
            raise ConfigurationError(msg)
        return model


def _final_error(model: str, exc: Exception, attempts: int, *, retryable: bool) -> LLMError:
    why = f"still failing after {attempts} attempts" if retryable else "failed"
    return LLMError(f"LLM call to {model} {why}: {type(exc).__name__}: {exc}", attempts)


def _retry_kind(exc: Exception) -> str | None:
    """What a failed call means: rate limited, transient, or final (None)."""
    litellm = _litellm()
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        return _RATE_LIMITED
    if isinstance(exc, litellm.Timeout | litellm.APIConnectionError | asyncio.TimeoutError):
        return _TRANSIENT
    if isinstance(status, int) and status >= 500:
        return _TRANSIENT
    return None


def _usage(litellm: Any, response: Any, *, completion: bool) -> Usage:
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completed = int(getattr(usage, "completion_tokens", 0) or 0) if completion else 0
    try:
        cost: float | None = float(litellm.completion_cost(completion_response=response))
    except Exception:  # litellm raises for models it has no price for
        cost = None
    return Usage(prompt, completed, cost)


def _price(litellm: Any, model: str, prompt: int, completed: int) -> float | None:
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt, completion_tokens=completed
        )
    except Exception:  # litellm raises for models it has no price for
        return None
    return float(prompt_cost + completion_cost)


def _litellm() -> Any:
    """litellm, imported on first use (it takes seconds to import)."""
    LLM.require("the LLM client")
    # its price table ships with it; without this it fetches one from GitHub at import
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    # litellm's OpenAI embeddings turn `max_retries=0` into this default (`0 or default`):
    # factflow makes every retry itself, so litellm's own default is none
    litellm.DEFAULT_MAX_RETRIES = 0  # type: ignore[attr-defined]  # set, though not re-exported
    return litellm

"""`LiteLLMClient` against a local OpenAI-compatible server (the test double in conftest.py:
no LLM provider is reachable from this machine). It answers 429, 500, stalls or 400 on
cue; the tests count the requests it saw and watch the limiter."""

from __future__ import annotations

import asyncio
import time

import pytest

from factflow.exceptions import ConfigurationError
from factflow.llm import (
    Completion,
    LiteLLMClient,
    LLMConfig,
    LLMError,
    LLMLimits,
    check_model,
    context_window,
    count_tokens,
    provider_of,
)
from factflow.llm.tokens import DEFAULT_CONTEXT_TOKENS
from factflow.settings import Settings
from tests.unit.llm.conftest import COMPLETION_TOKENS, PROMPT_TOKENS, FakeProvider

KNOWN = "openai/gpt-4o-mini"  # litellm has a price for it: cost is reported
UNKNOWN = "openai/factflow-test-model"  # no price: cost is None
FAST = LLMLimits(backoff_seconds=0.01, max_backoff_seconds=0.05, timeout_seconds=5)
HELLO = [{"role": "user", "content": "hello"}]


def client(provider: FakeProvider, model: str = KNOWN, limits: LLMLimits = FAST) -> LiteLLMClient:
    config = LLMConfig(
        model=model,
        embedding_model="openai/text-embedding-3-small",
        api_base=provider.url,
        api_key="sk-test",
        limits=limits,
    )
    return LiteLLMClient(config)


def test_429_goes_to_the_limiter_500_to_the_retries_then_success(provider: FakeProvider) -> None:
    llm = client(provider)
    provider.queue(429, 500)
    result = asyncio.run(llm.complete(HELLO))
    assert len(provider.requests) == 3
    assert result.attempts == 3
    assert result.text == "an answer"
    assert result.finish_reason == "stop"
    # 50, halved by the 429 (25), the 500 leaves it, the success adds one
    assert llm.limiter.limit == 26
    assert llm.limiter.in_flight == 0
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert result.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS
    assert result.usage.cost_usd is not None
    assert result.usage.cost_usd > 0
    path, body = provider.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["messages"] == HELLO
    assert body["model"] == "gpt-4o-mini"


def test_repeated_429s_halve_the_limit_down_to_the_floor(provider: FakeProvider) -> None:
    llm = client(provider, UNKNOWN)
    provider.queue(429, 429, 429, 429)
    result = asyncio.run(llm.complete(HELLO, temperature=0))
    assert result.attempts == 5
    assert llm.limiter.limit == 6  # 50 -> 25 -> 12 -> 6 -> 5 (floor), +1 on success
    assert result.usage.cost_usd is None  # litellm has no price for this model
    assert provider.requests[-1][1]["temperature"] == 0


def test_a_call_failing_every_time_stops_after_seven_attempts(provider: FakeProvider) -> None:
    llm = client(provider)
    provider.queue(*[500] * 10)
    with pytest.raises(LLMError, match="still failing after 7 attempts") as caught:
        asyncio.run(llm.complete(HELLO))
    assert caught.value.attempts == 7
    assert len(provider.requests) == 7
    assert llm.limiter.limit == 50  # 5xx never touch the limiter
    assert llm.limiter.in_flight == 0


def test_a_timeout_is_retried(provider: FakeProvider) -> None:
    llm = client(provider, limits=LLMLimits(backoff_seconds=0.01, timeout_seconds=0.5))
    provider.queue(2.0)  # stalls past the timeout once
    result = asyncio.run(llm.complete(HELLO))
    assert result.attempts == 2
    assert len(provider.requests) == 2
    assert llm.limiter.limit == 50  # 50 + 1, capped at max_concurrency


def test_a_client_error_is_not_retried(provider: FakeProvider) -> None:
    llm = client(provider)
    provider.queue(400)
    with pytest.raises(LLMError, match="failed") as caught:
        asyncio.run(llm.complete(HELLO))
    assert caught.value.attempts == 1
    assert len(provider.requests) == 1


def test_embeddings_retry_and_report_usage(provider: FakeProvider) -> None:
    llm = client(provider)
    provider.queue(503, 429)
    result = asyncio.run(llm.embed(["a", "abc"]))
    assert result.vectors == [[1.0, 0.5], [3.0, 0.5]]
    assert result.attempts == 3
    assert result.usage.prompt_tokens == PROMPT_TOKENS
    assert result.usage.completion_tokens == 0
    assert llm.limiter.limit == 26
    assert provider.requests[-1][0] == "/v1/embeddings"


def test_concurrent_calls_share_the_limiter(provider: FakeProvider) -> None:
    llm = client(provider, UNKNOWN, LLMLimits(max_concurrency=8, floor=2, backoff_seconds=0.01))
    provider.queue(429)

    async def many() -> list[int]:
        results = await asyncio.gather(*(llm.complete(HELLO) for _ in range(6)))
        return [r.attempts for r in results]

    attempts = asyncio.run(many())
    assert sorted(attempts) == [1, 1, 1, 1, 1, 2]
    assert len(provider.requests) == 7
    # halved to 4 by the 429, then +1 per success after it (up to 8): how many successes
    # come after the 429 depends on how the six calls interleave
    assert 4 <= llm.limiter.limit <= 8


def test_a_call_without_its_model_is_a_configuration_error(provider: FakeProvider) -> None:
    llm = LiteLLMClient(LLMConfig(embedding_model="openai/x", api_base=provider.url))
    with pytest.raises(ConfigurationError, match="FACTFLOW_LLM_MODEL"):
        asyncio.run(llm.complete(HELLO))
    assert provider.requests == []


def test_config_from_settings() -> None:
    assert LLMConfig.from_settings(Settings()) is None
    base = "http://127.0.0.1:1/v1"
    settings = Settings(llm_model=KNOWN, llm_api_base=base, llm_api_key="sk-secret")
    config = LLMConfig.from_settings(settings)
    assert config is not None
    assert (config.model, config.embedding_model, config.api_key) == (KNOWN, None, "sk-secret")
    assert "sk-secret" not in repr(config)  # the key never shows in logs
    assert config.limits.max_attempts == 7


def test_a_streamed_completion_yields_tokens_then_the_completion(provider: FakeProvider) -> None:
    llm = client(provider)
    provider.reply = "streamed answer in five words"
    provider.queue(429)  # opening the stream is retried like any call

    async def collect() -> list[object]:
        return [item async for item in llm.stream(HELLO)]

    items = asyncio.run(collect())
    tokens, final = items[:-1], items[-1]
    assert tokens == ["streamed", " answer", " in", " five", " words"]
    assert isinstance(final, Completion)
    assert final.text == "streamed answer in five words"
    assert final.attempts == 2 and final.finish_reason == "stop"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (PROMPT_TOKENS, 5)
    assert final.usage.cost_usd is not None and final.usage.cost_usd > 0
    assert provider.requests[-1][1]["stream"] is True


def test_closing_a_stream_early_closes_the_providers_stream(provider: FakeProvider) -> None:
    llm = client(provider, UNKNOWN)
    provider.reply = " ".join(f"w{i}" for i in range(40))
    provider.token_delay = 0.05

    async def first_token() -> str:
        stream = llm.stream(HELLO)
        token = await anext(stream)
        await stream.aclose()
        return str(token)

    assert asyncio.run(first_token()) == "w0"
    deadline = time.monotonic() + 5
    while provider.cut == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.cut == 1  # the server saw the client leave before its last chunk


def test_token_counts_and_context_windows() -> None:
    assert count_tokens(KNOWN, "hello world how are you") == 5
    assert context_window(KNOWN) == 128_000
    assert context_window(UNKNOWN) == DEFAULT_CONTEXT_TOKENS
    assert provider_of(KNOWN) == "openai" and provider_of("gpt-4o") == "openai"


def test_a_model_litellm_cannot_place_is_a_configuration_error() -> None:
    check_model(KNOWN)
    check_model(UNKNOWN)  # a provider prefix is enough: self-hosted models have no entry
    with pytest.raises(ConfigurationError, match="provider/model"):
        check_model("0")

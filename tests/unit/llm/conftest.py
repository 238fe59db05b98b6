"""The local OpenAI-compatible server (tests/llm_provider.py, a declared test double: no
LLM provider is reachable from the machines these tests run on), started per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_provider import COMPLETION_TOKENS, PROMPT_TOKENS, FakeProvider, serve_provider

__all__ = ["COMPLETION_TOKENS", "PROMPT_TOKENS", "FakeProvider", "provider"]


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with serve_provider() as state:
        yield state

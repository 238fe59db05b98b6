"""The local OpenAI-compatible provider of tests/unit/llm (a declared test double) for the
litellm backend's tests."""

from tests.unit.llm.conftest import provider

__all__ = ["provider"]

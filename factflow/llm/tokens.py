"""Token counts and context windows, as litellm knows them for a model (its tokenizer for
the model's family, tiktoken's cl100k for models it does not know)."""

from __future__ import annotations

from factflow.exceptions import ConfigurationError
from factflow.llm.client import _litellm

DEFAULT_CONTEXT_TOKENS = 8192
"""The window assumed for a model litellm does not know (self-hosted, proxies)."""


def count_tokens(model: str, text: str) -> int:
    return int(_litellm().token_counter(model=model, text=text))


def context_window(model: str) -> int:
    """The model's input token limit, or `DEFAULT_CONTEXT_TOKENS` when unknown."""
    try:
        info = _litellm().get_model_info(model)
    except Exception:  # litellm raises for models it has no entry for
        return DEFAULT_CONTEXT_TOKENS
    limit = info.get("max_input_tokens") or info.get("max_tokens")
    return int(limit) if limit else DEFAULT_CONTEXT_TOKENS


def provider_of(model: str) -> str:
    """The provider part of a litellm model name (`openai/gpt-4o-mini` -> openai)."""
    provider, _, rest = model.partition("/")
    return provider if rest else "openai"


def check_model(model: str) -> None:
    """ConfigurationError when litellm cannot tell which provider serves `model`."""
    try:
        _litellm().get_llm_provider(model)
    except Exception as exc:  # litellm raises its BadRequestError
        msg = (
            f"litellm does not know which provider serves model {model!r}: name it as "
            "provider/model, e.g. openai/gpt-4o-mini (or `extractive` for no LLM)"
        )
        raise ConfigurationError(msg) from exc

"""What the chat service is configured with: a plain view of the one settings model."""

from __future__ import annotations

from dataclasses import dataclass, field

from factflow.settings import Settings


@dataclass(frozen=True, slots=True)
class ChatSettings:
    model: str | None = None
    """The litellm model of answers; None: extractive answers (no LLM)."""
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    context_tokens: int = 6000
    """Token budget of the sources packed into a prompt (capped by the model's window)."""

    @classmethod
    def of(cls, settings: Settings) -> ChatSettings:
        key = settings.llm_api_key
        return cls(
            model=settings.chat_model or settings.llm_model,
            api_base=settings.llm_api_base,
            api_key=key.get_secret_value() if key is not None else None,
            context_tokens=settings.chat_context_tokens,
        )

"""`embedding_generator`: each segment's text embedded into one or more named slots.

A slot is bound to one model (`backend: local` for a model a pip package ships, `litellm`
for a provider's model through the worker's embedding client). The text embedded is the
segment's title and heading path above its text, so a segment is found by what its page
and section are about. Messages in flight together are embedded in one model call per slot
(see batcher.py): give the route a `concurrency` of at least `batch_size`. Each model
call's tokens (and litellm's cost) go to `context.usage`: in a run, rows of the
execution's usage (docs/chat.md). Out: the input
payload plus `embeddings: {slot: {"model", "backend", "dimensions", "vector"}}`.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from factflow.adapters.base import Context
from factflow.extras import EMBEDDINGS
from factflow.messages import Message
from factflow.slots import MAX_DIMENSIONS, SLOT_NAME
from factflow.types import ConfigProblem, JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.embeddings.backends import (
    LOCAL_MODELS,
    Backend,
    LiteLLMBackend,
    LocalBackend,
    default_batch_size,
    local_model,
)
from factflow.workflows.embeddings.batcher import Coalescer
from factflow.workflows.embeddings.errors import EmbeddingError, UnknownLocalModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class SlotConfig(WorkflowConfig):
    name: str = Field(default="default", pattern=SLOT_NAME.pattern, description="slot name")
    model: str = Field(default=DEFAULT_MODEL, description="the model the slot is bound to")
    backend: Literal["local", "litellm"] = Field(
        default="local", description="local: a model shipped by a pip package; litellm: a provider"
    )
    dimensions: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DIMENSIONS,
        description="litellm: the vector size to ask for (models that support it)",
    )


class EmbeddingGeneratorConfig(WorkflowConfig):
    slots: list[SlotConfig] = Field(
        default_factory=lambda: [SlotConfig()], min_length=1, description="slots to embed into"
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=4096, description="texts per model call (default: 32 per core)"
    )
    text_field: str = Field(default="text", description="payload field with the segment text")
    include_title: bool = Field(default=True, description="embed the title above the text")
    include_headings: bool = Field(default=True, description="embed the heading path too")

    @model_validator(mode="after")
    def _unique_slots(self) -> Self:
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            msg = f"slot names must be unique, got {names}"
            raise ValueError(msg)
        return self


def embedding_text(
    payload: JsonDict, text_field: str, *, include_title: bool, include_headings: bool
) -> str:
    text = payload.get(text_field)
    if not isinstance(text, str) or not text.strip():
        msg = f"payload has no text in {text_field!r} (a segment from segment_publisher)"
        raise EmbeddingError(msg)
    lines: list[str] = []
    title = payload.get("title")
    if include_title and isinstance(title, str) and title.strip():
        lines.append(title.strip())
    headings = payload.get("heading_path")
    if include_headings and isinstance(headings, list):
        path = [str(h) for h in headings if str(h).strip() and str(h).strip() != title]
        if path:
            lines.append(" > ".join(path))
    lines.append(text)
    return "\n".join(lines)


class EmbeddingGeneratorAdapter(WorkflowAdapter):
    name = "embedding_generator"
    config_model = EmbeddingGeneratorConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = EmbeddingGeneratorConfig.model_validate(self.config)
        self.batch_size = self.settings.batch_size or default_batch_size()
        self._coalescers: dict[str, Coalescer] | None = None
        self._dimensions: dict[str, int] = {}

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        problems = super().check_config(config)
        if problems:
            return problems
        settings = EmbeddingGeneratorConfig.model_validate(config)
        for index, slot in enumerate(settings.slots):
            if slot.backend != "local":
                continue
            path: tuple[str | int, ...] = ("slots", index, "model")
            try:
                local_model(slot.model)
            except UnknownLocalModelError as exc:
                problems.append(ConfigProblem(path, "E303", str(exc), _local_models_hint()))
                continue
            missing = EMBEDDINGS.missing()
            if missing is not None:
                problems.append(
                    ConfigProblem(
                        path,
                        "E407",
                        f"the local model {slot.model} needs the package {missing!r}",
                        f"install it with {EMBEDDINGS.install}",
                    )
                )
        return problems

    def backends(self, context: Context) -> dict[str, Backend]:
        backends: dict[str, Backend] = {}
        for slot in self.settings.slots:
            if slot.backend == "local":
                backends[slot.name] = LocalBackend(
                    local_model(slot.model), self.batch_size, context.usage
                )
                self._dimensions[slot.name] = local_model(slot.model).dimensions
            else:
                if context.embeddings is None:
                    msg = (
                        f"slot {slot.name!r} embeds with {slot.model} through litellm, but "
                        f"the worker has no embedding client: set FACTFLOW_EMBEDDING_MODEL="
                        f"{slot.model} (and FACTFLOW_LLM_API_BASE / the provider's key)"
                    )
                    raise EmbeddingError(msg)
                client = context.embeddings
                backends[slot.name] = LiteLLMBackend(
                    client, slot.model, slot.dimensions, context.usage
                )
        return backends

    def _coalescers_for(self, context: Context) -> dict[str, Coalescer]:
        if self._coalescers is None:
            self._coalescers = {
                name: Coalescer(backend.embed, self.batch_size)
                for name, backend in self.backends(context).items()
            }
        return self._coalescers

    async def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        settings = self.settings
        text = embedding_text(
            payload,
            settings.text_field,
            include_title=settings.include_title,
            include_headings=settings.include_headings,
        )
        coalescers = self._coalescers_for(context)
        embeddings: dict[str, Any] = dict(payload.get("embeddings") or {})
        for slot in settings.slots:
            vector = await coalescers[slot.name].embed(text)
            expected = self._dimensions.get(slot.name) or slot.dimensions
            if expected is not None and len(vector) != expected:
                msg = f"{slot.model} returned {len(vector)} dimensions, expected {expected}"
                raise EmbeddingError(msg)
            embeddings[slot.name] = {
                "model": slot.model,
                "backend": slot.backend,
                "dimensions": len(vector),
                "vector": vector,
            }
        context.metrics.add("embedded", len(settings.slots))
        return [message.derive(payload={**payload, "embeddings": embeddings})]


def _local_models_hint() -> str:
    return f"local models: {', '.join(sorted(LOCAL_MODELS))}; or `backend: litellm`"

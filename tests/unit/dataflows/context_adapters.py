"""Adapters for tests/unit/dataflows/test_context.py: they report what their Context held."""

from __future__ import annotations

from factflow import Adapter, Context, Message
from factflow.llm import LiteLLMClient


class AskLLM(Adapter):
    """Async: asks `context.llm` and emits the answer with what the context said."""

    name = "ask_llm"

    async def process(self, message: Message, context: Context) -> list[Message]:
        assert context.llm is not None
        answer = await context.llm.complete([{"role": "user", "content": message.payload["q"]}])
        context.metrics.add("llm_tokens", answer.usage.total_tokens)
        return [
            message.derive(
                payload={
                    "q": message.payload["q"],
                    "answer": answer.text,
                    "attempts": answer.attempts,
                    "worker": context.worker_index,
                    "stage": context.stage,
                    "execution": context.execution_id,
                    "route": context.route_id,
                    "storage": context.storage is not None,
                    "embeddings": context.embeddings is not None,
                    "logger": context.logger.name,
                }
            )
        ]


class AskLLMNoting(Adapter):
    """Async: asks `context.llm` and notes the worker limiter's limit after each answer."""

    name = "ask_llm_noting"
    limits: list[int] = []  # what every instance noted, for the test

    async def process(self, message: Message, context: Context) -> list[Message]:
        llm = context.llm
        assert isinstance(llm, LiteLLMClient)  # the worker's client, with its limiter
        answer = await llm.complete([{"role": "user", "content": str(message.payload)}])
        AskLLMNoting.limits.append(llm.limiter.limit)
        return [message.derive(payload={"n": message.payload, "attempts": answer.attempts})]

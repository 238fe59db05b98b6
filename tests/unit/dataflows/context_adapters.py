"""Adapters for tests/unit/dataflows/test_context.py: they report what their Context held."""

from __future__ import annotations

from factflow import Adapter, Context, Message


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

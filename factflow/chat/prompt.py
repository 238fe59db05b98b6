"""Prompts of the LLM path: the sources packed into the model's context budget (counted
in the model's tokens), and the rewrite of a follow-up into a standalone question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from factflow.chat.retrieval import Citation
from factflow.llm import ChatMessage, context_window, count_tokens

ANSWER_RESERVE_TOKENS = 1024
"""Tokens of the window kept for the answer itself."""
HISTORY_MESSAGES = 10
"""Messages of a thread's history sent along (the latest ones)."""

SYSTEM = """\
You answer questions from the numbered sources below, and from nothing else.
After each sentence, cite the sources it relies on as [1], [2].
If the sources do not answer the question, say so plainly instead of guessing.

Sources:
"""
REWRITE = """\
Rewrite the user's last question as one standalone question that can be understood \
without the conversation (resolve "it", "that", "the second one"). Answer with the \
question only."""


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str


def source_block(citation: Citation) -> str:
    where = " > ".join(citation.heading_path) or citation.title
    url = f" ({citation.url})" if citation.url else ""
    return f"[{citation.number}] {where}{url}\n{citation.text.strip()}\n\n"


def pack(
    model: str,
    question: str,
    history: Sequence[Turn],
    citations: list[Citation],
    budget: int,
) -> tuple[list[ChatMessage], list[Citation]]:
    """The messages of the answer call, and the citations that fit: sources in rank order
    while the whole prompt stays within `budget` tokens and the model's window (less
    `ANSWER_RESERVE_TOKENS`). The top source always goes in (cut to fit if it must)."""
    turns = [{"role": t.role, "content": t.content} for t in history[-HISTORY_MESSAGES:]]
    limit = min(budget, context_window(model) - ANSWER_RESERVE_TOKENS)
    used = count_tokens(model, SYSTEM + question + "".join(t["content"] for t in turns))
    blocks: list[str] = []
    packed: list[Citation] = []
    for citation in citations:
        block = source_block(citation)
        cost = count_tokens(model, block)
        if used + cost > limit:
            if packed:
                break
            # the top source alone is over budget: keep the share of it that fits (token
            # counts are not additive at the cut, hence the few shrinking steps)
            share = max(0.0, (limit - used) / cost)
            while used + cost > limit and block:
                block = block[: int(len(block) * share * 0.95)]
                cost = count_tokens(model, block)
                share = 1.0
        # a prefix of the ranked citations: the prompt keeps their numbers
        packed.append(citation)
        blocks.append(block)
        used += cost
    messages: list[ChatMessage] = [{"role": "system", "content": SYSTEM + "".join(blocks)}]
    messages += turns
    messages.append({"role": "user", "content": question})
    return messages, packed


def rewrite_messages(history: Sequence[Turn], question: str) -> list[ChatMessage]:
    conversation = "\n".join(f"{t.role}: {t.content}" for t in history[-HISTORY_MESSAGES:])
    return [
        {"role": "system", "content": REWRITE},
        {
            "role": "user",
            "content": f"Conversation:\n{conversation}\n\nLast question: {question}",
        },
    ]

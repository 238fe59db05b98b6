"""Retrieval-augmented chat: threads, answers with numbered citations that carry their
segment's lineage, streamed token by token.

- `service`: `ChatService` (threads, `prepare` then `answer`), the ask and its events.
- `retrieval`: RRF (multi-model over several slots), the relevance bar, citations with
  lineage chains.
- `extractive`: the answer without an LLM (the best sentences of the top sources).
- `prompt`: the LLM path's prompt, packed within the model's token budget, and the
  rewrite of a follow-up into a standalone question.
- `transient`: threads kept in this process's memory only.

This package knows no HTTP, server or CLI.
"""

from factflow.chat.exceptions import BadChatRequestError, ChatError, ChatUnavailableError
from factflow.chat.retrieval import Citation, RetrievalSettings
from factflow.chat.service import Ask, ChatService, Done, Prepared, Thread, Token, UsageTotals
from factflow.chat.settings import ChatSettings

__all__ = [
    "Ask",
    "BadChatRequestError",
    "ChatError",
    "ChatService",
    "ChatSettings",
    "ChatUnavailableError",
    "Citation",
    "Done",
    "Prepared",
    "RetrievalSettings",
    "Thread",
    "Token",
    "UsageTotals",
]

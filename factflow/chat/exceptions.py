"""Errors of the chat service; the API answers them with 400 and 503 (an unknown thread
or message is the database's NotFoundError: 404)."""

from __future__ import annotations

from factflow.exceptions import FactflowError


class ChatError(FactflowError):
    """Base of the chat service's errors."""


class BadChatRequestError(ChatError):
    """The question cannot be answered as asked: empty, too long, or retrieval settings
    out of range. The message says which and what is allowed."""


class ChatUnavailableError(ChatError):
    """Nothing to answer from: no slot has been indexed yet (run a pipeline that ends in
    the `embedding_index` writer, e.g. pipelines/docs-ingest.yaml), or the slot's model or
    the answering LLM cannot be reached (check FACTFLOW_CHAT_MODEL and the provider's key)."""

"""A chat answer streamed as server-sent events that fails after the citations went out
ends with an `error` event carrying the API's error body: `CHAT_UNAVAILABLE` when the
answering model cannot be reached, `CHAT_FAILED` for any other chat error. Run through
the router's own event generator with a stand-in service (no request can make the real
service fail otherwise once it started answering)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from factflow.api.routers.chat import _events
from factflow.chat.exceptions import BadChatRequestError, ChatError, ChatUnavailableError
from factflow.chat.service import Prepared, Token


class FailingService:
    """Answers one token, then raises `error`."""

    def __init__(self, error: ChatError) -> None:
        self.error = error

    async def answer(self, prepared: Prepared) -> AsyncIterator[Any]:
        yield Token("Partly")
        raise self.error


def _prepared() -> Any:
    class Stand:
        mode, model, standalone_question = "llm", "openai/m", "why?"
        citations: list[Any] = []

    return Stand()


def _events_of(error: ChatError) -> list[dict[str, str]]:
    async def collect() -> list[dict[str, str]]:
        return [e async for e in _events(FailingService(error), _prepared())]  # type: ignore[arg-type]

    return asyncio.run(collect())


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ChatUnavailableError("the answering model openai/m is not available"), "CHAT_UNAVAILABLE"),
        (BadChatRequestError("an unknown slot"), "CHAT_FAILED"),
        (ChatError("the answer could not be made"), "CHAT_FAILED"),
    ],
)
def test_a_stream_failing_after_the_citations_ends_with_an_error_event(
    error: ChatError, code: str
) -> None:
    events = _events_of(error)
    assert [e["event"] for e in events] == ["citations", "token", "error"]
    body = json.loads(events[-1]["data"])
    assert body["error_code"] == code
    assert body["detail"] == str(error)
    assert set(body) == {"detail", "error_code", "correlation_id", "timestamp"}

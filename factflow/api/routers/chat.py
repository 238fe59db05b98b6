"""Chat: one-off questions, threads (persistent or transient), their messages, feedback,
usage and capabilities (factflow's paths; the seed system's chat domain published none).
`POST /chat/search/rrf` lives with the search routes (search.py).

An ask answers JSON, or streams server-sent events when the body says `stream: true` or
the request accepts `text/event-stream`: `citations` first, then one `token` per piece of
the answer, then `done` (the stored message id, usage, latency), or `error` when the LLM
fails mid-answer. A client that disconnects cancels the LLM call and nothing is stored.

Errors: 400 for a question that cannot be answered as asked, 404 for an unknown thread or
message, 503 when nothing is indexed yet or the answering model cannot be reached.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from factflow.api.auth import require
from factflow.api.deps import DbDep, Offset, get_pool
from factflow.api.errors import ApiError, error_body, error_responses
from factflow.api.routers.search import SearchDep
from factflow.api.routers.usage import UsageOut, usage_out
from factflow.api.sse import SSE_EVENT_SCHEMA, SSE_MEDIA_TYPE
from factflow.chat import (
    Ask,
    BadChatRequestError,
    ChatError,
    ChatService,
    ChatSettings,
    ChatUnavailableError,
    Citation,
    Done,
    Prepared,
    RetrievalSettings,
    Thread,
)
from factflow.chat.prompt import Turn
from factflow.chat.retrieval import MIN_SIMILARITY
from factflow.db.repositories.chat import MessageRecord
from factflow.db.repositories.usage import usage_groups
from factflow.search.service import DEFAULT_LANGUAGE
from factflow.settings import Settings

router = APIRouter(prefix="/chat", tags=["chat"], dependencies=[require("chat:use")])

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the answer as JSON, or (stream) server-sent events: citations, "
        "token..., done | error",
        "content": {SSE_MEDIA_TYPE: {"schema": SSE_EVENT_SCHEMA}},
    }
}


def get_chat(request: Request, search: SearchDep) -> ChatService:
    service: ChatService | None = getattr(request.app.state, "chat", None)
    if service is None:
        settings: Settings = request.app.state.settings
        service = ChatService(search, ChatSettings.of(settings))
        request.app.state.chat = service
    return service


ChatDep = Annotated[ChatService, Depends(get_chat)]


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except BadChatRequestError as exc:
        raise ApiError(400, str(exc), "BAD_CHAT_REQUEST") from exc
    except ChatUnavailableError as exc:
        raise ApiError(503, str(exc), "CHAT_UNAVAILABLE") from exc
    except ValueError as exc:
        raise ApiError(400, str(exc), "BAD_REQUEST") from exc


# -- bodies ------------------------------------------------------------------------

Text = Annotated[str, Field(max_length=2000)]


class RetrievalIn(BaseModel):
    """How answers retrieve their sources (RRF; multi-model when several slots)."""

    model_config = ConfigDict(extra="forbid")

    slots: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None, min_length=1, max_length=20, description="slots (default: the default)"
    )
    top_k: int = Field(default=5, ge=1, le=20, description="sources per answer")
    candidates: int = Field(default=50, ge=1, le=1000, description="candidates per ranking")
    language: str = Field(default=DEFAULT_LANGUAGE, max_length=64)
    url_prefix: Text | None = Field(default=None, description="only sources under this URL")
    min_similarity: float = Field(
        default=MIN_SIMILARITY,
        ge=0,
        le=1,
        description="cosine similarity below which a source is not relevant",
    )

    def settings(self) -> RetrievalSettings:
        return RetrievalSettings.of(self.model_dump())


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    stream: bool = Field(default=False, description="answer as server-sent events")
    model: str | None = Field(
        default=None,
        max_length=200,
        description="litellm model for this answer (`extractive`: none); default: the "
        "thread's, else the server's",
    )
    retrieval: RetrievalIn | None = Field(default=None, description="default: the thread's")


class TurnIn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class OneOffIn(AskIn):
    history: list[TurnIn] = Field(
        default_factory=list, max_length=50, description="earlier turns, oldest first"
    )


class ThreadIn(BaseModel):
    title: str = Field(default="", max_length=200)
    model: str | None = Field(default=None, max_length=200)
    retrieval: RetrievalIn = Field(default_factory=RetrievalIn)
    transient: bool = Field(
        default=False, description="kept in the server's memory only, never stored"
    )


class ThreadPatch(BaseModel):
    """The fields to change; `model: null` returns to the server's model."""

    title: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    retrieval: RetrievalIn | None = None


class FeedbackIn(BaseModel):
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=2000)


# -- responses ---------------------------------------------------------------------


class LineageStepOut(BaseModel):
    id: str
    route_id: str
    adapter_name: str
    stage_name: str
    status: str
    storage_key: str | None
    url: str | None


class CitationOut(BaseModel):
    number: int = Field(description="the [n] the answer cites it by")
    segment_id: int
    url: str | None
    title: str
    heading_path: list[str]
    quote: str = Field(description="the passage the answer relies on")
    text: str
    score: float
    similarity: float | None
    lineage_id: str | None
    lineage_chain: str | None = Field(description="GET it: the segment's whole lineage")
    lineage: list[LineageStepOut] = Field(description="the chain, the crawl first")
    execution_id: str | None
    document_id: str | None

    @classmethod
    def of(cls, citation: Citation) -> CitationOut:
        return cls.model_validate(citation.to_json())


class UsageTotalsOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None = Field(description="null when a model has no known price")
    calls: int = Field(description="LLM calls made for this answer")


class AnswerOut(BaseModel):
    message_id: uuid.UUID | None = Field(description="the stored answer (null: not stored)")
    thread_id: uuid.UUID | None
    question: str
    standalone_question: str = Field(description="what was searched (follow-ups rewritten)")
    answer: str
    mode: Literal["extractive", "llm"]
    model: str | None
    citations: list[CitationOut]
    usage: UsageTotalsOut
    retrieval_ms: float
    first_token_ms: float | None
    latency_ms: float

    @classmethod
    def of(cls, prepared: Prepared, done: Done) -> AnswerOut:
        return cls(
            message_id=done.message_id,
            thread_id=done.thread_id,
            question=prepared.ask.question,
            standalone_question=prepared.standalone_question,
            answer=done.answer,
            mode=done.mode,
            model=done.model,
            citations=[CitationOut.of(c) for c in prepared.citations],
            usage=UsageTotalsOut(
                prompt_tokens=done.usage.prompt_tokens,
                completion_tokens=done.usage.completion_tokens,
                cost_usd=done.usage.cost_usd,
                calls=done.usage.calls,
            ),
            retrieval_ms=done.retrieval_ms,
            first_token_ms=done.first_token_ms,
            latency_ms=done.latency_ms,
        )


class RetrievalOut(BaseModel):
    slots: list[str] | None
    top_k: int
    candidates: int
    language: str
    url_prefix: str | None
    min_similarity: float


class ThreadOut(BaseModel):
    id: uuid.UUID
    title: str
    model: str | None
    retrieval: RetrievalOut
    transient: bool
    message_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, thread: Thread) -> ThreadOut:
        r = thread.retrieval
        return cls(
            id=thread.id,
            title=thread.title,
            model=thread.model,
            retrieval=RetrievalOut(
                slots=r.slots,
                top_k=r.top_k,
                candidates=r.candidates,
                language=r.language,
                url_prefix=r.url_prefix,
                min_similarity=r.min_similarity,
            ),
            transient=thread.transient,
            message_count=thread.message_count,
            created_at=thread.created_at,
            updated_at=thread.updated_at,
        )


class MessageOut(BaseModel):
    id: uuid.UUID
    thread_id: uuid.UUID
    role: Literal["user", "assistant"]
    content: str
    mode: str | None
    model: str | None
    standalone_question: str | None
    citations: list[dict[str, Any]]
    latency_ms: float | None
    feedback: Literal["up", "down"] | None
    feedback_comment: str | None
    created_at: datetime

    @classmethod
    def of(cls, m: MessageRecord) -> MessageOut:
        return cls(
            id=m.id,
            thread_id=m.thread_id,
            role=m.role,  # type: ignore[arg-type]  # the table's CHECK allows these two
            content=m.content,
            mode=m.mode,
            model=m.model,
            standalone_question=m.standalone_question,
            citations=m.citations,
            latency_ms=m.latency_ms,
            feedback=None if m.feedback is None else ("up" if m.feedback > 0 else "down"),
            feedback_comment=m.feedback_comment,
            created_at=m.created_at,
        )


class ChatCapabilitiesOut(BaseModel):
    mode: Literal["extractive", "llm"] = Field(
        description="how answers are made when a thread or request names no model"
    )
    model: str | None
    streaming: bool
    transient_threads: bool
    context_tokens: int
    slots: list[str]
    indexed: bool = Field(description="false: asking answers 503 until a pipeline indexes")
    retrieval: dict[str, Any] = Field(description="the default retrieval settings")


# -- answering ---------------------------------------------------------------------


def _wants_stream(request: Request, body: AskIn) -> bool:
    return body.stream or SSE_MEDIA_TYPE in request.headers.get("accept", "")


def _dump(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False)


async def _respond(request: Request, service: ChatService, ask: Ask, stream: bool) -> Any:
    with _answers():
        prepared = await service.prepare(get_pool(request), ask)
    if stream:
        return EventSourceResponse(_events(service, prepared), ping=15)
    done: Done | None = None
    with _answers():
        async for event in service.answer(prepared):
            if isinstance(event, Done):
                done = event
    assert done is not None
    return JSONResponse(AnswerOut.of(prepared, done).model_dump(mode="json"))


async def _events(service: ChatService, prepared: Prepared) -> AsyncIterator[dict[str, str]]:
    citations = [CitationOut.of(c).model_dump(mode="json") for c in prepared.citations]
    head = {
        "mode": prepared.mode,
        "model": prepared.model,
        "standalone_question": prepared.standalone_question,
        "citations": citations,
    }
    yield {"event": "citations", "data": _dump(head)}
    try:
        async for event in service.answer(prepared):
            if isinstance(event, Done):
                out = AnswerOut.of(prepared, event).model_dump(mode="json")
                out.pop("citations")  # sent first
                yield {"event": "done", "data": _dump(out)}
            else:
                yield {"event": "token", "data": _dump({"text": event.text})}
    except ChatError as exc:
        code = "CHAT_UNAVAILABLE" if isinstance(exc, ChatUnavailableError) else "CHAT_FAILED"
        yield {"event": "error", "data": _dump(error_body(str(exc), code))}


@router.post(
    "",
    summary="Ask a one-off question",
    response_model=AnswerOut,
    responses=_STREAM_DOC,
)
async def ask_once(body: OneOffIn, request: Request, service: ChatDep) -> Any:
    """Answer one question from the index; no thread is kept (`history` may carry
    earlier turns). Extractive when no LLM is configured (see /chat/capabilities)."""
    ask = Ask(
        question=body.question,
        model=body.model,
        retrieval=body.retrieval.settings() if body.retrieval else None,
        history=[Turn(t.role, t.content) for t in body.history],
    )
    return await _respond(request, service, ask, _wants_stream(request, body))


@router.post(
    "/threads/{thread_id}/messages",
    summary="Ask in a thread",
    response_model=AnswerOut,
    responses={**_STREAM_DOC, **error_responses(404)},
)
async def ask_in_thread(
    thread_id: uuid.UUID, body: AskIn, request: Request, service: ChatDep
) -> Any:
    """Answer a question with the thread's history (a follow-up is rewritten into a
    standalone question when an LLM answers); the question and the answer are stored."""
    ask = Ask(
        question=body.question,
        thread_id=thread_id,
        model=body.model,
        retrieval=body.retrieval.settings() if body.retrieval else None,
    )
    return await _respond(request, service, ask, _wants_stream(request, body))


# -- threads -----------------------------------------------------------------------


@router.post(
    "/threads",
    response_model=ThreadOut,
    status_code=201,
    summary="Create a thread",
)
def create_thread(body: ThreadIn, conn: DbDep, service: ChatDep) -> ThreadOut:
    """A thread in Postgres, or `transient: true`: in this server's memory only."""
    with _answers():
        thread = service.create_thread(
            conn,
            title=body.title,
            model=body.model,
            retrieval=body.retrieval.settings(),
            transient=body.transient,
        )
    return ThreadOut.of(thread)


@router.get("/threads", response_model=list[ThreadOut], summary="List threads")
def list_threads(
    conn: DbDep,
    service: ChatDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> list[ThreadOut]:
    """Persistent threads, the most recently active first."""
    return [ThreadOut.of(t) for t in service.list_threads(conn, limit=limit, offset=offset)]


@router.get(
    "/threads/{thread_id}",
    response_model=ThreadOut,
    summary="Get a thread",
    responses=error_responses(404),
)
def get_thread(thread_id: uuid.UUID, conn: DbDep, service: ChatDep) -> ThreadOut:
    return ThreadOut.of(service.get_thread(conn, thread_id))


@router.patch(
    "/threads/{thread_id}",
    response_model=ThreadOut,
    summary="Change a thread",
    responses=error_responses(404),
)
def update_thread(
    thread_id: uuid.UUID, body: ThreadPatch, conn: DbDep, service: ChatDep
) -> ThreadOut:
    """Change the title, the model or the retrieval settings."""
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name == "retrieval":
            value = value.settings().to_json() if value is not None else {}
        elif name == "title" and value is None:
            continue
        changes[name] = value
    with _answers():
        return ThreadOut.of(service.update_thread(conn, thread_id, changes))


@router.delete(
    "/threads/{thread_id}",
    status_code=204,
    summary="Delete a thread",
    responses=error_responses(404),
)
def delete_thread(thread_id: uuid.UUID, conn: DbDep, service: ChatDep) -> None:
    """The thread and its messages (their usage stays accounted for)."""
    service.delete_thread(conn, thread_id)


@router.get(
    "/threads/{thread_id}/messages",
    response_model=list[MessageOut],
    summary="Thread messages",
    responses=error_responses(404),
)
def thread_messages(
    thread_id: uuid.UUID,
    conn: DbDep,
    service: ChatDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[MessageOut]:
    """Questions and answers, oldest first; answers keep their citations."""
    rows = service.messages(conn, thread_id, limit=limit, offset=offset)
    return [MessageOut.of(m) for m in rows]


@router.get(
    "/threads/{thread_id}/usage",
    response_model=UsageOut,
    summary="Thread usage",
    responses=error_responses(404),
)
def thread_usage(thread_id: uuid.UUID, conn: DbDep, service: ChatDep) -> UsageOut:
    """The thread's LLM calls by model and purpose (answer, rewrite): tokens and cost."""
    service.get_thread(conn, thread_id)
    keys = ["model", "purpose"]
    return usage_out(
        keys,
        usage_groups(conn, keys, thread_id=thread_id),
        usage_groups(conn, [], thread_id=thread_id),
    )


@router.post(
    "/messages/{message_id}/feedback",
    response_model=MessageOut,
    summary="Rate an answer",
    responses=error_responses(404),
)
def feedback(message_id: uuid.UUID, body: FeedbackIn, conn: DbDep, service: ChatDep) -> MessageOut:
    """Thumbs up or down on an answer, with an optional comment (the last one counts)."""
    rating = 1 if body.rating == "up" else -1
    return MessageOut.of(service.feedback(conn, message_id, rating, body.comment))


@router.get("/capabilities", response_model=ChatCapabilitiesOut, summary="Chat capabilities")
def capabilities(conn: DbDep, service: ChatDep) -> ChatCapabilitiesOut:
    """`mode: extractive` (no LLM configured: the best sentences of the sources) or `llm`,
    the model, the indexed slots and the default retrieval settings."""
    return ChatCapabilitiesOut(**service.capabilities(conn))

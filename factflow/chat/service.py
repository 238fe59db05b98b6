"""The chat service: threads (persistent in Postgres, or transient in memory), and
answers: retrieve, cite, then answer by LLM (streamed) or extractively.

An ask is two steps so that the API can refuse before it starts a stream: `prepare`
checks the question, rewrites a follow-up into a standalone question (LLM mode), retrieves
and cites (400, 404 and 503 come from here); `answer` streams the tokens and ends with
`Done`, after storing the question and the answer (persistent and transient threads) and
the usage of every LLM call. A stream closed early (the client left) stores nothing and
closes the LLM call. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from anyio import to_thread
from psycopg_pool import ConnectionPool

from factflow.chat import extractive, prompt
from factflow.chat.exceptions import BadChatRequestError, ChatUnavailableError
from factflow.chat.retrieval import Citation, RetrievalSettings, cite, retrieve
from factflow.chat.settings import ChatSettings
from factflow.chat.transient import TransientThread, TransientThreads
from factflow.db.connection import DbConnection
from factflow.db.repositories import chat as repo
from factflow.db.repositories import search_index as index
from factflow.db.repositories.chat import MessageRecord, NewMessage, ThreadRecord
from factflow.db.repositories.usage import UsageRecord, record_usage
from factflow.exceptions import ConfigurationError
from factflow.llm import (
    ChatMessage,
    Completion,
    LiteLLMClient,
    LLMConfig,
    LLMError,
    check_model,
    provider_of,
)
from factflow.search import BadSearchRequestError, SearchService, SearchUnavailableError

Mode = Literal["extractive", "llm"]
EXTRACTIVE = "extractive"
"""The model name that asks for an extractive answer when an LLM is configured."""
MAX_QUESTION_CHARS = 2000
MAX_TITLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Thread:
    id: uuid.UUID
    title: str
    model: str | None
    retrieval: RetrievalSettings
    transient: bool
    created_at: datetime
    updated_at: datetime
    message_count: int

    @classmethod
    def of(cls, record: ThreadRecord | TransientThread) -> Thread:
        transient = isinstance(record, TransientThread)
        count = (
            len(record.messages) if isinstance(record, TransientThread) else record.message_count
        )
        return cls(
            record.id,
            record.title,
            record.model,
            RetrievalSettings.of(record.retrieval),
            transient,
            record.created_at,
            record.updated_at,
            count,
        )


@dataclass(frozen=True, slots=True)
class Ask:
    question: str
    thread_id: uuid.UUID | None = None
    """None: a one-off question (`POST /chat`), nothing stored."""
    model: str | None = None
    """This request's model (`extractive` for none); default: the thread's, the server's."""
    retrieval: RetrievalSettings | None = None
    history: list[prompt.Turn] = field(default_factory=list)
    """One-off questions may bring their own history."""


@dataclass(slots=True)
class Prepared:
    """An ask checked, rewritten and retrieved: what the answer is made from."""

    pool: ConnectionPool[Any]
    ask: Ask
    thread: Thread | None
    mode: Mode
    model: str | None
    standalone_question: str
    history: list[prompt.Turn]
    citations: list[Citation]
    message_id: uuid.UUID | None
    started: float
    retrieval_ms: float
    calls: list[UsageRecord] = field(default_factory=list)
    messages: list[ChatMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class UsageTotals:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    calls: int


@dataclass(frozen=True, slots=True)
class Done:
    message_id: uuid.UUID | None
    thread_id: uuid.UUID | None
    answer: str
    mode: Mode
    model: str | None
    usage: UsageTotals
    retrieval_ms: float
    first_token_ms: float | None
    latency_ms: float


class ChatService:
    def __init__(self, search: SearchService, settings: ChatSettings) -> None:
        self.search = search
        self.settings = settings
        self.transient = TransientThreads()
        self._clients: dict[tuple[str, int], LiteLLMClient] = {}

    # -- what there is -------------------------------------------------------------

    def capabilities(self, conn: DbConnection) -> dict[str, Any]:
        slots = index.list_slots(conn)
        return {
            "mode": "llm" if self.settings.model else "extractive",
            "model": self.settings.model,
            "streaming": True,
            "transient_threads": True,
            "context_tokens": self.settings.context_tokens,
            "slots": [s.name for s in slots],
            "indexed": bool(slots),
            "retrieval": RetrievalSettings().to_json(),
        }

    # -- threads -------------------------------------------------------------------

    def create_thread(
        self,
        conn: DbConnection,
        *,
        title: str,
        model: str | None,
        retrieval: RetrievalSettings,
        transient: bool,
    ) -> Thread:
        _check_title(title)
        _check_model(model)
        retrieval.check()
        if transient:
            return Thread.of(
                self.transient.create(title=title, model=model, retrieval=retrieval.to_json())
            )
        return Thread.of(
            repo.create_thread(conn, title=title, model=model, retrieval=retrieval.to_json())
        )

    def get_thread(self, conn: DbConnection, thread_id: uuid.UUID) -> Thread:
        found = self.transient.get(thread_id)
        return Thread.of(found if found is not None else repo.get_thread(conn, thread_id))

    def list_threads(self, conn: DbConnection, *, limit: int, offset: int) -> list[Thread]:
        """Persistent threads, the most recently active first."""
        return [Thread.of(t) for t in repo.list_threads(conn, limit=limit, offset=offset)]

    def update_thread(
        self, conn: DbConnection, thread_id: uuid.UUID, changes: dict[str, Any]
    ) -> Thread:
        if "title" in changes:
            _check_title(changes["title"])
        if "model" in changes:
            _check_model(changes["model"])
        if "retrieval" in changes:
            settings = RetrievalSettings.of(changes["retrieval"])
            settings.check()
            changes = {**changes, "retrieval": settings.to_json()}
        if self.transient.get(thread_id) is not None:
            return Thread.of(self.transient.update(thread_id, changes))
        return Thread.of(repo.update_thread(conn, thread_id, changes))

    def delete_thread(self, conn: DbConnection, thread_id: uuid.UUID) -> None:
        if not self.transient.delete(thread_id):
            repo.delete_thread(conn, thread_id)

    def messages(
        self, conn: DbConnection, thread_id: uuid.UUID, *, limit: int, offset: int
    ) -> list[MessageRecord]:
        found = self.transient.get(thread_id)
        if found is not None:
            return found.messages[offset : offset + limit]
        return repo.list_messages(conn, thread_id, limit=limit, offset=offset)

    def feedback(
        self, conn: DbConnection, message_id: uuid.UUID, rating: int, comment: str | None
    ) -> MessageRecord:
        found = self.transient.set_feedback(message_id, rating, comment)
        return found if found is not None else repo.set_feedback(conn, message_id, rating, comment)

    # -- answers -------------------------------------------------------------------

    async def prepare(self, pool: ConnectionPool[Any], ask: Ask) -> Prepared:
        """Check, rewrite, retrieve and cite; raises before anything is streamed. The
        answer is stored through `pool` too."""
        started = time.perf_counter()
        question = ask.question.strip()
        if not question:
            msg = "question is empty"
            raise BadChatRequestError(msg)
        if len(ask.question) > MAX_QUESTION_CHARS:
            msg = f"question is longer than {MAX_QUESTION_CHARS} characters"
            raise BadChatRequestError(msg)
        if "\x00" in ask.question:
            msg = "question contains a NUL character"
            raise BadChatRequestError(msg)
        if ask.retrieval is not None:
            ask.retrieval.check()
        _check_model(ask.model)

        def load() -> tuple[Thread | None, list[prompt.Turn]]:
            if ask.thread_id is None:
                return None, list(ask.history)
            with pool.connection() as conn:
                thread = self.get_thread(conn, ask.thread_id)
                history = self.messages(conn, ask.thread_id, limit=10_000, offset=0)
            return thread, [prompt.Turn(m.role, m.content) for m in history]

        thread, history = await to_thread.run_sync(load)
        model = ask.model or (thread.model if thread else None) or self.settings.model
        mode: Mode = "extractive" if model in (None, EXTRACTIVE) else "llm"
        model = None if mode == "extractive" else model
        retrieval = ask.retrieval or (thread.retrieval if thread else RetrievalSettings())
        prepared = Prepared(
            pool=pool,
            ask=ask,
            thread=thread,
            mode=mode,
            model=model,
            standalone_question=question,
            history=history,
            citations=[],
            message_id=uuid.uuid4() if thread is not None else None,
            started=started,
            retrieval_ms=0.0,
        )
        if model is not None and history:
            prepared.standalone_question = await self._rewrite(prepared, question)

        def find() -> list[Citation]:
            with prepared.pool.connection() as conn:
                hits = retrieve(
                    conn,
                    self.search,
                    prepared.standalone_question,
                    retrieval,
                    thread_id=prepared.thread.id if prepared.thread else None,
                    message_id=prepared.message_id,
                )
                return cite(conn, hits)

        retrieval_started = time.perf_counter()
        try:
            prepared.citations = await to_thread.run_sync(find)
        except BadSearchRequestError as exc:
            raise BadChatRequestError(str(exc)) from exc
        except SearchUnavailableError as exc:
            msg = f"nothing to answer from: {exc}"
            raise ChatUnavailableError(msg) from exc
        prepared.retrieval_ms = (time.perf_counter() - retrieval_started) * 1000
        if model is not None and prepared.citations:
            # pack in a thread: the first token count loads the model's tokenizer
            prepared.messages, prepared.citations = await to_thread.run_sync(
                lambda: prompt.pack(
                    model,
                    question,
                    history,
                    prepared.citations,
                    self.settings.context_tokens,
                )
            )
        elif model is None:
            extractive.extract(question, prepared.citations)  # sets each source's quote
        return prepared

    async def answer(self, prepared: Prepared) -> AsyncGenerator[Token | Done, None]:
        """The answer's tokens, then `Done` (after the answer is stored)."""
        first_token: float | None = None
        parts: list[str] = []
        calls = list(prepared.calls)
        async with aclosing(self._tokens(prepared, calls)) as tokens:
            async for text in tokens:
                if first_token is None:
                    first_token = time.perf_counter()
                parts.append(text)
                yield Token(text)
        answer = "".join(parts)
        latency_ms = (time.perf_counter() - prepared.started) * 1000
        await to_thread.run_sync(self._store, prepared, answer, latency_ms, calls)
        costs = [c.cost_usd for c in calls]
        yield Done(
            message_id=prepared.message_id,
            thread_id=prepared.thread.id if prepared.thread else None,
            answer=answer,
            mode=prepared.mode,
            model=prepared.model,
            usage=UsageTotals(
                prompt_tokens=sum(c.prompt_tokens for c in calls),
                completion_tokens=sum(c.completion_tokens for c in calls),
                cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
                calls=len(calls),
            ),
            retrieval_ms=prepared.retrieval_ms,
            first_token_ms=(
                None if first_token is None else (first_token - prepared.started) * 1000
            ),
            latency_ms=latency_ms,
        )

    async def _tokens(
        self, prepared: Prepared, calls: list[UsageRecord]
    ) -> AsyncGenerator[str, None]:
        if prepared.model is None or not prepared.citations:
            text = extractive.extract(prepared.ask.question.strip(), prepared.citations)
            words = text.split(" ")
            for i, word in enumerate(words):
                yield word if i == 0 else " " + word
            return
        started = time.perf_counter()
        async with aclosing(self._client(prepared.model).stream(prepared.messages)) as stream:
            try:
                async for item in stream:
                    if isinstance(item, Completion):
                        calls.append(self._usage(prepared, "answer", item, started))
                    else:
                        yield item
            except (LLMError, ConfigurationError) as exc:
                msg = f"the answering model {prepared.model} is not available: {exc}"
                raise ChatUnavailableError(msg) from exc

    async def _rewrite(self, prepared: Prepared, question: str) -> str:
        assert prepared.model is not None
        started = time.perf_counter()
        try:
            completion = await self._client(prepared.model).complete(
                prompt.rewrite_messages(prepared.history, question),
                temperature=0,
                max_tokens=200,
            )
        except (LLMError, ConfigurationError) as exc:
            msg = f"the answering model {prepared.model} is not available: {exc}"
            raise ChatUnavailableError(msg) from exc
        prepared.calls.append(self._usage(prepared, "rewrite", completion, started))
        rewritten = " ".join(completion.text.split())
        return rewritten[:MAX_QUESTION_CHARS] or question

    def _usage(
        self, prepared: Prepared, purpose: str, completion: Completion, started: float
    ) -> UsageRecord:
        # the model as configured: providers answer with names of their own (no prefix)
        model = prepared.model or completion.model
        return UsageRecord(
            kind="completion",
            purpose=purpose,
            provider=provider_of(model),
            model=model,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            cost_usd=completion.usage.cost_usd,
            latency_ms=(time.perf_counter() - started) * 1000,
            thread_id=prepared.thread.id if prepared.thread else None,
            message_id=prepared.message_id,
        )

    def _client(self, model: str) -> LiteLLMClient:
        # one client per model and event loop: a client's limiter belongs to its loop
        key = (model, id(asyncio.get_running_loop()))
        client = self._clients.get(key)
        if client is None:
            config = LLMConfig(
                model=model, api_base=self.settings.api_base, api_key=self.settings.api_key
            )
            client = self._clients[key] = LiteLLMClient(config)
        return client

    def _store(
        self, prepared: Prepared, answer: str, latency_ms: float, calls: list[UsageRecord]
    ) -> None:
        thread = prepared.thread
        with prepared.pool.connection() as conn:
            if thread is not None:
                messages = [
                    NewMessage(role="user", content=prepared.ask.question.strip()),
                    NewMessage(
                        id=prepared.message_id,
                        role="assistant",
                        content=answer,
                        mode=prepared.mode,
                        model=prepared.model,
                        standalone_question=prepared.standalone_question,
                        citations=[c.to_json() for c in prepared.citations],
                        latency_ms=latency_ms,
                    ),
                ]
                if thread.transient:
                    self.transient.add_messages(thread.id, messages)
                else:
                    repo.add_messages(conn, thread.id, messages)
            record_usage(conn, calls)


def _check_title(title: Any) -> None:
    if not isinstance(title, str) or len(title) > MAX_TITLE_CHARS or "\x00" in title:
        msg = f"title must be text of at most {MAX_TITLE_CHARS} characters, without NUL"
        raise BadChatRequestError(msg)


def _check_model(model: str | None) -> None:
    if model is None or model == EXTRACTIVE:
        return
    try:
        check_model(model)
    except ConfigurationError as exc:
        raise BadChatRequestError(str(exc)) from exc

"""Transient threads: kept in this server process's memory only, never in Postgres, and
forgotten after `TTL_SECONDS` without use or when more than `MAX_THREADS` exist (the
least recently used first). Follow-ups work while the thread lives; another server
instance does not know it."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from factflow.db.exceptions import NotFoundError
from factflow.db.repositories.chat import MessageRecord, NewMessage
from factflow.types import JsonDict

TTL_SECONDS = 3600.0
MAX_THREADS = 1000
MAX_MESSAGES = 200


@dataclass(slots=True)
class TransientThread:
    id: uuid.UUID
    title: str
    model: str | None
    retrieval: JsonDict
    created_at: datetime
    updated_at: datetime
    messages: list[MessageRecord] = field(default_factory=list)
    used: float = field(default_factory=time.monotonic)


class TransientThreads:
    def __init__(self, ttl: float = TTL_SECONDS, capacity: int = MAX_THREADS) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._threads: OrderedDict[uuid.UUID, TransientThread] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, *, title: str, model: str | None, retrieval: JsonDict) -> TransientThread:
        now = datetime.now(UTC)
        thread = TransientThread(uuid.uuid4(), title, model, retrieval, now, now)
        with self._lock:
            self._expire()
            self._threads[thread.id] = thread
            while len(self._threads) > self.capacity:
                self._threads.popitem(last=False)
        return thread

    def get(self, thread_id: uuid.UUID) -> TransientThread | None:
        with self._lock:
            self._expire()
            thread = self._threads.get(thread_id)
            if thread is not None:
                thread.used = time.monotonic()
                self._threads.move_to_end(thread_id)
            return thread

    def require(self, thread_id: uuid.UUID) -> TransientThread:
        thread = self.get(thread_id)
        if thread is None:
            msg = f"no chat thread has id {thread_id}"
            raise NotFoundError(msg)
        return thread

    def update(self, thread_id: uuid.UUID, changes: JsonDict) -> TransientThread:
        thread = self.require(thread_id)
        with self._lock:
            for name, value in changes.items():
                setattr(thread, name, value)
            thread.updated_at = datetime.now(UTC)
        return thread

    def delete(self, thread_id: uuid.UUID) -> bool:
        with self._lock:
            return self._threads.pop(thread_id, None) is not None

    def add_messages(self, thread_id: uuid.UUID, messages: list[NewMessage]) -> list[MessageRecord]:
        thread = self.require(thread_id)
        now = datetime.now(UTC)
        records = [
            MessageRecord(
                id=m.id or uuid.uuid4(),
                thread_id=thread_id,
                role=m.role,
                content=m.content,
                mode=m.mode,
                model=m.model,
                standalone_question=m.standalone_question,
                citations=list(m.citations or []),
                latency_ms=m.latency_ms,
                feedback=None,
                feedback_comment=None,
                created_at=now,
            )
            for m in messages
        ]
        with self._lock:
            thread.messages.extend(records)
            del thread.messages[:-MAX_MESSAGES]
            thread.updated_at = now
        return records

    def set_feedback(
        self, message_id: uuid.UUID, rating: int, comment: str | None
    ) -> MessageRecord | None:
        with self._lock:
            for thread in self._threads.values():
                for i, m in enumerate(thread.messages):
                    if m.id == message_id and m.role == "assistant":
                        thread.messages[i] = replace(m, feedback=rating, feedback_comment=comment)
                        return thread.messages[i]
        return None

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl
        for key in [k for k, t in self._threads.items() if t.used < cutoff]:
            del self._threads[key]

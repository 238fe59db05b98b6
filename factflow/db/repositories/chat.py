"""Chat threads and messages (persistent threads only; transient ones never reach here)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError
from factflow.types import JsonDict

_THREAD_COLUMNS = (
    "t.id, t.title, t.model, t.retrieval, t.created_at, t.updated_at,"
    " (SELECT count(*) FROM chat_messages m WHERE m.thread_id = t.id)::int AS message_count"
)
_MESSAGE_COLUMNS = (
    "id, thread_id, role, content, mode, model, standalone_question, citations, latency_ms,"
    " feedback, feedback_comment, created_at"
)


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    id: uuid.UUID
    title: str
    model: str | None
    retrieval: JsonDict
    created_at: datetime
    updated_at: datetime
    message_count: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: uuid.UUID
    thread_id: uuid.UUID
    role: str
    content: str
    mode: str | None
    model: str | None
    standalone_question: str | None
    citations: list[JsonDict]
    latency_ms: float | None
    feedback: int | None
    feedback_comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store; assistant messages carry how they were answered."""

    role: str
    content: str
    id: uuid.UUID | None = None
    mode: str | None = None
    model: str | None = None
    standalone_question: str | None = None
    citations: list[JsonDict] | None = None
    latency_ms: float | None = None


def create_thread(
    conn: DbConnection, *, title: str, model: str | None, retrieval: JsonDict
) -> ThreadRecord:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "INSERT INTO chat_threads (title, model, retrieval) VALUES (%s, %s, %s) RETURNING id",
            (title, model, Jsonb(retrieval)),
        )
        row = cur.fetchone()
        assert row is not None
    return get_thread(conn, row[0])


def get_thread(conn: DbConnection, thread_id: uuid.UUID) -> ThreadRecord:
    with conn.cursor(row_factory=class_row(ThreadRecord)) as cur:
        cur.execute(f"SELECT {_THREAD_COLUMNS} FROM chat_threads t WHERE t.id = %s", (thread_id,))
        found = cur.fetchone()
    if found is None:
        msg = f"no chat thread has id {thread_id}"
        raise NotFoundError(msg)
    return found


def list_threads(conn: DbConnection, *, limit: int, offset: int) -> list[ThreadRecord]:
    """Threads, the most recently active first."""
    with conn.cursor(row_factory=class_row(ThreadRecord)) as cur:
        cur.execute(
            f"SELECT {_THREAD_COLUMNS} FROM chat_threads t"
            " ORDER BY t.updated_at DESC, t.id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return cur.fetchall()


def update_thread(
    conn: DbConnection, thread_id: uuid.UUID, changes: dict[str, Any]
) -> ThreadRecord:
    """Set `title`, `model` and / or `retrieval` (the keys present in `changes`)."""
    allowed = {"title", "model", "retrieval"}
    unknown = set(changes) - allowed
    if unknown:
        msg = f"cannot change {sorted(unknown)} of a thread"
        raise ValueError(msg)
    if changes:
        values = {k: Jsonb(v) if k == "retrieval" else v for k, v in changes.items()}
        assignments = ", ".join(f"{k} = %({k})s" for k in values)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                f"UPDATE chat_threads SET {assignments}, updated_at = now() WHERE id = %(id)s",
                {**values, "id": thread_id},
            )
            if cur.rowcount == 0:
                msg = f"no chat thread has id {thread_id}"
                raise NotFoundError(msg)
    return get_thread(conn, thread_id)


def delete_thread(conn: DbConnection, thread_id: uuid.UUID) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM chat_threads WHERE id = %s", (thread_id,))
        if cur.rowcount == 0:
            msg = f"no chat thread has id {thread_id}"
            raise NotFoundError(msg)


def add_messages(
    conn: DbConnection, thread_id: uuid.UUID, messages: list[NewMessage]
) -> list[MessageRecord]:
    """Append `messages` in order (one transaction) and touch the thread."""
    ids: list[uuid.UUID] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("UPDATE chat_threads SET updated_at = now() WHERE id = %s", (thread_id,))
        if cur.rowcount == 0:
            msg = f"no chat thread has id {thread_id}"
            raise NotFoundError(msg)
        for m in messages:
            cur.execute(
                "INSERT INTO chat_messages (id, thread_id, role, content, mode, model,"
                " standalone_question, citations, latency_ms)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    m.id or uuid.uuid4(),
                    thread_id,
                    m.role,
                    m.content,
                    m.mode,
                    m.model,
                    m.standalone_question,
                    Jsonb(m.citations or []),
                    m.latency_ms,
                ),
            )
            row = cur.fetchone()
            assert row is not None
            ids.append(row[0])
    with conn.cursor(row_factory=class_row(MessageRecord)) as cur:
        cur.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE id = ANY(%s)"
            " ORDER BY created_at, id",
            (ids,),
        )
        return cur.fetchall()


def list_messages(
    conn: DbConnection, thread_id: uuid.UUID, *, limit: int = 1000, offset: int = 0
) -> list[MessageRecord]:
    """The thread's messages, oldest first."""
    get_thread(conn, thread_id)
    with conn.cursor(row_factory=class_row(MessageRecord)) as cur:
        cur.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE thread_id = %s"
            " ORDER BY created_at, id LIMIT %s OFFSET %s",
            (thread_id, limit, offset),
        )
        return cur.fetchall()


def set_feedback(
    conn: DbConnection, message_id: uuid.UUID, rating: int, comment: str | None
) -> MessageRecord:
    with conn.cursor(row_factory=class_row(MessageRecord)) as cur:
        cur.execute(
            "UPDATE chat_messages SET feedback = %s, feedback_comment = %s"
            f" WHERE id = %s AND role = 'assistant' RETURNING {_MESSAGE_COLUMNS}",
            (rating, comment, message_id),
        )
        found = cur.fetchone()
    if found is None:
        msg = f"no stored answer has id {message_id}"
        raise NotFoundError(msg)
    return found

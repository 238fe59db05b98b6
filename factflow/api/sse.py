"""Server-sent event streams: execution events (LISTEN/NOTIFY) and storage writes.

Execution streams replay the `events` rows after `Last-Event-ID` (each SSE event's id is
the row id), then wait on `LISTEN factflow_events` (polling as a fallback) and end after
the execution's terminal event. Any server instance can serve any stream.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from anyio import to_thread
from psycopg_pool import ConnectionPool
from sse_starlette.sse import EventSourceResponse

from factflow.db.connection import connect_async
from factflow.db.repositories.events import EVENTS_CHANNEL, Event, list_events
from factflow.db.repositories.executions import STATUSES, TERMINAL, Execution, get_execution
from factflow.storage.base import StageStorage
from factflow.types import JsonDict

TERMINAL_EVENTS = frozenset(f"execution.{s}" for s in TERMINAL)
POLL_SECONDS = 1.0

SseEvent = dict[str, str]
SSE_MEDIA_TYPE = "text/event-stream"


class EventStream(EventSourceResponse):
    """`response_class` of the SSE routes: its media type is what the OpenAPI document
    gives their 200 (EventSourceResponse names none, so FastAPI would say JSON)."""

    media_type = SSE_MEDIA_TYPE


SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
"""One server-sent event: before OpenAPI 3.2 (no `itemSchema`) a `text/event-stream`
`schema` describes each event of the stream, not the stream as one string, and
schemathesis checks every event against it."""


def sse_responses(events: str) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` for a 200 that is a stream of server-sent `events`."""
    content = {SSE_MEDIA_TYPE: {"schema": SSE_EVENT_SCHEMA}}
    return {200: {"description": f"server-sent events: {events}", "content": content}}


def event_status(event_type: str) -> str | None:
    """The execution status an event type stands for (`execution.resumed` -> running)."""
    name = event_type.removeprefix("execution.")
    if name == "resumed" or name == "started":
        return "running"
    return name if name in STATUSES else None


def event_data(event: Event) -> JsonDict:
    return {
        "id": event.id,
        "type": event.type,
        "execution_id": str(event.execution_id) if event.execution_id else None,
        "status": event_status(event.type),
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


def _dump(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False)


async def execution_events(
    pool: ConnectionPool[Any],
    database_url: str,
    execution_id: uuid.UUID,
    *,
    last_event_id: int = 0,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[SseEvent]:
    """The SSE events of one execution, from after `last_event_id` to its terminal event.

    The first event (`status`, without an id) is the execution's current status.
    """

    def fetch(after: int) -> tuple[list[Event], Execution]:
        with pool.connection() as conn:
            return (
                list_events(conn, after_id=after, execution_id=execution_id, limit=500),
                get_execution(conn, execution_id),
            )

    listener = await connect_async(database_url)
    try:
        await listener.execute(f"LISTEN {EVENTS_CHANNEL}")
        after = last_event_id
        events, execution = await to_thread.run_sync(fetch, after)
        yield {
            "event": "status",
            "data": _dump({"execution_id": str(execution_id), "status": execution.status}),
        }
        while True:
            for event in events:
                after = event.id
                yield {"id": str(event.id), "event": event.type, "data": _dump(event_data(event))}
                if event.type in TERMINAL_EVENTS:
                    return
            if not events and execution.is_terminal:
                return  # the terminal event was before Last-Event-ID
            if disconnected is not None and await disconnected():
                return
            if not events:
                async for _ in listener.notifies(timeout=POLL_SECONDS, stop_after=1):
                    pass
            events, execution = await to_thread.run_sync(fetch, after)
    finally:
        await listener.close()


async def storage_events(
    pool: ConnectionPool[Any],
    storage: StageStorage,
    execution_id: uuid.UUID,
    *,
    route_id: str | None = None,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[SseEvent]:
    """`storage.object_created` for each new object of the execution (polled), until the
    execution is final and a last listing found nothing new."""
    prefix = f"executions/{execution_id}/" + (f"{route_id}/" if route_id else "")
    seen: set[str] = set()

    def scan() -> tuple[list[JsonDict], bool]:
        with pool.connection() as conn:
            terminal = get_execution(conn, execution_id).is_terminal
        new = []
        for info in storage.list(prefix):
            if info.key not in seen:
                seen.add(info.key)
                new.append(
                    {
                        "key": info.key,
                        "size": info.size,
                        "last_modified": info.last_modified.isoformat(),
                        "execution_id": str(execution_id),
                    }
                )
        return new, terminal

    import anyio

    while True:
        new, terminal = await to_thread.run_sync(scan)
        for item in new:
            yield {"id": item["key"], "event": "storage.object_created", "data": _dump(item)}
        if terminal and not new:
            yield {"event": "end", "data": _dump({"execution_id": str(execution_id)})}
            return
        if disconnected is not None and await disconnected():
            return
        await anyio.sleep(POLL_SECONDS)

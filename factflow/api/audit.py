"""The audit log's writer: an ASGI middleware that records every state-changing request.

A request is recorded when its method is unsafe (POST, PUT, PATCH, DELETE) and its route
does not merely read (a `:read` scope: the searches, `POST /configs/validate`), whatever
its outcome: done, refused (401, 403, 429) or failed. The row is written before the
response goes out, so whoever got an answer can find its record. Who is the principal the
route's scope dependency authenticated (`request.state.principal`), else the address a
login tried (`request.state.audit_actor`), else `anonymous`; what is the route's name
(`create_config`, `cancel_execution`, ...), the domain (`configs`) and the resource id
(a path parameter, or the id in a creation's response); where is the client's address.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from anyio import to_thread
from psycopg_pool import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from factflow.api.auth import SAFE_METHODS
from factflow.api.errors import correlation_id
from factflow.auth.principal import Principal
from factflow.auth.scopes import Scope as AuthScope
from factflow.db.repositories.audit import AuditRecord, insert_entry
from factflow.types import JsonDict

_log = logging.getLogger(__name__)
# a creation's response names what it made under one of these
_ID_FIELDS = ("id", "execution_id", "config_id")
_MAX_BODY = 1 << 20  # bigger bodies are not parsed for an id
_API_PREFIX = "/api/v1/"


def outcome_of(status: int) -> str:
    if status in (401, 403, 429):
        return "denied"
    return "success" if status < 400 else "failed"


def audited(state: Mapping[str, Any], method: str) -> bool:
    """Whether a request is recorded: an unsafe method on a route that is not a read."""
    if method.upper() in SAFE_METHODS or "required_scope" not in state:
        return False  # no API route matched (404, 405), or a safe method
    needed = state["required_scope"]
    return not (isinstance(needed, AuthScope) and needed.reads_only)


def _resource_type(path: str) -> str | None:
    if not path.startswith(_API_PREFIX):
        return None
    return path.removeprefix(_API_PREFIX).split("/", 1)[0] or None


def _from_body(body: bytes | None) -> JsonDict:
    if not body or len(body) > _MAX_BODY:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def build_record(scope: Scope, status: int, body: bytes | None) -> AuditRecord:
    state: Mapping[str, Any] = scope.get("state", {})
    principal: Principal | None = state.get("principal")
    route = scope.get("route")
    params: Mapping[str, Any] = scope.get("path_params", {})
    parsed = _from_body(body)
    resource_id = next((str(v) for k, v in params.items() if k.endswith("_id")), None)
    if resource_id is None and params:
        resource_id = str(next(iter(params.values())))
    if resource_id is None and status < 400:
        resource_id = next((str(parsed[f]) for f in _ID_FIELDS if parsed.get(f)), None)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client")
    error_code = parsed.get("error_code") if status >= 400 else None
    return AuditRecord(
        actor=principal.name if principal else str(state.get("audit_actor") or "anonymous"),
        actor_kind=principal.kind.value if principal else "anonymous",
        key_prefix=principal.key_prefix if principal else None,
        action=getattr(route, "name", None) or "unknown",
        method=scope["method"].upper(),
        path=scope["path"],
        resource_type=_resource_type(scope["path"]),
        resource_id=resource_id,
        status_code=status,
        outcome=outcome_of(status),
        error_code=str(error_code) if error_code else None,
        client_address=client[0] if client else None,
        user_agent=headers.get("user-agent", "")[:300] or None,
        correlation_id=correlation_id(),
    )


def _streams(start: Message) -> bool:
    headers: dict[bytes, bytes] = dict(start.get("headers", []))
    return headers.get(b"content-type", b"").startswith(b"text/event-stream")


def _insert(pool: ConnectionPool[Any], record: AuditRecord) -> None:
    with pool.connection() as conn:
        insert_entry(conn, record)


class AuditMiddleware:
    """Holds back an audited request's response until its audit row is written."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].upper() in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        written = False

        async def record(status: int, body: bytes | None) -> None:
            nonlocal written
            written = True
            if not audited(scope.get("state", {}), scope["method"]):
                return
            pool: ConnectionPool[Any] | None = getattr(scope["app"].state, "pool", None)
            if pool is None:
                return
            entry = build_record(scope, status, body)
            try:
                await to_thread.run_sync(_insert, pool, entry)
            except Exception:
                # the change is done; a lost row is logged loudly rather than the
                # answer turned into an error the client would retry
                _log.exception("audit log: could not record %s %s", entry.method, entry.path)

        async def send_audited(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and not written:
                if _streams(message):
                    # an SSE answer may take long to its first event: its headers (and
                    # the record, without a body to read an id from) go out now
                    await record(int(message["status"]), None)
                else:
                    held = message
                    return
            if message["type"] == "http.response.body" and held is not None:
                final = not message.get("more_body", False)
                await record(int(held["status"]), message.get("body", b"") if final else None)
                start, held = held, None
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            if not written:
                await record(500, None)
            raise

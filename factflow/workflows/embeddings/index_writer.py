"""`embedding_index`: the seed system's embedding storage, a writer (`- sink: {type:
embedding_index}`) that puts segments and their vectors into the Postgres search index.

Each batch is one transaction: the slots its messages name are created (or checked: a slot
bound to another model is a SlotMismatchError, which fails the run rather than mix two
models), segments are upserted by content hash with their vectors (COPY, then one merge),
and documents this execution has indexed completely lose their segments from earlier
executions. A batch written again after a crash changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from factflow.db.connection import DbConnection, connect
from factflow.db.exceptions import DatabaseNotConfiguredError
from factflow.db.migrate import migrate
from factflow.db.repositories.search_index import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_M,
    SegmentRow,
    ensure_slot,
    replace_documents,
    upsert_segments,
)
from factflow.messages import Message
from factflow.types import JsonDict, JsonSchema
from factflow.workflows.config import WorkflowConfig
from factflow.workflows.embeddings.errors import EmbeddingError
from factflow.writers.base import Writer, WriterContext


class IndexWriterConfig(WorkflowConfig):
    language: str = Field(
        default="english",
        pattern=r"^[a-z_]+$",
        description="Postgres text search configuration (english, simple, norwegian, ...)",
    )
    origin: str | None = Field(
        default=None, description="label of what was indexed (default: metadata.origin, or host)"
    )
    text_field: str = Field(default="text", description="payload field with the segment text")
    replace_documents: bool = Field(
        default=True, description="a re-ingested document's older segments are deleted"
    )
    hnsw_m: int = Field(default=DEFAULT_M, ge=2, le=100, description="HNSW m of new slots")
    hnsw_ef_construction: int = Field(
        default=DEFAULT_EF_CONSTRUCTION, ge=4, le=1000, description="HNSW ef_construction"
    )
    database_url: str | None = Field(
        default=None, description="default: the run's FACTFLOW_DATABASE_URL"
    )


class EmbeddingIndexWriter(Writer):
    name: ClassVar[str] = "embedding_index"
    config_schema: ClassVar[JsonSchema] = IndexWriterConfig.model_json_schema()

    def __init__(self, config: JsonDict, context: WriterContext) -> None:
        super().__init__(config, context)
        self.settings = IndexWriterConfig.model_validate(config)
        url = self.settings.database_url or context.database_url
        if url is None:
            msg = (
                f"sink embedding_index of route '{context.route_id}' needs Postgres: set "
                "FACTFLOW_DATABASE_URL (or the sink's `database_url`)"
            )
            raise DatabaseNotConfiguredError(msg)
        self._url = url
        self._conn: DbConnection | None = None
        self._slots: dict[str, tuple[str, int]] = {}

    def _connection(self) -> DbConnection:
        if self._conn is None or self._conn.closed:
            conn = connect(self._url)
            migrate(conn)
            self._conn = conn
            self._slots.clear()
        return self._conn

    def write_batch(self, messages: list[Message]) -> None:
        rows = [self.row(m) for m in messages]
        if not rows:
            return
        conn = self._connection()
        for message in messages:
            self._check_slots(conn, message)
        upsert_segments(conn, rows)
        if self.settings.replace_documents:
            expected: dict[str, int | None] = {}
            for message, row in zip(messages, rows, strict=True):
                count = _payload(message).get("segment_count")
                expected[row.document_key] = count if isinstance(count, int) else None
            replace_documents(conn, self.context.execution_id, expected)

    def _check_slots(self, conn: DbConnection, message: Message) -> None:
        for slot, item in _embeddings(message).items():
            model, dims = str(item.get("model", "")), len(item["vector"])
            if self._slots.get(slot) == (model, dims):
                continue
            ensure_slot(
                conn,
                slot,
                model,
                str(item.get("backend", "local")),
                dims,
                m=self.settings.hnsw_m,
                ef_construction=self.settings.hnsw_ef_construction,
            )
            self._slots[slot] = (model, dims)

    def row(self, message: Message) -> SegmentRow:
        payload, meta = _payload(message), message.metadata
        text = payload.get(self.settings.text_field)
        if not isinstance(text, str) or not text.strip():
            field = self.settings.text_field
            msg = f"message {message.message_id} has no segment text in {field!r}"
            raise EmbeddingError(msg)
        url = _str(payload.get("url") or meta.get("url"))
        document_id = _str(payload.get("document_id") or meta.get("document_id"))
        title = _str(payload.get("title") or meta.get("title")) or ""
        headings = payload.get("heading_path") or meta.get("heading_path") or []
        heading_path = tuple(str(h) for h in headings) if isinstance(headings, list) else ()
        document_key = document_id or url or message.message_id
        digest = hashlib.sha256(
            "\x00".join((document_key, title, "\x1f".join(heading_path), text)).encode()
        ).hexdigest()
        return SegmentRow(
            content_hash=digest,
            document_key=document_key,
            text=text,
            execution_id=self.context.execution_id,
            message_id=message.message_id,
            language=self.settings.language,
            document_id=document_id,
            url=url,
            title=title,
            heading_path=heading_path,
            segment_index=_int(payload.get("index")),
            token_count=_int(payload.get("token_count")),
            origin=self.settings.origin or _str(meta.get("origin")) or _host(url),
            route_id=self.context.route_id,
            lineage_id=message.correlation_id,
            storage_key=_str(
                payload.get("storage_key") or payload.get("segments_key") or meta.get("storage_key")
            ),
            metadata={k: v for k, v in meta.items() if k != "heading_path"},
            vectors={slot: list(item["vector"]) for slot, item in _embeddings(message).items()},
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _payload(message: Message) -> JsonDict:
    return message.payload if isinstance(message.payload, dict) else {}


def _embeddings(message: Message) -> dict[str, Any]:
    found = _payload(message).get("embeddings") or {}
    if not isinstance(found, dict):
        return {}
    return {
        slot: item
        for slot, item in found.items()
        if isinstance(item, dict) and isinstance(item.get("vector"), list)
    }


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None

"""The search index: embedding slots, segments with their vectors, and their statistics.

A slot is a name bound to one model and one vector size. Its vectors live in
`search_vectors_<slot>` (vector(<dimensions>), an HNSW index on cosine distance), made with
the slot; segments are shared by every slot. Writes are upserts keyed by the segment's
content hash, loaded with COPY into a session temp table and merged in one statement, so a
batch written again after a crash changes nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.db.exceptions import ConflictError, NotFoundError
from factflow.slots import MAX_DIMENSIONS, check_slot_name
from factflow.types import JsonDict

BACKENDS = ("local", "litellm")
DEFAULT_M, DEFAULT_EF_CONSTRUCTION = 16, 64
GIN_PENDING_LIST_KB = 256


class UnknownSlotError(NotFoundError):
    """No embedding slot has this name: `GET /api/v1/search/capabilities` (or `factflow
    index list`) lists the slots; a pipeline's `embedding_generator` creates them."""


class SlotMismatchError(ConflictError):
    """A slot already holds vectors of another model or size.

    Vectors of two models are not comparable, so a slot never mixes them: give the new
    model a slot of its own, or drop the old slot (`factflow index drop SLOT`) and ingest
    again.
    """


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    model: str
    backend: str
    dimensions: int
    hnsw_m: int = DEFAULT_M
    hnsw_ef_construction: int = DEFAULT_EF_CONSTRUCTION
    created_at: datetime | None = None

    @property
    def table(self) -> sql.Identifier:
        return vectors_table(self.name)


def vectors_table(slot: str) -> sql.Identifier:
    return sql.Identifier(f"search_vectors_{check_slot_name(slot)}")


_SLOT_COLUMNS = "name, model, backend, dimensions, hnsw_m, hnsw_ef_construction, created_at"


def list_slots(conn: DbConnection) -> list[Slot]:
    rows = conn.execute(f"SELECT {_SLOT_COLUMNS} FROM search_slots ORDER BY name").fetchall()
    return [Slot(*row) for row in rows]


def get_slot(conn: DbConnection, name: str) -> Slot:
    row = conn.execute(
        f"SELECT {_SLOT_COLUMNS} FROM search_slots WHERE name = %s", (name,)
    ).fetchone()
    if row is None:
        known = ", ".join(s.name for s in list_slots(conn)) or "none yet"
        msg = f"no embedding slot {name!r} (slots: {known})"
        raise UnknownSlotError(msg)
    return Slot(*row)


def ensure_slot(
    conn: DbConnection,
    name: str,
    model: str,
    backend: str,
    dimensions: int,
    *,
    m: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
) -> Slot:
    """The slot `name`, created (with its vectors table and HNSW index) when new.

    Raises SlotMismatchError when it exists with another model or size. Safe to call from
    many workers at once: creating a slot holds a lock on its name.
    """
    check_slot_name(name)
    if backend not in BACKENDS:
        msg = f"backend {backend!r} is not one of {', '.join(BACKENDS)}"
        raise ValueError(msg)
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        msg = f"{dimensions} dimensions: a slot holds 1 to {MAX_DIMENSIONS} (HNSW's limit)"
        raise ValueError(msg)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"factflow-slot:{name}",))
        row = conn.execute(
            f"SELECT {_SLOT_COLUMNS} FROM search_slots WHERE name = %s", (name,)
        ).fetchone()
        if row is not None:
            slot = Slot(*row)
            if (slot.model, slot.dimensions) != (model, dimensions):
                msg = (
                    f"slot {name!r} holds vectors of {slot.model} ({slot.dimensions} "
                    f"dimensions); this pipeline embeds with {model} ({dimensions}): use "
                    f"another slot name, or drop the slot (`factflow index drop {name}`) first"
                )
                raise SlotMismatchError(msg)
            return slot
        conn.execute(
            "INSERT INTO search_slots (name, model, backend, dimensions, hnsw_m,"
            " hnsw_ef_construction) VALUES (%s, %s, %s, %s, %s, %s)",
            (name, model, backend, dimensions, m, ef_construction),
        )
        table = vectors_table(name)
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (segment_id bigint PRIMARY KEY"
                " REFERENCES search_segments (id) ON DELETE CASCADE,"
                " embedding vector({}) NOT NULL)"
            ).format(table, sql.Literal(dimensions))
        )
        _create_hnsw(conn, name, m, ef_construction)
    return get_slot(conn, name)


def _create_hnsw(conn: DbConnection, slot: str, m: int, ef_construction: int) -> None:
    conn.execute(
        sql.SQL(
            "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops)"
            " WITH (m = {}, ef_construction = {})"
        ).format(
            sql.Identifier(f"search_vectors_{slot}_hnsw"),
            vectors_table(slot),
            sql.Literal(m),
            sql.Literal(ef_construction),
        )
    )


@contextmanager
def bulk_load(
    conn: DbConnection, slots: Sequence[str], *, maintenance_work_mem: str = "1GB"
) -> Iterator[None]:
    """A bulk load into the index: the slots' HNSW indexes are dropped for the block and
    built once after it (with their recorded `m` / `ef_construction`), then the full-text
    index's pending list is merged and the tables analysed.

    Inserting into an HNSW graph costs a graph search per vector (milliseconds each at
    100k vectors); building the graph from the loaded table costs a fraction of that.
    Meant for large loads (a first index, a rebuild): while the block runs, semantic
    searches in these slots scan every vector (exact, slower). The indexes are built
    again when the block raises, too.
    """
    found = [get_slot(conn, name) for name in dict.fromkeys(slots)]
    for slot in found:
        index = sql.Identifier(f"search_vectors_{slot.name}_hnsw")
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(index))
    try:
        yield
    finally:
        # the graph must fit in maintenance_work_mem, or the build slows down many times
        previous = conn.execute("SHOW maintenance_work_mem").fetchone()
        conn.execute(
            sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem))
        )
        try:
            for slot in found:
                _create_hnsw(conn, slot.name, slot.hnsw_m, slot.hnsw_ef_construction)
        finally:
            if previous is not None:
                conn.execute(
                    sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(previous[0]))
                )
        # a search reads the GIN pending list row by row: merge what the load left there
        conn.execute("SELECT gin_clean_pending_list('search_segments_tsv'::regclass)")
        conn.execute("ANALYZE search_segments")
        for slot in found:
            conn.execute(sql.SQL("ANALYZE {}").format(slot.table))


def drop_slot(conn: DbConnection, name: str) -> None:
    """Drop the slot and its vectors (segments stay, for keyword search and other slots)."""
    get_slot(conn, name)
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(vectors_table(name)))
        conn.execute("DELETE FROM search_slots WHERE name = %s", (name,))


def reindex_slot(conn: DbConnection, name: str, *, m: int, ef_construction: int) -> Slot:
    """Rebuild the slot's HNSW index with these build parameters."""
    get_slot(conn, name)
    with conn.transaction():
        index = sql.Identifier(f"search_vectors_{name}_hnsw")
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(index))
        _create_hnsw(conn, name, m, ef_construction)
        conn.execute(
            "UPDATE search_slots SET hnsw_m = %s, hnsw_ef_construction = %s WHERE name = %s",
            (m, ef_construction, name),
        )
    return get_slot(conn, name)


@dataclass(frozen=True, slots=True)
class SlotStats:
    slot: Slot
    vectors: int
    table_bytes: int
    index_bytes: int


def slot_stats(conn: DbConnection, name: str) -> SlotStats:
    slot = get_slot(conn, name)
    table = f"search_vectors_{name}"
    count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(slot.table)).fetchone()
    sizes = conn.execute(
        "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", (table, table)
    ).fetchone()
    assert count is not None and sizes is not None
    return SlotStats(slot, int(count[0]), int(sizes[0]), int(sizes[1]))


@dataclass(frozen=True, slots=True)
class IndexStats:
    segments: int
    documents: int
    table_bytes: int
    index_bytes: int


def index_stats(conn: DbConnection) -> IndexStats:
    row = conn.execute(
        "SELECT count(*), count(DISTINCT document_key),"
        " pg_table_size('search_segments'), pg_indexes_size('search_segments')"
        " FROM search_segments"
    ).fetchone()
    assert row is not None
    return IndexStats(*(int(v) for v in row))


@dataclass(frozen=True, slots=True)
class Source:
    origin: str
    segments: int
    documents: int
    last_indexed_at: datetime


def list_sources(conn: DbConnection) -> list[Source]:
    rows = conn.execute(
        "SELECT coalesce(origin, ''), count(*), count(DISTINCT document_key), max(indexed_at)"
        " FROM search_segments GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    return [Source(*row) for row in rows]


# -- writes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """One segment to index, with its vectors by slot."""

    content_hash: str
    document_key: str
    text: str
    execution_id: str
    message_id: str
    language: str = "english"
    document_id: str | None = None
    url: str | None = None
    title: str = ""
    heading_path: tuple[str, ...] = ()
    segment_index: int | None = None
    token_count: int | None = None
    origin: str | None = None
    route_id: str | None = None
    lineage_id: str | None = None
    storage_key: str | None = None
    metadata: JsonDict = field(default_factory=dict)
    vectors: dict[str, list[float]] = field(default_factory=dict)


_SEGMENT_COLUMNS = (
    "content_hash", "document_key", "document_id", "url", "title", "heading_path", "headings",
    "text", "segment_index", "token_count", "origin", "execution_id", "route_id", "message_id",
    "lineage_id", "storage_key", "metadata", "language",
)  # fmt: skip


def _segment_values(row: SegmentRow) -> tuple[Any, ...]:
    return (
        row.content_hash, row.document_key, row.document_id, row.url, row.title,
        list(row.heading_path), " ".join(row.heading_path), row.text, row.segment_index,
        row.token_count, row.origin, row.execution_id, row.route_id, row.message_id,
        row.lineage_id, row.storage_key, Jsonb(row.metadata), row.language,
    )  # fmt: skip


def _prepare_temp_tables(conn: DbConnection) -> None:
    # per session; emptied at every commit, so each batch starts from nothing
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS _ff_segments ON COMMIT DELETE ROWS"
            " AS SELECT {} FROM search_segments WITH NO DATA"
        ).format(sql.SQL(", ").join(sql.Identifier(c) for c in _SEGMENT_COLUMNS))
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _ff_vectors"
        " (content_hash text NOT NULL, slot text NOT NULL, embedding vector NOT NULL)"
        " ON COMMIT DELETE ROWS"
    )


def upsert_segments(conn: DbConnection, rows: Sequence[SegmentRow]) -> int:
    """Index `rows` in one transaction; returns how many segments were new or moved to
    this execution (0 when the batch was written before). Every slot named in
    `rows[i].vectors` must exist (`ensure_slot`)."""
    if not rows:
        return 0
    unique = {row.content_hash: row for row in rows}  # a batch may repeat a segment
    with conn.transaction():
        # a search reads the full-text index's pending list row by row (12 ms at its 4 MB
        # default, for 20k segments): the writer that fills it past 256 kB merges it
        conn.execute(f"SET LOCAL gin_pending_list_limit = {GIN_PENDING_LIST_KB}")
        _prepare_temp_tables(conn)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in _SEGMENT_COLUMNS)
        with conn.cursor().copy(
            sql.SQL("COPY _ff_segments ({}) FROM STDIN").format(columns)
        ) as copy:
            for row in unique.values():
                copy.write_row(_segment_values(row))
        slots = {slot for row in unique.values() for slot in row.vectors}
        with conn.cursor().copy("COPY _ff_vectors FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_BINARY_HEADER)
            for row in unique.values():
                copy.write(_vector_tuples(row))
            copy.write(_BINARY_TRAILER)
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
            for c in _SEGMENT_COLUMNS
            if c != "content_hash"
        )
        cur = conn.execute(
            sql.SQL(
                "INSERT INTO search_segments ({cols}) SELECT {cols} FROM _ff_segments"
                " ON CONFLICT (content_hash) DO UPDATE SET {updates}, indexed_at = now()"
                # a batch written again changes nothing: same segment, same execution
                " WHERE search_segments.execution_id IS DISTINCT FROM EXCLUDED.execution_id"
            ).format(cols=columns, updates=updates)
        )
        changed = cur.rowcount
        for slot in sorted(slots):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (segment_id, embedding)"
                    " SELECT s.id, v.embedding FROM _ff_vectors v"
                    " JOIN search_segments s USING (content_hash) WHERE v.slot = %s"
                    " ON CONFLICT (segment_id) DO NOTHING"
                ).format(vectors_table(slot)),
                (slot,),
            )
    return max(changed, 0)


# COPY's binary format (the COPY page of the Postgres docs): a signature, flags and header
# extension length, then per tuple its field count and each field as length + bytes, then
# -1. Vectors go in pgvector's binary form (dimensions, a reserved 0, big-endian float4s):
# formatting 384 floats as text cost more than the whole write of a segment.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_BINARY_TRAILER = struct.pack(">h", -1)


def _vector_tuples(row: SegmentRow) -> bytes:
    """The row's (content_hash, slot, embedding) tuples, one per slot, in binary COPY form."""
    digest = row.content_hash.encode()
    parts: list[bytes] = []
    for slot, vector in row.vectors.items():
        name = slot.encode()
        body = struct.pack(f">HH{len(vector)}f", len(vector), 0, *vector)
        parts.append(
            struct.pack(">hi", 3, len(digest)) + digest
            + struct.pack(">i", len(name)) + name
            + struct.pack(">i", len(body)) + body
        )  # fmt: skip
    return b"".join(parts)


def replace_documents(
    conn: DbConnection, execution_id: str, expected: dict[str, int | None]
) -> int:
    """Remove older segments of documents this execution has indexed completely.

    `expected` maps a document key to its segment count (None: unknown, so the document
    counts as complete now). A document is complete when the execution has indexed that
    many of its segments; its segments from other executions are then deleted (with their
    vectors), so a re-ingested page leaves no stale hits. Returns the rows deleted.
    """
    if not expected:
        return 0
    keys = sorted(expected)
    counts = dict(
        conn.execute(
            "SELECT document_key, count(*) FROM search_segments"
            " WHERE document_key = ANY(%s) AND execution_id = %s GROUP BY 1",
            (keys, execution_id),
        ).fetchall()
    )
    done = [k for k in keys if expected[k] is None or counts.get(k, 0) >= (expected[k] or 0)]
    if not done:
        return 0
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM search_segments WHERE document_key = ANY(%s) AND execution_id <> %s",
            (done, execution_id),
        )
    return max(cur.rowcount, 0)

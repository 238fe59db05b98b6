"""The index's write paths on a real Postgres with pgvector: vectors sent by binary COPY
arrive exactly (as float4), and a bulk load builds each slot's HNSW index once at the end,
also when the load fails half-way."""

from __future__ import annotations

import struct
import uuid

import psycopg
import pytest

from factflow.db.connection import DbConnection, connect
from factflow.db.repositories.search_index import (
    SegmentRow,
    bulk_load,
    ensure_slot,
    upsert_segments,
)
from factflow.db.repositories.search_queries import ranked_search

pytestmark = pytest.mark.integration

DIMENSIONS = 4


def _row(n: int, vector: list[float]) -> SegmentRow:
    return SegmentRow(
        content_hash=f"hash-{n}",
        document_key=f"doc-{n}",
        text=f"segment {n} about topic{n}",
        execution_id="writes",
        message_id=str(uuid.uuid4()),
        url=f"http://docs.test/{n}",
        vectors={"default": vector},
    )


def _hnsw_indexes(conn: DbConnection) -> list[str]:
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'search_vectors_default'"
        " AND indexdef LIKE '%hnsw%'"
    ).fetchall()
    return [r[0] for r in rows]


def test_vectors_arrive_exactly_as_float4(index_db: str) -> None:
    vectors = [[0.1, -2.5, 3.0e-8, 1234.5678], [1.0, 0.0, -0.0, 7.25]]
    with connect(index_db) as conn:
        ensure_slot(conn, "default", "synthetic", "local", DIMENSIONS)
        assert upsert_segments(conn, [_row(n, v) for n, v in enumerate(vectors)]) == 2
        stored = conn.execute(
            "SELECT s.content_hash, v.embedding::real[]::float8[] FROM search_segments s"
            " JOIN search_vectors_default v ON v.segment_id = s.id ORDER BY 1"
        ).fetchall()
    as_float4 = [list(struct.unpack(">4f", struct.pack(">4f", *v))) for v in vectors]
    assert [list(r[1]) for r in stored] == as_float4


def test_a_vector_of_the_wrong_size_is_refused_and_nothing_is_written(index_db: str) -> None:
    with connect(index_db) as conn:
        ensure_slot(conn, "default", "synthetic", "local", DIMENSIONS)
        with pytest.raises(psycopg.errors.DataException, match="expected 4 dimensions, not 3"):
            upsert_segments(conn, [_row(0, [1.0, 2.0, 3.0])])
        assert conn.execute("SELECT count(*) FROM search_segments").fetchone() == (0,)


def test_bulk_load_builds_the_hnsw_index_after_the_rows(index_db: str) -> None:
    with connect(index_db) as conn:
        ensure_slot(conn, "default", "synthetic", "local", DIMENSIONS)
        with bulk_load(conn, ["default"]):
            assert _hnsw_indexes(conn) == [], "no graph is kept up while loading"
            upsert_segments(conn, [_row(n, [1.0, float(n), 0.5, -1.0]) for n in range(200)])
        assert _hnsw_indexes(conn) == ["search_vectors_default_hnsw"]
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")  # 200 rows: a scan is cheaper
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN SELECT segment_id FROM search_vectors_default"
                    " ORDER BY embedding <=> '[1,3,0.5,-1]' LIMIT 5"
                ).fetchall()
            )
        hits = ranked_search(
            conn, query="topic3", language="english", slot="default",
            vector=[1.0, 3.0, 0.5, -1.0], use_keyword=True, limit=3,
        )  # fmt: skip
    assert "search_vectors_default_hnsw" in plan
    assert hits[0].url == "http://docs.test/3"
    assert hits[0].semantic_rank == 1 and hits[0].keyword_rank == 1


def test_a_failed_bulk_load_still_rebuilds_the_index(index_db: str) -> None:
    with connect(index_db) as conn:
        ensure_slot(conn, "default", "synthetic", "local", DIMENSIONS)
        with pytest.raises(RuntimeError, match="load failed"), bulk_load(conn, ["default"]):
            upsert_segments(conn, [_row(1, [1.0, 1.0, 1.0, 1.0])])
            msg = "load failed"
            raise RuntimeError(msg)
        assert _hnsw_indexes(conn) == ["search_vectors_default_hnsw"]

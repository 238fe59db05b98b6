"""Ranked queries over the search index: vector (HNSW cosine), keyword (full text), and
both fused in one statement (two ranked CTEs, then reciprocal rank or a weighted sum of
scores), as pgvector-python's hybrid search example does it.

Keyword search matches any of the query's words (stemmed, stop words dropped), ranked by
`ts_rank_cd` over the weighted tsvector (title above headings above text), so a question
does not have to contain every word of the passage that answers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import sql
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.db.repositories.search_index import vectors_table
from factflow.types import JsonDict

Fusion = Literal["rrf", "weighted"]


@dataclass(frozen=True, slots=True)
class Filters:
    """Conditions every hit must meet; empty fields are not applied."""

    url_prefix: str | None = None
    origin: str | None = None
    execution_id: str | None = None
    document_id: str | None = None
    metadata: JsonDict = field(default_factory=dict)
    """Hits whose metadata contains these key/value pairs."""

    def clause(self) -> tuple[sql.Composable, JsonDict]:
        parts: list[sql.Composable] = [sql.SQL("TRUE")]
        params: JsonDict = {}
        if self.url_prefix:
            # LIKE with the prefix's own wildcards escaped
            escaped = self.url_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            parts.append(sql.SQL("s.url LIKE %(f_url)s"))
            params["f_url"] = escaped + "%"
        for column in ("origin", "execution_id", "document_id"):
            value = getattr(self, column)
            if value:
                parts.append(
                    sql.SQL("s.{} = %({})s").format(sql.Identifier(column), sql.SQL("f_" + column))
                )
                params[f"f_{column}"] = value
        if self.metadata:
            parts.append(sql.SQL("s.metadata @> %(f_metadata)s"))
            params["f_metadata"] = Jsonb(self.metadata)
        return sql.SQL(" AND ").join(parts), params


@dataclass(frozen=True, slots=True)
class RankedHit:
    """One segment with its fused score and each component's rank and score (None when
    the segment was not among that component's candidates)."""

    segment_id: int
    score: float
    semantic_rank: int | None
    semantic_score: float | None
    keyword_rank: int | None
    keyword_score: float | None
    url: str | None
    title: str
    heading_path: list[str]
    text: str
    snippet: str
    document_id: str | None
    origin: str | None
    execution_id: str
    lineage_id: str | None
    storage_key: str | None
    metadata: JsonDict


def _vector(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


_ANY_WORD = (
    "(SELECT CASE WHEN p::text = '' THEN p ELSE to_tsquery('simple',"
    " replace(p::text, ' & ', ' | ')) END FROM plainto_tsquery(%(lang)s::regconfig, %(q)s) p)"
)
"""The query's words OR-ed (plainto_tsquery ANDs them); re-read with `simple`, since its
lexemes are stemmed already."""

_SEMANTIC = """
semantic AS (
    SELECT id, row_number() OVER (ORDER BY distance) AS rank, 1 - distance AS score
    FROM (
        SELECT v.segment_id AS id, v.embedding <=> %(vec)s::vector AS distance
        FROM {vectors} v JOIN search_segments s ON s.id = v.segment_id
        WHERE {where}
        ORDER BY v.embedding <=> %(vec)s::vector
        LIMIT %(candidates)s
    ) nearest
)"""

_KEYWORD = """
keyword AS (
    SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank, score
    FROM (
        SELECT s.id, ts_rank_cd(s.tsv, query) AS score
        FROM search_segments s, tsq
        WHERE s.tsv @@ query AND {where}
        ORDER BY score DESC, s.id
        LIMIT %(candidates)s
    ) matched
)"""

_EMPTY_SEMANTIC = "semantic AS (SELECT NULL::bigint AS id, NULL::bigint AS rank,"
_EMPTY_SEMANTIC += " NULL::float8 AS score WHERE FALSE)"
_EMPTY_KEYWORD = _EMPTY_SEMANTIC.replace("semantic", "keyword")


def ranked_search(
    conn: DbConnection,
    *,
    query: str,
    language: str,
    slot: str | None,
    vector: Sequence[float] | None,
    use_keyword: bool,
    fusion: Fusion = "rrf",
    k: int = 60,
    vector_weight: float = 1.0,
    keyword_weight: float = 1.0,
    candidates: int = 50,
    limit: int = 10,
    offset: int = 0,
    filters: Filters | None = None,
    ef_search: int | None = None,
) -> list[RankedHit]:
    """Semantic (a slot and its query vector), keyword (`use_keyword`) or both, fused.

    `fusion="rrf"` scores a hit `sum(weight / (k + rank))` over the components it is in;
    `"weighted"` scores it `vector_weight * cosine similarity + keyword_weight * its
    keyword score over the best keyword score`. One component alone ranks by its score.
    """
    where, params = (filters or Filters()).clause()
    params.update(
        q=query, lang=language, k=k, wv=vector_weight, wk=keyword_weight,
        candidates=candidates, limit=limit, offset=offset,
    )  # fmt: skip
    ctes: list[sql.Composable] = [sql.SQL("tsq AS (SELECT " + _ANY_WORD + " AS query)")]
    semantic = slot is not None and vector is not None
    if semantic:
        assert slot is not None and vector is not None
        params["vec"] = _vector(vector)
        ctes.append(sql.SQL(_SEMANTIC).format(vectors=vectors_table(slot), where=where))
    else:
        ctes.append(sql.SQL(_EMPTY_SEMANTIC))
    ctes.append(sql.SQL(_KEYWORD).format(where=where) if use_keyword else sql.SQL(_EMPTY_KEYWORD))
    if fusion == "weighted":
        fused = (
            "coalesce(%(wv)s * sem.score, 0) + coalesce(%(wk)s * kw.score"
            " / nullif((SELECT max(score) FROM keyword), 0), 0)"
        )
    else:
        fused = "coalesce(%(wv)s / (%(k)s + sem.rank), 0) + coalesce(%(wk)s / (%(k)s + kw.rank), 0)"
    if semantic != use_keyword:  # one component: its own score orders the hits
        fused = "coalesce(sem.score, kw.score)"
    statement = sql.SQL(
        "WITH {ctes},"
        " fused AS (SELECT coalesce(sem.id, kw.id) AS id, " + fused + " AS score,"
        " sem.rank AS sem_rank, sem.score AS sem_score, kw.rank AS kw_rank, kw.score AS kw_score"
        " FROM semantic sem FULL OUTER JOIN keyword kw ON sem.id = kw.id)"
        " SELECT f.id, f.score, f.sem_rank, f.sem_score, f.kw_rank, f.kw_score,"
        " s.url, s.title, s.heading_path, s.text,"
        " ts_headline(s.language, s.text, tsq.query,"
        " 'StartSel=**, StopSel=**, MaxWords=40, MinWords=20, MaxFragments=2'),"
        " s.document_id, s.origin, s.execution_id, s.lineage_id, s.storage_key, s.metadata"
        " FROM fused f JOIN search_segments s ON s.id = f.id, tsq"
        " ORDER BY f.score DESC, f.id LIMIT %(limit)s OFFSET %(offset)s"
    ).format(ctes=sql.SQL(", ").join(ctes))
    if not semantic:
        return [_hit(row) for row in conn.execute(statement, params).fetchall()]
    # candidates beyond HNSW's default 40 need a wider search; filters need the iterative
    # scan, or a filtered search would return fewer than asked. Pipelined: BEGIN, the two
    # settings and the query go in one round trip (a busy server answers each late)
    with conn.pipeline(), conn.transaction():
        conn.execute(
            sql.SQL("SET LOCAL hnsw.ef_search = {}").format(
                sql.Literal(max(ef_search or 40, min(candidates, 1000)))
            )
        )
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = conn.execute(statement, params).fetchall()
    return [_hit(row) for row in rows]


def _hit(row: Sequence[Any]) -> RankedHit:
    return RankedHit(
        segment_id=int(row[0]),
        score=float(row[1]),
        semantic_rank=None if row[2] is None else int(row[2]),
        semantic_score=None if row[3] is None else float(row[3]),
        keyword_rank=None if row[4] is None else int(row[4]),
        keyword_score=None if row[5] is None else float(row[5]),
        url=row[6],
        title=row[7],
        heading_path=list(row[8]),
        text=row[9],
        snippet=row[10],
        document_id=row[11],
        origin=row[12],
        execution_id=row[13],
        lineage_id=row[14],
        storage_key=row[15],
        metadata=dict(row[16]),
    )


def text_search_languages(conn: DbConnection) -> list[str]:
    """The server's text search configurations (what `language` may be)."""
    return [r[0] for r in conn.execute("SELECT cfgname FROM pg_ts_config ORDER BY 1").fetchall()]

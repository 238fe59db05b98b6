"""The search service: checks a request, embeds its query with the slot's model, runs
the ranked query, and merges slots for multi-model search.

Every method takes the connection; nothing here knows HTTP. A hit carries what a
citation needs (url, title, heading path, text, the lineage row id) and how it ranked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from factflow.db.connection import DbConnection
from factflow.db.repositories import search_index as index
from factflow.db.repositories.search_queries import (
    Filters,
    Fusion,
    RankedHit,
    ranked_search,
    text_search_languages,
)
from factflow.db.repositories.usage import record_usage
from factflow.search.embedder import QueryEmbedder
from factflow.search.exceptions import BadSearchRequestError, SearchUnavailableError

MAX_LIMIT = 100
MAX_CANDIDATES = 1000
MAX_OFFSET = 10_000
MAX_QUERY_CHARS = 2000
DEFAULT_K = 60
DEFAULT_LANGUAGE = "english"


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """What every search mode takes (the seed system's RRF request fields)."""

    query: str
    slot: str | None = None
    """The slot (the seed system's `model`); default: `default`, or the only slot."""
    language: str = DEFAULT_LANGUAGE
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    k: int = DEFAULT_K
    candidates: int = 50
    limit: int = 10
    offset: int = 0
    filters: Filters = field(default_factory=Filters)
    thread_id: uuid.UUID | None = None
    """Chat: the thread (and `message_id`, the answer) the query embedding is booked to."""
    message_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ModelScore:
    rank: int
    score: float


@dataclass(frozen=True, slots=True)
class SearchHit:
    hit: RankedHit
    models: dict[str, ModelScore] = field(default_factory=dict)
    """Multi-model search: each slot's rank and cosine similarity for this hit."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    mode: str
    query: str
    slots: list[str]
    hits: list[SearchHit]


class SearchService:
    def __init__(self, embedder: QueryEmbedder) -> None:
        self.embedder = embedder

    # -- modes ---------------------------------------------------------------------

    def semantic(self, conn: DbConnection, options: SearchOptions) -> SearchResult:
        return self._search(conn, options, "semantic", semantic=True, keyword=False, fusion="rrf")

    def keyword(self, conn: DbConnection, options: SearchOptions) -> SearchResult:
        return self._search(conn, options, "keyword", semantic=False, keyword=True, fusion="rrf")

    def hybrid(self, conn: DbConnection, options: SearchOptions) -> SearchResult:
        return self._search(conn, options, "hybrid", semantic=True, keyword=True, fusion="weighted")

    def rrf(self, conn: DbConnection, options: SearchOptions) -> SearchResult:
        return self._search(conn, options, "rrf", semantic=True, keyword=True, fusion="rrf")

    def multi_model(
        self, conn: DbConnection, options: SearchOptions, slots: Sequence[str] | None
    ) -> SearchResult:
        """Semantic search in each slot (default: every slot), merged by reciprocal rank;
        each hit keeps every slot's rank and score."""
        self._check(conn, options)
        names = list(slots) if slots else [s.name for s in index.list_slots(conn)]
        if not names:
            raise _no_index()
        if len(set(names)) != len(names):
            msg = f"slots are named twice: {names}"
            raise BadSearchRequestError(msg)
        wide = replace(options, limit=min(options.candidates, MAX_CANDIDATES), offset=0)
        fused: dict[int, float] = {}
        found: dict[int, RankedHit] = {}
        models: dict[int, dict[str, ModelScore]] = {}
        for name in names:
            slot = self._slot(conn, name)
            vector = self._embed(conn, slot, [options.query], options)[0]
            hits = _run(conn, wide, slot.name, vector, keyword=False)
            for rank, hit in enumerate(hits, start=1):
                fused[hit.segment_id] = fused.get(hit.segment_id, 0.0) + 1 / (options.k + rank)
                found.setdefault(hit.segment_id, hit)
                models.setdefault(hit.segment_id, {})[name] = ModelScore(rank, hit.score)
        order = sorted(fused, key=lambda i: (-fused[i], i))
        page = order[options.offset : options.offset + options.limit]
        out = [SearchHit(replace(found[i], score=fused[i]), models[i]) for i in page]
        return SearchResult("multi-model", options.query, names, out)

    # -- what there is -------------------------------------------------------------

    def capabilities(self, conn: DbConnection) -> tuple[list[index.Slot], list[str]]:
        return index.list_slots(conn), text_search_languages(conn)

    def embed(
        self, conn: DbConnection, slot_name: str | None, texts: list[str]
    ) -> tuple[index.Slot, list[list[float]]]:
        if not texts or any(not t.strip() for t in texts):
            msg = "give at least one text, none of them empty"
            raise BadSearchRequestError(msg)
        slot = self._default_slot(conn, slot_name)
        return slot, self._embed(conn, slot, texts, None)

    # -- internals -----------------------------------------------------------------

    def _embed(
        self, conn: DbConnection, slot: index.Slot, texts: list[str], options: SearchOptions | None
    ) -> list[list[float]]:
        vectors, usage = self.embedder.embed(slot, texts)
        if options is not None:
            usage = replace(usage, thread_id=options.thread_id, message_id=options.message_id)
        record_usage(conn, [usage])
        return vectors

    def _search(
        self,
        conn: DbConnection,
        options: SearchOptions,
        mode: str,
        *,
        semantic: bool,
        keyword: bool,
        fusion: Fusion,
    ) -> SearchResult:
        self._check(conn, options)
        slot_name: str | None = None
        vector: list[float] | None = None
        if semantic:
            slot = self._default_slot(conn, options.slot)
            slot_name = slot.name
            vector = self._embed(conn, slot, [options.query], options)[0]
        hits = _run(conn, options, slot_name, vector, keyword=keyword, fusion=fusion)
        return SearchResult(
            mode, options.query, [slot_name] if slot_name else [], [SearchHit(h) for h in hits]
        )

    def _check(self, conn: DbConnection, options: SearchOptions) -> None:
        problems: list[str] = []
        if not options.query.strip():
            problems.append("query is empty")
        if len(options.query) > MAX_QUERY_CHARS:
            problems.append(f"query is longer than {MAX_QUERY_CHARS} characters")
        if "\x00" in options.query:
            problems.append("query contains a NUL character")
        if not 1 <= options.limit <= MAX_LIMIT:
            problems.append(f"limit must be 1 to {MAX_LIMIT}, got {options.limit}")
        if not 0 <= options.offset <= MAX_OFFSET:
            problems.append(f"offset must be 0 to {MAX_OFFSET}, got {options.offset}")
        if not 1 <= options.candidates <= MAX_CANDIDATES:
            problems.append(f"candidates must be 1 to {MAX_CANDIDATES}, got {options.candidates}")
        if not 1 <= options.k <= 10_000:
            problems.append(f"k must be 1 to 10000, got {options.k}")
        for name, weight in (
            ("vector", options.vector_weight),
            ("keyword", options.keyword_weight),
        ):
            if not 0 <= weight <= 100:
                problems.append(f"{name}_weight must be 0 to 100, got {weight}")
        if problems:
            raise BadSearchRequestError("; ".join(problems))
        languages = text_search_languages(conn)
        if options.language not in languages:
            msg = f"language {options.language!r} is not one of {', '.join(languages)}"
            raise BadSearchRequestError(msg)

    def _default_slot(self, conn: DbConnection, name: str | None) -> index.Slot:
        if name is not None:
            return self._slot(conn, name)
        slots = index.list_slots(conn)
        if not slots:
            raise _no_index()
        if len(slots) == 1:
            return slots[0]
        for slot in slots:
            if slot.name == "default":
                return slot
        msg = f"several slots are indexed, name one: {', '.join(s.name for s in slots)}"
        raise BadSearchRequestError(msg)

    @staticmethod
    def _slot(conn: DbConnection, name: str) -> index.Slot:
        try:
            return index.get_slot(conn, name)
        except index.UnknownSlotError as exc:
            raise BadSearchRequestError(str(exc)) from exc


def _no_index() -> SearchUnavailableError:
    msg = (
        "no embedding slot is indexed yet: run a pipeline with embedding_generator and the "
        "embedding_index sink (pipelines/docs-ingest.yaml)"
    )
    return SearchUnavailableError(msg)


def _run(
    conn: DbConnection,
    options: SearchOptions,
    slot: str | None,
    vector: list[float] | None,
    *,
    keyword: bool,
    fusion: Fusion = "rrf",
) -> list[RankedHit]:
    return ranked_search(
        conn,
        query=options.query,
        language=options.language,
        slot=slot,
        vector=vector,
        use_keyword=keyword,
        fusion=fusion,
        k=options.k,
        vector_weight=options.vector_weight,
        keyword_weight=options.keyword_weight,
        candidates=options.candidates,
        limit=options.limit,
        offset=options.offset,
        filters=options.filters,
    )

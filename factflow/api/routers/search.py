"""Search, indexes and embeddings: the seed system's search domain (semantic, hybrid,
RRF, multi-model, sources, capabilities; `POST /chat/search/rrf` is its alias of RRF
search), and factflow's indexes (slots: list, stats, create, drop, reindex) and
embeddings domains.

Errors: 400 for a request that cannot be answered (empty query, unknown slot or
language, a number out of range), 503 when nothing is indexed yet or the slot's model is
not available here; the body says which.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from factflow.api.auth import require
from factflow.api.deps import DbDep
from factflow.api.errors import ApiError, error_responses
from factflow.db.repositories import search_index as index
from factflow.db.repositories.search_queries import Filters
from factflow.search import (
    BadSearchRequestError,
    QueryEmbedder,
    SearchHit,
    SearchOptions,
    SearchResult,
    SearchService,
    SearchUnavailableError,
)
from factflow.search.service import DEFAULT_K, DEFAULT_LANGUAGE
from factflow.settings import Settings
from factflow.slots import MAX_DIMENSIONS, SLOT_NAME_RULE

router = APIRouter()
# searches are POSTs that read: search:read throughout; creating and rebuilding index
# slots is an operator's job (admin)
search_router = APIRouter(prefix="/search", tags=["search"], dependencies=[require("search:read")])
chat_router = APIRouter(prefix="/chat", tags=["chat"], dependencies=[require("search:read")])
indexes_router = APIRouter(
    prefix="/indexes", tags=["indexes"], dependencies=[require("search:read", write="admin")]
)
embeddings_router = APIRouter(
    prefix="/embeddings", tags=["embeddings"], dependencies=[require("search:read")]
)


def get_search(request: Request) -> SearchService:
    """The app's search service, made on first use (a local model loads on its first
    query, not at start)."""
    service: SearchService | None = getattr(request.app.state, "search", None)
    if service is None:
        settings = Settings()
        key = settings.llm_api_key
        embedder = QueryEmbedder(
            api_base=settings.llm_api_base,
            api_key=key.get_secret_value() if key is not None else None,
        )
        service = SearchService(embedder)
        request.app.state.search = service
    return service


SearchDep = Annotated[SearchService, Depends(get_search)]


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except BadSearchRequestError as exc:
        raise ApiError(400, str(exc), "BAD_SEARCH_REQUEST") from exc
    except SearchUnavailableError as exc:
        raise ApiError(503, str(exc), "SEARCH_NOT_CONFIGURED") from exc
    except index.SlotMismatchError as exc:
        raise ApiError(409, str(exc), "SLOT_MISMATCH") from exc
    except ValueError as exc:
        raise ApiError(400, str(exc), "BAD_REQUEST") from exc


# -- bodies ------------------------------------------------------------------------


class SearchFilters(BaseModel):
    url_prefix: str | None = Field(default=None, description="hits whose URL starts so")
    origin: str | None = Field(default=None, description="hits of this origin (see /sources)")
    execution_id: str | None = Field(default=None, description="hits indexed by this execution")
    document_id: str | None = None
    metadata: dict[str, str | int | bool] = Field(
        default_factory=dict, description="hits whose metadata has these key/value pairs"
    )

    def filters(self) -> Filters:
        return Filters(
            url_prefix=self.url_prefix,
            origin=self.origin,
            execution_id=self.execution_id,
            document_id=self.document_id,
            metadata=dict(self.metadata),
        )


class SemanticRequest(BaseModel):
    """The seed system's search body (`query`, `limit`) plus the slot and filters."""

    query: str = Field(description="the question or search text (1 to 2000 characters)")
    model: str | None = Field(
        default=None,
        description="the slot to search (default: `default`, or the only slot); the query "
        "is embedded with the model the slot is bound to",
    )
    limit: int = Field(default=10, description="results, 1 to 100")
    offset: int = Field(default=0, description="results to skip, 0 to 10000")
    candidates: int = Field(default=50, description="candidates per search type, 1 to 1000")
    filters: SearchFilters = Field(default_factory=SearchFilters)

    def options(self) -> SearchOptions:
        return SearchOptions(
            query=self.query,
            slot=self.model,
            limit=self.limit,
            offset=self.offset,
            candidates=self.candidates,
            filters=self.filters.filters(),
        )


class FusedRequest(SemanticRequest):
    """The seed system's RRF request: query, model, FTS language, vector and keyword
    weights, the RRF constant `k`, candidates per search type, limit and offset."""

    language: str = Field(
        default=DEFAULT_LANGUAGE,
        description="full-text configuration (stemming), see /capabilities",
    )
    vector_weight: float = Field(default=1.0, description="weight of the vector ranking, 0-100")
    keyword_weight: float = Field(default=1.0, description="weight of the keyword ranking, 0-100")
    k: int = Field(default=DEFAULT_K, description="RRF smoothing constant, 1 to 10000")

    def options(self) -> SearchOptions:
        return SearchOptions(
            query=self.query,
            slot=self.model,
            language=self.language,
            vector_weight=self.vector_weight,
            keyword_weight=self.keyword_weight,
            k=self.k,
            limit=self.limit,
            offset=self.offset,
            candidates=self.candidates,
            filters=self.filters.filters(),
        )


class KeywordRequest(FusedRequest):
    pass


class MultiModelRequest(FusedRequest):
    models: list[str] | None = Field(
        default=None, description="slots to search (default: every slot)", max_length=20
    )


class Component(BaseModel):
    rank: int
    score: float


class Hit(BaseModel):
    segment_id: int
    url: str | None
    title: str
    heading_path: list[str]
    text: str
    snippet: str = Field(description="the best passages, matched words as **word**")
    score: float = Field(description="the fused score (RRF / weighted), or the one component's")
    rank: int = Field(description="1-based position in the whole result list")
    semantic: Component | None = Field(description="rank and cosine similarity, if a candidate")
    keyword: Component | None = Field(description="rank and ts_rank_cd score, if a candidate")
    models: dict[str, Component] = Field(
        default_factory=dict, description="multi-model: each slot's rank and similarity"
    )
    lineage_id: str | None = Field(description="the lineage row that produced this segment")
    document_id: str | None
    origin: str | None
    execution_id: str
    storage_key: str | None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, item: SearchHit, rank: int) -> Hit:
        hit = item.hit
        semantic = keyword = None
        if hit.semantic_rank is not None and hit.semantic_score is not None:
            semantic = Component(rank=hit.semantic_rank, score=hit.semantic_score)
        if hit.keyword_rank is not None and hit.keyword_score is not None:
            keyword = Component(rank=hit.keyword_rank, score=hit.keyword_score)
        return cls(
            segment_id=hit.segment_id,
            url=hit.url,
            title=hit.title,
            heading_path=hit.heading_path,
            text=hit.text,
            snippet=hit.snippet,
            score=hit.score,
            rank=rank,
            semantic=semantic,
            keyword=keyword,
            models={k: Component(rank=v.rank, score=v.score) for k, v in item.models.items()},
            lineage_id=hit.lineage_id,
            document_id=hit.document_id,
            origin=hit.origin,
            execution_id=hit.execution_id,
            storage_key=hit.storage_key,
            metadata=hit.metadata,
        )


class SearchResponse(BaseModel):
    mode: Literal["semantic", "keyword", "hybrid", "rrf", "multi-model"]
    query: str
    models: list[str] = Field(description="the slots searched")
    total: int = Field(description="results in this page")
    results: list[Hit]

    @classmethod
    def of(cls, result: SearchResult, offset: int) -> SearchResponse:
        hits = [Hit.of(h, offset + i) for i, h in enumerate(result.hits, start=1)]
        return cls(
            mode=result.mode,  # type: ignore[arg-type]  # the service's modes are these
            query=result.query,
            models=result.slots,
            total=len(hits),
            results=hits,
        )


# -- search ------------------------------------------------------------------------


@search_router.post(
    "",
    response_model=SearchResponse,
    summary="Semantic search",
    responses=error_responses(409),
)
def semantic(body: SemanticRequest, conn: DbDep, service: SearchDep) -> SearchResponse:
    """Vector search in one slot: the query embedded with the slot's model, nearest
    segments by cosine similarity (HNSW)."""
    with _answers():
        return SearchResponse.of(service.semantic(conn, body.options()), body.offset)


@search_router.post(
    "/keyword",
    response_model=SearchResponse,
    summary="Keyword search",
    responses=error_responses(409),
)
def keyword(body: KeywordRequest, conn: DbDep, service: SearchDep) -> SearchResponse:
    """Full-text search only (factflow addition): any of the query's words, titles and
    headings weighted above text."""
    with _answers():
        return SearchResponse.of(service.keyword(conn, body.options()), body.offset)


@search_router.post(
    "/hybrid",
    response_model=SearchResponse,
    summary="Hybrid search",
    responses=error_responses(409),
)
def hybrid(body: FusedRequest, conn: DbDep, service: SearchDep) -> SearchResponse:
    """Vector and keyword candidates, scored `vector_weight * similarity + keyword_weight
    * keyword score / best keyword score`."""
    with _answers():
        return SearchResponse.of(service.hybrid(conn, body.options()), body.offset)


@search_router.post(
    "/rrf",
    response_model=SearchResponse,
    summary="Reciprocal rank fusion",
    responses=error_responses(409),
)
def rrf(body: FusedRequest, conn: DbDep, service: SearchDep) -> SearchResponse:
    """Vector and keyword rankings fused: `sum(weight / (k + rank))`; segments high in
    both lists come first. Each result has both components' ranks and scores."""
    with _answers():
        return SearchResponse.of(service.rrf(conn, body.options()), body.offset)


@search_router.post(
    "/multi-model",
    response_model=SearchResponse,
    summary="Multi-model search",
    responses=error_responses(409),
)
def multi_model(body: MultiModelRequest, conn: DbDep, service: SearchDep) -> SearchResponse:
    """Semantic search in several slots, merged by reciprocal rank, with each slot's
    rank and similarity per result."""
    with _answers():
        return SearchResponse.of(
            service.multi_model(conn, body.options(), body.models), body.offset
        )


@chat_router.post(
    "/search/rrf",
    response_model=SearchResponse,
    summary="Search Rrf",
    responses=error_responses(409),
)
def chat_search_rrf(body: FusedRequest, conn: DbDep, service: SearchDep) -> SearchResponse:
    """The seed system's chat retrieval: the same as `POST /search/rrf`."""
    with _answers():
        return SearchResponse.of(service.rrf(conn, body.options()), body.offset)


class SourceOut(BaseModel):
    origin: str
    segments: int
    documents: int
    last_indexed_at: datetime


@search_router.get("/sources", response_model=list[SourceOut], summary="Indexed origins")
def sources(conn: DbDep) -> list[SourceOut]:
    """Which origins are indexed, with their segment and document counts."""
    return [SourceOut(**vars_of(s)) for s in index.list_sources(conn)]


class SlotOut(BaseModel):
    name: str
    model: str
    backend: str
    dimensions: int
    hnsw_m: int
    hnsw_ef_construction: int
    created_at: datetime | None


class CapabilitiesOut(BaseModel):
    modes: list[str]
    slots: list[SlotOut]
    models: list[str]
    languages: list[str]
    default_language: str
    rrf_k: int


@search_router.get("/capabilities", response_model=CapabilitiesOut, summary="Search capabilities")
def capabilities(conn: DbDep, service: SearchDep) -> CapabilitiesOut:
    """The embedding slots (model, dimensions), full-text languages and search modes."""
    slots, languages = service.capabilities(conn)
    return CapabilitiesOut(
        modes=["semantic", "keyword", "hybrid", "rrf", "multi-model"],
        slots=[SlotOut(**vars_of(s)) for s in slots],
        models=sorted({s.model for s in slots}),
        languages=languages,
        default_language=DEFAULT_LANGUAGE,
        rrf_k=DEFAULT_K,
    )


# -- indexes -----------------------------------------------------------------------

SlotName = Annotated[str, Path(description="the slot's name", max_length=40)]


class SlotStatsOut(SlotOut):
    vectors: int
    table_bytes: int
    index_bytes: int

    @classmethod
    def of(cls, stats: index.SlotStats) -> SlotStatsOut:
        return cls(
            **vars_of(stats.slot),
            vectors=stats.vectors,
            table_bytes=stats.table_bytes,
            index_bytes=stats.index_bytes,
        )


class IndexesOut(BaseModel):
    segments: int
    documents: int
    table_bytes: int
    index_bytes: int
    slots: list[SlotStatsOut]


@indexes_router.get("", response_model=IndexesOut, summary="List indexes")
def list_indexes(conn: DbDep) -> IndexesOut:
    """The segment index and every slot, with counts and sizes (factflow addition)."""
    stats = index.index_stats(conn)
    slots = [SlotStatsOut.of(index.slot_stats(conn, s.name)) for s in index.list_slots(conn)]
    return IndexesOut(
        segments=stats.segments,
        documents=stats.documents,
        table_bytes=stats.table_bytes,
        index_bytes=stats.index_bytes,
        slots=slots,
    )


@indexes_router.get(
    "/{slot}", response_model=SlotStatsOut, summary="Slot stats", responses=error_responses(404)
)
def slot_stats(slot: SlotName, conn: DbDep) -> SlotStatsOut:
    """One slot: its model, HNSW parameters, vector count and sizes; 404 if unknown."""
    return SlotStatsOut.of(index.slot_stats(conn, slot))


class CreateSlot(BaseModel):
    name: str = Field(description=SLOT_NAME_RULE, max_length=40)
    model: str = Field(min_length=1, max_length=200)
    backend: Literal["local", "litellm"] = "local"
    dimensions: int = Field(ge=1, le=MAX_DIMENSIONS)
    m: int = Field(default=index.DEFAULT_M, ge=2, le=100, description="HNSW m")
    ef_construction: int = Field(default=index.DEFAULT_EF_CONSTRUCTION, ge=4, le=1000)


@indexes_router.post(
    "",
    response_model=SlotStatsOut,
    status_code=201,
    summary="Create a slot",
    responses=error_responses(409),
)
def create_slot(body: CreateSlot, conn: DbDep) -> SlotStatsOut:
    """Create a slot bound to a model (409 if it exists bound to another model)."""
    with _answers():
        slot = index.ensure_slot(
            conn,
            body.name,
            body.model,
            body.backend,
            body.dimensions,
            m=body.m,
            ef_construction=body.ef_construction,
        )
    return SlotStatsOut.of(index.slot_stats(conn, slot.name))


@indexes_router.delete(
    "/{slot}", status_code=204, summary="Drop a slot", responses=error_responses(404)
)
def drop_slot(slot: SlotName, conn: DbDep) -> None:
    """Drop the slot and its vectors; segments stay for keyword search and other slots."""
    index.drop_slot(conn, slot)


class Reindex(BaseModel):
    m: int = Field(default=index.DEFAULT_M, ge=2, le=100, description="HNSW m")
    ef_construction: int = Field(default=index.DEFAULT_EF_CONSTRUCTION, ge=4, le=1000)


@indexes_router.post(
    "/{slot}/reindex",
    response_model=SlotStatsOut,
    summary="Rebuild HNSW",
    responses=error_responses(404),
)
def reindex(slot: SlotName, body: Reindex, conn: DbDep) -> SlotStatsOut:
    """Rebuild the slot's HNSW index with these `m` and `ef_construction`."""
    index.reindex_slot(conn, slot, m=body.m, ef_construction=body.ef_construction)
    return SlotStatsOut.of(index.slot_stats(conn, slot))


# -- embeddings --------------------------------------------------------------------


class EmbedRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=256, description="texts to embed")
    model: str | None = Field(default=None, description="the slot whose model embeds them")


class EmbedResponse(BaseModel):
    model: str = Field(description="the slot")
    embedding_model: str
    dimensions: int
    vectors: list[list[float]]


@embeddings_router.post(
    "", response_model=EmbedResponse, summary="Embed texts", responses=error_responses(409)
)
def embed(body: EmbedRequest, conn: DbDep, service: SearchDep) -> EmbedResponse:
    """Vectors of `texts` from a slot's model (what its queries are embedded with)."""
    with _answers():
        slot, vectors = service.embed(conn, body.model, body.texts)
    return EmbedResponse(
        model=slot.name, embedding_model=slot.model, dimensions=slot.dimensions, vectors=vectors
    )


def vars_of(item: Any) -> dict[str, Any]:
    """A slots dataclass's fields as a dict."""
    return {name: getattr(item, name) for name in item.__slots__}


for _sub in (search_router, chat_router, indexes_router, embeddings_router):
    router.include_router(_sub)

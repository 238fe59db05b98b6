"""Retrieval for an answer: RRF over the thread's slot (multi-model when it names several),
the hits that are relevant enough, and each one's citation with its lineage chain."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields

from factflow.chat.exceptions import BadChatRequestError
from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError
from factflow.db.repositories import lineage as lineage_repo
from factflow.db.repositories.search_queries import Filters
from factflow.search import SearchHit, SearchOptions, SearchService
from factflow.search.service import DEFAULT_LANGUAGE
from factflow.types import JsonDict

MIN_SIMILARITY = 0.3
"""Cosine similarity below which a hit is unrelated to the question (all-MiniLM-L6-v2
puts unrelated sentences at 0 to 0.2, paraphrases at 0.5 and above)."""
KEYWORD_MIN_SIMILARITY = 0.15
DIVERSITY = 3
"""Hits fetched per source wanted, to pick the sources page by page."""
MAX_FETCHED = 60
"""The lower bar of a hit that the keyword ranking found too (it shares words)."""


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    """How a thread retrieves (the API's `retrieval` object; stored with the thread)."""

    slots: list[str] | None = None
    """Slots to search; several: multi-model search. Default: the default slot."""
    top_k: int = 5
    candidates: int = 50
    language: str = DEFAULT_LANGUAGE
    url_prefix: str | None = None
    min_similarity: float = MIN_SIMILARITY

    def check(self) -> None:
        problems = []
        if not 1 <= self.top_k <= 20:
            problems.append(f"top_k must be 1 to 20, got {self.top_k}")
        if not 1 <= self.candidates <= 1000:
            problems.append(f"candidates must be 1 to 1000, got {self.candidates}")
        if not 0 <= self.min_similarity <= 1:
            problems.append(f"min_similarity must be 0 to 1, got {self.min_similarity}")
        if self.slots is not None and not 1 <= len(self.slots) <= 20:
            problems.append("slots must name 1 to 20 slots")
        if problems:
            raise BadChatRequestError("; ".join(problems))

    def to_json(self) -> JsonDict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def of(cls, data: JsonDict | None) -> RetrievalSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


@dataclass(frozen=True, slots=True)
class LineageStep:
    """One row of a segment's lineage, root (the crawl) first."""

    id: str
    route_id: str
    adapter_name: str
    stage_name: str
    status: str
    storage_key: str | None
    url: str | None


@dataclass(slots=True)
class Citation:
    """A numbered source of an answer."""

    number: int
    segment_id: int
    url: str | None
    title: str
    heading_path: list[str]
    text: str
    quote: str
    """The passage the answer relies on (extractive: the sentences it quoted)."""
    score: float
    similarity: float | None
    lineage_id: str | None
    lineage: list[LineageStep] = field(default_factory=list)
    execution_id: str | None = None
    document_id: str | None = None

    def to_json(self) -> JsonDict:
        data = asdict(self)
        data["lineage_chain"] = (
            f"/api/v1/lineage/{self.lineage_id}/chain" if self.lineage_id else None
        )
        return data


def retrieve(
    conn: DbConnection,
    search: SearchService,
    question: str,
    settings: RetrievalSettings,
    *,
    thread_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
) -> list[SearchHit]:
    """The top hits by RRF (multi-model over several slots), relevant ones only; the query
    embeddings are booked to the thread and answer message given."""
    options = SearchOptions(
        query=question,
        slot=settings.slots[0] if settings.slots and len(settings.slots) == 1 else None,
        language=settings.language,
        candidates=settings.candidates,
        # more than top_k: the sources are picked from them page by page (`_diverse`)
        limit=min(settings.top_k * DIVERSITY, MAX_FETCHED),
        filters=Filters(url_prefix=settings.url_prefix),
        thread_id=thread_id,
        message_id=message_id,
    )
    if settings.slots and len(settings.slots) > 1:
        result = search.multi_model(conn, options, settings.slots)
    else:
        result = search.rrf(conn, options)
    relevant = [h for h in result.hits if _relevant(h, settings.min_similarity)]
    return _diverse(relevant, settings.top_k)


def _diverse(hits: list[SearchHit], top_k: int) -> list[SearchHit]:
    """`top_k` hits, the best of each page first (in rank order), then the next best: an
    answer cites more than one page when several are relevant."""
    seen: set[str | None] = set()
    first: list[SearchHit] = []
    rest: list[SearchHit] = []
    for item in hits:
        page = item.hit.url or item.hit.document_id
        (rest if page in seen else first).append(item)
        seen.add(page)
    return (first + rest)[:top_k]


def _relevant(item: SearchHit, min_similarity: float) -> bool:
    hit = item.hit
    similarities = [m.score for m in item.models.values()]
    if hit.semantic_score is not None:
        similarities.append(hit.semantic_score)
    best = max(similarities, default=0.0)
    if hit.keyword_rank is not None:
        return best >= min(min_similarity, KEYWORD_MIN_SIMILARITY) or not similarities
    return best >= min_similarity


def cite(conn: DbConnection, hits: list[SearchHit]) -> list[Citation]:
    """Numbered citations of `hits`, each with its segment's lineage chain."""
    out = []
    for number, item in enumerate(hits, start=1):
        hit = item.hit
        similarity = hit.semantic_score
        if similarity is None and item.models:
            similarity = max(m.score for m in item.models.values())
        out.append(
            Citation(
                number=number,
                segment_id=hit.segment_id,
                url=hit.url,
                title=hit.title,
                heading_path=list(hit.heading_path),
                text=hit.text,
                quote=hit.text,
                score=hit.score,
                similarity=similarity,
                lineage_id=hit.lineage_id,
                lineage=_chain(conn, hit.lineage_id),
                execution_id=hit.execution_id,
                document_id=hit.document_id,
            )
        )
    return out


def _chain(conn: DbConnection, lineage_id: str | None) -> list[LineageStep]:
    if not lineage_id:
        return []
    try:
        row_id = uuid.UUID(lineage_id)
    except ValueError:
        return []  # written by a producer that is not factflow: no chain to follow
    rows = lineage_repo.ancestors(conn, row_id)[::-1]
    try:
        rows.append(lineage_repo.get_lineage_row(conn, row_id))
    except NotFoundError:
        return []  # the lineage was deleted with its execution; the segment stays
    return [
        LineageStep(
            id=str(r.id),
            route_id=r.route_id,
            adapter_name=r.adapter_name,
            stage_name=r.stage_name,
            status=r.status,
            storage_key=r.storage_key,
            url=(r.metadata or {}).get("url"),
        )
        for r in rows
    ]

"""Search over the index the `embedding_index` writer fills: semantic (a slot's HNSW
index, the query embedded with the slot's own model), keyword (Postgres full text),
hybrid (weighted scores), reciprocal rank fusion, and multi-model (several slots merged).

`SearchService` owns the checks and the merging; the SQL lives in
`factflow.db.repositories.search_queries`. This package knows no HTTP, server or CLI.
"""

from factflow.search.embedder import QueryEmbedder
from factflow.search.exceptions import BadSearchRequestError, SearchError, SearchUnavailableError
from factflow.search.service import SearchHit, SearchOptions, SearchResult, SearchService

__all__ = [
    "BadSearchRequestError",
    "QueryEmbedder",
    "SearchError",
    "SearchHit",
    "SearchOptions",
    "SearchResult",
    "SearchService",
    "SearchUnavailableError",
]

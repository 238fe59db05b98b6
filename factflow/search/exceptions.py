"""Errors of the search service; the API answers them with 400 and 503."""

from __future__ import annotations

from factflow.exceptions import FactflowError


class SearchError(FactflowError):
    """Base of the search service's errors."""


class BadSearchRequestError(SearchError):
    """The request cannot be answered as asked: an empty query, an unknown slot or
    language, a limit out of range. The message says which and what is allowed."""


class SearchUnavailableError(SearchError):
    """Nothing to search with: no slot has been indexed yet (run a pipeline with
    `embedding_generator` and the `embedding_index` sink), or the slot's model cannot be
    loaded or reached here (install `factflow[embeddings]`, set the provider's key)."""

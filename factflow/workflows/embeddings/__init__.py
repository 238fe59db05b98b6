"""Embedding slots and the search index (the seed system's factflow-embeddings).

- `generator`: `embedding_generator`, segments embedded into named slots, each bound to
  one model (a local model shipped by a pip package, or a litellm provider), batched.
- `index_writer`: `embedding_index`, the writer that upserts segments, their provenance
  and vectors into Postgres (pgvector HNSW per slot, a weighted tsvector).
- `backends`: the models; a local one is loaded once per process, never downloaded.

Like every workflow, this package knows no engine, compiler or server.
"""

from factflow.workflows.embeddings.generator import EmbeddingGeneratorAdapter

INDEX_WRITER = "factflow.workflows.embeddings.index_writer:EmbeddingIndexWriter"
"""The index writer by dotted path: importing it loads the database client, which the
compiler (resolving `sink:` types) must not depend on (pyproject's layer contracts)."""

__all__ = ["INDEX_WRITER", "EmbeddingGeneratorAdapter"]

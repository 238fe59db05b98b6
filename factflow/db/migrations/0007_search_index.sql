-- The search index: segments (text, provenance, lineage) with a weighted tsvector, and
-- the embedding slots. Each slot's vectors live in a table of their own,
-- search_vectors_<slot> (created with the slot: vector(<dimensions>) and an HNSW index),
-- so slots of different models and sizes never mix.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE search_slots (
    name                 text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    model                text        NOT NULL,
    backend              text        NOT NULL CHECK (backend IN ('local', 'litellm')),
    dimensions           integer     NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
    hnsw_m               integer     NOT NULL DEFAULT 16,
    hnsw_ef_construction integer     NOT NULL DEFAULT 64,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE search_segments (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- sha256 of (document, title, heading path, text): the upsert key
    content_hash  text        NOT NULL UNIQUE,
    -- document_id, else the URL: what a re-ingest replaces
    document_key  text        NOT NULL,
    document_id   text,
    url           text,
    title         text        NOT NULL DEFAULT '',
    heading_path  text[]      NOT NULL DEFAULT '{}',
    headings      text        NOT NULL DEFAULT '',
    text          text        NOT NULL,
    segment_index integer,
    token_count   integer,
    origin        text,
    execution_id  text        NOT NULL,
    route_id      text,
    message_id    text        NOT NULL,
    -- the lineage row that produced the segment's message (its correlation_id)
    lineage_id    text,
    storage_key   text,
    metadata      jsonb       NOT NULL DEFAULT '{}',
    language      regconfig   NOT NULL DEFAULT 'english',
    -- title above headings above body text (ts_rank weights A, B, D)
    tsv           tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector(language, title), 'A')
        || setweight(to_tsvector(language, headings), 'B')
        || setweight(to_tsvector(language, text), 'D')
    ) STORED,
    indexed_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX search_segments_tsv ON search_segments USING gin (tsv);
CREATE INDEX search_segments_document ON search_segments (document_key, execution_id);
CREATE INDEX search_segments_url ON search_segments (url text_pattern_ops);
CREATE INDEX search_segments_origin ON search_segments (origin);

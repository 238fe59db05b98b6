-- Chat threads and their messages (answers keep the citations they were given), and the
-- usage of every LLM and embedding call (tokens, cost, latency) for the cost dashboard.
--
-- Transient threads are never written here. Usage rows have no foreign keys: what was
-- spent stays accounted for after its thread or execution is deleted.

CREATE TABLE chat_threads (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title       text        NOT NULL DEFAULT '',
    -- the litellm model of this thread's answers; null: the server's (or extractive)
    model       text,
    -- retrieval settings: slots, top_k, candidates, language, url_prefix, min_similarity
    retrieval   jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX chat_threads_updated ON chat_threads (updated_at DESC, id);

CREATE TABLE chat_messages (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    thread_id           uuid        NOT NULL REFERENCES chat_threads ON DELETE CASCADE,
    role                text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content             text        NOT NULL,
    -- assistant messages: how the answer was made and from what
    mode                text        CHECK (mode IN ('extractive', 'llm')),
    model               text,
    standalone_question text,
    citations           jsonb       NOT NULL DEFAULT '[]',
    latency_ms          double precision,
    -- +1 / -1 from POST /chat/messages/{id}/feedback
    feedback            smallint    CHECK (feedback IN (-1, 1)),
    feedback_comment    text,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX chat_messages_thread ON chat_messages (thread_id, created_at, id);

CREATE TABLE llm_usage (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text        NOT NULL CHECK (kind IN ('completion', 'embedding')),
    -- what the call was for: answer, rewrite, query, pipeline
    purpose           text        NOT NULL,
    provider          text        NOT NULL,
    model             text        NOT NULL,
    prompt_tokens     integer     NOT NULL DEFAULT 0,
    completion_tokens integer     NOT NULL DEFAULT 0,
    -- null: litellm has no price for the model
    cost_usd          double precision,
    latency_ms        double precision NOT NULL DEFAULT 0,
    thread_id         uuid,
    message_id        uuid,
    execution_id      uuid,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX llm_usage_created ON llm_usage (created_at);
CREATE INDEX llm_usage_thread ON llm_usage (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX llm_usage_execution ON llm_usage (execution_id) WHERE execution_id IS NOT NULL;

-- Dead letters (for routes whose provider has no broker DLQ) and archived Bytewax
-- recovery partitions.

CREATE TABLE dead_letters (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id uuid        NOT NULL,
    route_id     text        NOT NULL,
    queue        text        NOT NULL,
    lineage_id   uuid,
    message      jsonb       NOT NULL,
    error_type   text,
    error        text,
    attempts     integer     NOT NULL DEFAULT 0,
    reason       text        NOT NULL DEFAULT 'max_retries',
    created_at   timestamptz NOT NULL DEFAULT now(),
    redriven_at  timestamptz
);
CREATE INDEX dead_letters_execution_idx ON dead_letters (execution_id, route_id, created_at);
CREATE INDEX dead_letters_pending_idx ON dead_letters (execution_id, id) WHERE redriven_at IS NULL;

CREATE TABLE recovery_archives (
    execution_id     uuid        NOT NULL,
    partition_index  integer     NOT NULL CHECK (partition_index >= 0),
    taken_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    partition_count  integer     NOT NULL CHECK (partition_count > partition_index),
    bytewax_version  text        NOT NULL,
    step_fingerprint text        NOT NULL,
    size_bytes       bigint      NOT NULL,
    sha256           text        NOT NULL,
    data             bytea       NOT NULL,
    PRIMARY KEY (execution_id, partition_index, taken_at)
);

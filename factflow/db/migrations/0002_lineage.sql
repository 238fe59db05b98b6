-- One row per input message per adapter invocation, written per epoch with COPY.
-- No foreign key to executions on purpose: a per-row FK check would slow every COPY, and
-- rows are deleted with their execution by the repository.

CREATE TABLE lineage (
    id            uuid             PRIMARY KEY,
    execution_id  uuid             NOT NULL,
    route_id      text COLLATE "C" NOT NULL,
    adapter_name  text             NOT NULL,
    adapter_index integer          NOT NULL,
    stage_name    text             NOT NULL,
    message_id    text COLLATE "C" NOT NULL,
    parent_id     uuid,
    status        text             NOT NULL CHECK (status IN (
                      'pending', 'processing', 'completed', 'failed', 'filtered',
                      'dead_lettered', 'cancelled')),
    attempts      integer          NOT NULL DEFAULT 1,
    input_hash    text,
    output_hash   text,
    error         text,
    started_at    timestamptz      NOT NULL,
    completed_at  timestamptz,
    duration_ms   double precision,
    batch_id      text,
    storage_key   text,
    metadata      jsonb            NOT NULL DEFAULT '{}'
);
-- descendants walk parent_id downwards; roots need no entry
CREATE INDEX lineage_parent_idx ON lineage (parent_id) WHERE parent_id IS NOT NULL;
-- every index slows each COPY, and one on random keys (message ids are uuid4) most: with
-- an (execution_id, message_id) index COPY ran at half the rows/s. This one grows at its
-- right edge; it serves listings in time order and stats, and a message's rows are found by
-- scanning its execution's rows
CREATE INDEX lineage_execution_idx ON lineage (execution_id, started_at);
-- failures are few; a partial index keeps them cheap to list
CREATE INDEX lineage_failures_idx ON lineage (execution_id, started_at)
    WHERE status IN ('failed', 'dead_lettered');

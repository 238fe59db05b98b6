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
-- every index slows each COPY (five of them halved its rows/s), so there are few: this
-- one finds a message's rows and, by its prefix, all rows of an execution (listings, stats);
-- ids compare bytewise ("C"), cheaper than locale rules and all that ids need
CREATE INDEX lineage_message_idx ON lineage (execution_id, message_id);
-- failures are few; a partial index keeps them cheap to list
CREATE INDEX lineage_failures_idx ON lineage (execution_id, started_at)
    WHERE status IN ('failed', 'dead_lettered');

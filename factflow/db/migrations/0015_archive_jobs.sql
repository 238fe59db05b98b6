-- Archive download jobs (`POST /api/v1/content/archive/prepare`): in Postgres so that any
-- server replica answers for a job and serves its zip, which is kept in stage storage
-- under `archives/<job id>.zip`.

CREATE TABLE archive_jobs (
    id           text        PRIMARY KEY,
    prefix       text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    object_count integer     NOT NULL DEFAULT 0,
    size_bytes   bigint      NOT NULL DEFAULT 0,
    storage_key  text        NOT NULL,
    error        text,
    instance_id  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);

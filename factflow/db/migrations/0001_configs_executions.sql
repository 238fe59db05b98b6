-- Versioned pipeline configs, and executions whose status moves only along
-- execution_transitions (the repository checks first; the trigger guards every other writer).

CREATE TABLE pipeline_configs (
    id          uuid        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    name        text        NOT NULL,
    description text,
    source_type text        NOT NULL DEFAULT 'inline',
    source_path text,
    config_yaml text        NOT NULL,
    config_hash text        NOT NULL,
    is_active   boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);
-- one active version per config, and active names are unique so configs can be found by name
CREATE UNIQUE INDEX pipeline_configs_active_id ON pipeline_configs (id) WHERE is_active;
CREATE UNIQUE INDEX pipeline_configs_active_name ON pipeline_configs (name) WHERE is_active;

CREATE TABLE execution_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO execution_transitions (from_status, to_status) VALUES
    ('running', 'cancelling'),
    ('running', 'completed'),
    ('running', 'failed'),
    ('running', 'cancelled'),
    ('running', 'interrupted'),
    ('cancelling', 'cancelled'),
    ('cancelling', 'completed'),
    ('cancelling', 'failed'),
    ('cancelling', 'interrupted'),
    ('interrupted', 'running'),
    ('interrupted', 'failed'),
    ('interrupted', 'cancelled');

CREATE TABLE executions (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    config_id       uuid,
    config_version  integer,
    pipeline_name   text        NOT NULL,
    config_snapshot jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'running' CHECK (status IN (
                        'running', 'cancelling', 'completed', 'failed', 'cancelled', 'interrupted')),
    source          text        NOT NULL DEFAULT 'api',
    replay_source   jsonb,
    trigger_context jsonb       NOT NULL DEFAULT '{}',
    idempotency_key text        UNIQUE,
    workers         jsonb       NOT NULL DEFAULT '[]',
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    heartbeat_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    error           text,
    stats           jsonb       NOT NULL DEFAULT '{}',
    -- an execution outlives its config: the snapshot is what it ran
    FOREIGN KEY (config_id, config_version)
        REFERENCES pipeline_configs (id, version) ON DELETE SET NULL
);
CREATE INDEX executions_started_idx ON executions (started_at DESC);
CREATE INDEX executions_status_idx ON executions (status, started_at DESC);
CREATE INDEX executions_config_idx ON executions (config_id);

CREATE FUNCTION factflow_guard_execution() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.config_snapshot IS DISTINCT FROM OLD.config_snapshot THEN
        RAISE EXCEPTION 'execution %: config_snapshot is immutable', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM execution_transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'execution %: illegal status transition % -> %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER executions_guard
    BEFORE UPDATE ON executions
    FOR EACH ROW EXECUTE FUNCTION factflow_guard_execution();

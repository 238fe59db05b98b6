-- Webhooks out (subscriptions, a delivery queue, every attempt) and triggers in (event
-- triggers, the events received, cron schedules).
--
-- Deliveries are made by triggers in the database, in the transaction that records the
-- event: an event that commits has its deliveries queued, one that rolls back has none.

CREATE TABLE webhook_subscriptions (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    url                 text        NOT NULL,
    event_types         text[]      NOT NULL CHECK (cardinality(event_types) > 0),
    -- {config_id, execution_id, route_id, adapter_name}, each optional, ANDed
    filters             jsonb       NOT NULL DEFAULT '{}',
    -- kept so deliveries can be signed; the API never returns it after creation
    secret              text        NOT NULL,
    -- after a rotation the old secret signs too (a second signature) until it expires
    previous_secret     text,
    previous_expires_at timestamptz,
    description         text,
    is_active           boolean     NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id  uuid        NOT NULL REFERENCES webhook_subscriptions ON DELETE CASCADE,
    -- no foreign key: events are deleted with their execution, the delivery record stays
    event_id         bigint,
    event_type       text        NOT NULL,
    body             jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'delivered', 'failed', 'dead_lettered')),
    attempts         integer     NOT NULL DEFAULT 0,
    -- attempts made before the last redelivery by hand: the retry schedule starts again
    retry_base       integer     NOT NULL DEFAULT 0,
    -- when the next attempt is due; a claim pushes it forward by the lease, so a delivery
    -- whose dispatcher died is claimed again once the lease has run out
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by       text,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_subscription_idx
    ON webhook_deliveries (subscription_id, created_at DESC);

CREATE TABLE webhook_attempts (
    delivery_id      uuid             NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    attempt          integer          NOT NULL,
    started_at       timestamptz      NOT NULL,
    status_code      integer,
    latency_ms       double precision NOT NULL,
    error            text,
    response_excerpt text,
    instance         text             NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- one delivery per matching active subscription for every event row
CREATE FUNCTION factflow_webhook_fanout() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_config text;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM webhook_subscriptions
        WHERE is_active AND (NEW.type = ANY(event_types) OR '*' = ANY(event_types))
    ) THEN
        RETURN NULL;
    END IF;
    v_config := NEW.payload->>'config_id';
    IF v_config IS NULL AND NEW.execution_id IS NOT NULL THEN
        SELECT config_id::text INTO v_config FROM executions WHERE id = NEW.execution_id;
    END IF;
    INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body)
    SELECT s.id, NEW.id, NEW.type, jsonb_build_object(
               'type', NEW.type,
               'timestamp', NEW.created_at,
               'event_id', NEW.id,
               'data', NEW.payload || jsonb_build_object(
                   'execution_id', NEW.execution_id, 'config_id', v_config))
    FROM webhook_subscriptions s
    WHERE s.is_active
      AND (NEW.type = ANY(s.event_types) OR '*' = ANY(s.event_types))
      AND (s.filters->>'config_id' IS NULL OR s.filters->>'config_id' = v_config)
      AND (s.filters->>'execution_id' IS NULL
           OR s.filters->>'execution_id' = NEW.execution_id::text)
      AND (s.filters->>'route_id' IS NULL OR s.filters->>'route_id' = NEW.payload->>'route_id')
      AND (s.filters->>'adapter_name' IS NULL
           OR s.filters->>'adapter_name' = NEW.payload->>'adapter_name');
    IF FOUND THEN
        -- one notification per transaction (identical payloads are folded)
        PERFORM pg_notify('factflow_webhooks', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_webhook_fanout
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION factflow_webhook_fanout();

-- Lineage is written in batches (one COPY per epoch and worker): one statement-level
-- trigger turns each batch into one `storage.object_created` event per route and adapter
-- (listing the objects) and one `lineage.failed` event per failed row. The batching is
-- what keeps the high-volume event bounded: at most routes x adapters events per epoch.
CREATE FUNCTION factflow_lineage_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, execution_id, payload)
    SELECT 'storage.object_created', execution_id, jsonb_build_object(
               'route_id', route_id, 'adapter_name', adapter_name,
               'count', count(*),
               'objects', jsonb_agg(jsonb_build_object(
                   'key', storage_key, 'lineage_id', id, 'message_id', message_id)))
    FROM new_lineage
    WHERE storage_key IS NOT NULL
    GROUP BY execution_id, route_id, adapter_name;
    INSERT INTO events (type, execution_id, payload)
    SELECT 'lineage.failed', execution_id, jsonb_build_object(
               'lineage_id', id, 'route_id', route_id, 'adapter_name', adapter_name,
               'stage_name', stage_name, 'message_id', message_id, 'error', error,
               'attempts', attempts)
    FROM new_lineage
    WHERE status = 'failed';
    RETURN NULL;
END;
$$;

CREATE TRIGGER lineage_events
    AFTER INSERT ON lineage
    REFERENCING NEW TABLE AS new_lineage
    FOR EACH STATEMENT EXECUTE FUNCTION factflow_lineage_events();

CREATE FUNCTION factflow_dead_letter_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, execution_id, payload)
    VALUES ('deadletter.created', NEW.execution_id, jsonb_build_object(
        'dead_letter_id', NEW.id, 'route_id', NEW.route_id, 'queue', NEW.queue,
        'lineage_id', NEW.lineage_id, 'error_type', NEW.error_type, 'error', NEW.error,
        'attempts', NEW.attempts, 'reason', NEW.reason));
    RETURN NULL;
END;
$$;

CREATE TRIGGER dead_letters_events
    AFTER INSERT ON dead_letters
    FOR EACH ROW EXECUTE FUNCTION factflow_dead_letter_events();

-- Triggers in: a config started by events whose name matches `event_pattern` (a glob)
-- and whose data satisfies `condition` (the pipeline condition language).
CREATE TABLE event_triggers (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    config_id      uuid        NOT NULL,
    event_pattern  text        NOT NULL,
    condition      jsonb,
    -- the event's data is sent as one message to this queue of the pipeline
    input_queue    text,
    -- refuse to start beyond this many running executions of the config
    max_running    integer     CHECK (max_running IS NULL OR max_running >= 1),
    is_active      boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_triggers_config_idx ON event_triggers (config_id);

CREATE TABLE inbound_events (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    -- [{trigger_id, config_id, execution_id, error}]
    results     jsonb       NOT NULL DEFAULT '[]'
);
CREATE INDEX inbound_events_received_idx ON inbound_events (received_at DESC);

CREATE TABLE schedules (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    config_id        uuid        NOT NULL,
    cron             text        NOT NULL,
    timezone         text        NOT NULL DEFAULT 'UTC',
    -- after downtime: `skip` the ticks missed, or `run_once` for all of them
    missed           text        NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip', 'run_once')),
    max_running      integer     CHECK (max_running IS NULL OR max_running >= 1),
    next_run_at      timestamptz NOT NULL,
    last_run_at      timestamptz,
    last_execution_id uuid,
    last_error       text,
    is_active        boolean     NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE is_active;

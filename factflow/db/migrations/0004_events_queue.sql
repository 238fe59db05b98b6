-- Events (NOTIFY feeds SSE and webhooks) and the `postgres` queue provider's table.

CREATE TABLE events (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type         text        NOT NULL,
    execution_id uuid,
    payload      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_execution_idx ON events (execution_id, id);

-- NOTIFY payloads are capped at 8000 bytes, so listeners get the id and read the row
CREATE FUNCTION factflow_notify_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('factflow_events', json_build_object(
        'id', NEW.id, 'type', NEW.type, 'execution_id', NEW.execution_id)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION factflow_notify_event();

CREATE TABLE queue_messages (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue       text        NOT NULL,
    body        bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}',
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    -- a claim pushes visible_at forward: the claim expires (and the message is
    -- delivered again) unless it is acked or extended before then
    visible_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer     NOT NULL DEFAULT 0,
    locked_by   text
);
CREATE INDEX queue_messages_ready_idx ON queue_messages (queue, visible_at, id);

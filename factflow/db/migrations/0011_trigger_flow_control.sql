-- Triggers from a config's YAML (`triggers:`), and flow control on event triggers.
--
-- `origin` tells a trigger or schedule made through the API from one registered from the
-- config's `triggers:` section when the config is saved (`spec_key` identifies the entry,
-- so saving the same entries again keeps their rows: a schedule keeps its next tick).

ALTER TABLE event_triggers
    ADD COLUMN origin     text  NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'config')),
    ADD COLUMN spec_key   text,
    ADD COLUMN init_payload boolean NOT NULL DEFAULT false,
    -- {limit, period_seconds, key}: at most `limit` starts per period (per key value)
    ADD COLUMN rate_limit jsonb,
    -- {period_seconds, key, timeout_seconds}: a burst starts one execution, with its last event
    ADD COLUMN debounce   jsonb;
CREATE UNIQUE INDEX event_triggers_config_spec
    ON event_triggers (config_id, spec_key) WHERE origin = 'config';

ALTER TABLE schedules
    ADD COLUMN origin   text NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'config')),
    ADD COLUMN spec_key text;
CREATE UNIQUE INDEX schedules_config_spec
    ON schedules (config_id, spec_key) WHERE origin = 'config';

-- the starts a rate-limited trigger made, kept for one period
CREATE TABLE trigger_rate_starts (
    trigger_id uuid        NOT NULL REFERENCES event_triggers ON DELETE CASCADE,
    rate_key   text        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trigger_rate_starts_idx ON trigger_rate_starts (trigger_id, rate_key, started_at);

-- one open burst per debounced trigger and key: the last event, and when it starts
CREATE TABLE trigger_debounces (
    trigger_id  uuid        NOT NULL REFERENCES event_triggers ON DELETE CASCADE,
    rate_key    text        NOT NULL,
    event_id    text        NOT NULL,
    event_name  text        NOT NULL,
    data        jsonb       NOT NULL,
    events      integer     NOT NULL DEFAULT 1,
    first_at    timestamptz NOT NULL DEFAULT now(),
    due_at      timestamptz NOT NULL,
    PRIMARY KEY (trigger_id, rate_key)
);
CREATE INDEX trigger_debounces_due_idx ON trigger_debounces (due_at);

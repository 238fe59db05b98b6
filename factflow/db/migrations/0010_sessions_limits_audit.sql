-- Access control, second part (factflow/auth): password login with sessions and lockout,
-- per-key rate limits and caps on running executions, and the audit log.

-- argon2id hashes (argon2-cffi's encoded form); null: the user has no password (keys or
-- SSO only) and cannot log in with one
ALTER TABLE users
    ADD COLUMN password_hash       text,
    ADD COLUMN password_changed_at timestamptz,
    ADD COLUMN last_login_at       timestamptz;

-- consecutive failed logins per address (lower-cased), known user or not, so a lockout
-- says nothing about whether the account exists
CREATE TABLE login_failures (
    email           text        PRIMARY KEY,
    failures        integer     NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until    timestamptz
);

-- a login's session: the cookie's token is stored only as HMAC-SHA256(server secret, token)
CREATE TABLE sessions (
    id             uuid        PRIMARY KEY,
    token_hash     text        NOT NULL UNIQUE,
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    client_address text,
    user_agent     text
);
CREATE INDEX sessions_user ON sessions (user_id);

-- per-key limits; null: the server's defaults (FACTFLOW_AUTH_RATE_LIMIT_PER_MINUTE,
-- FACTFLOW_AUTH_KEY_MAX_RUNNING_EXECUTIONS)
ALTER TABLE api_keys
    ADD COLUMN rate_limit_per_minute  integer CHECK (rate_limit_per_minute > 0),
    ADD COLUMN max_running_executions integer CHECK (max_running_executions > 0);

-- rate limits (GCRA): one row per subject (a key, a user, a login address) holding its
-- theoretical arrival time. Unlogged: no WAL and no flush per request; a crash of
-- Postgres forgets the counters, which only lets a client burst once more.
CREATE UNLOGGED TABLE rate_limits (
    subject text        PRIMARY KEY,
    tat     timestamptz NOT NULL
);

-- who started an execution (the cap on running executions per key counts these)
ALTER TABLE executions
    ADD COLUMN started_by     text,
    ADD COLUMN started_by_key uuid;
CREATE INDEX executions_running_by_key ON executions (started_by_key)
    WHERE status IN ('running', 'cancelling');

-- every state-changing request (and every refused one), written before its response
-- goes out; no foreign keys, so the record outlives the keys and users it names
CREATE TABLE audit_log (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    actor          text        NOT NULL,
    actor_kind     text        NOT NULL,
    key_prefix     text,
    action         text        NOT NULL,
    method         text        NOT NULL,
    path           text        NOT NULL,
    resource_type  text,
    resource_id    text,
    status_code    integer     NOT NULL,
    outcome        text        NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
    error_code     text,
    client_address text,
    user_agent     text,
    correlation_id text,
    details        jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_time ON audit_log (occurred_at);
CREATE INDEX audit_log_actor ON audit_log (lower(actor), id);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id, id);

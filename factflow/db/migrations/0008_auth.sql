-- Access control (factflow/auth): people with roles, and the API keys they own.
-- A key is stored only as HMAC-SHA256(server secret, key); `prefix` (the key's first
-- characters, shown in listings) finds the row without scanning. Revoked and expired
-- keys stay for the audit trail; `rotated_from` links a rotated key to its predecessor.

CREATE TABLE users (
    id         uuid        PRIMARY KEY,
    email      text        NOT NULL,
    name       text,
    role       text        NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    disabled   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    prefix       text        NOT NULL UNIQUE,
    key_type     text        NOT NULL CHECK (key_type IN ('live', 'test', 'ro')),
    key_hash     text        NOT NULL,
    name         text        NOT NULL,
    owner_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes       text[]      NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    rotated_from uuid        REFERENCES api_keys (id) ON DELETE SET NULL
);
CREATE INDEX api_keys_owner ON api_keys (owner_id);

-- Routes paused across every execution (`PATCH /api/v1/pipelines/{route_id}`).
-- A row means paused; resuming deletes it. Workers poll this table (or the
-- `route.paused` / `route.resumed` events) to stop taking messages on a paused route.

CREATE TABLE route_states (
    route_id   text        PRIMARY KEY,
    state      text        NOT NULL CHECK (state IN ('paused')),
    reason     text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

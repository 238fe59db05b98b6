"""Paused routes: one row per route paused across every execution."""

from __future__ import annotations

from factflow.db.connection import DbConnection
from factflow.db.repositories.events import emit_event


def paused_routes(conn: DbConnection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT route_id FROM route_states").fetchall()}


def set_route_paused(
    conn: DbConnection, route_id: str, paused: bool, *, reason: str | None = None
) -> bool:
    """Pause or resume `route_id` (event `route.paused` / `route.resumed`).

    Returns whether the state changed.
    """
    with conn.transaction():
        if paused:
            cur = conn.execute(
                "INSERT INTO route_states (route_id, state, reason) VALUES (%s, 'paused', %s)"
                " ON CONFLICT (route_id) DO NOTHING",
                (route_id, reason),
            )
        else:
            cur = conn.execute("DELETE FROM route_states WHERE route_id = %s", (route_id,))
        changed = cur.rowcount > 0
        if changed:
            emit_event(conn, "route.paused" if paused else "route.resumed", {"route_id": route_id})
    return changed

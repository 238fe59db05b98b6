"""Rate-limit state (`rate_limits`, unlogged): one GCRA row per subject.

GCRA (the generic cell rate algorithm) keeps one timestamp per subject, its theoretical
arrival time (TAT). A request is allowed when TAT, advanced by one emission interval,
stays within the tolerance of now; only allowed requests advance it. One upsert decides
and records atomically (the row lock orders concurrent requests), and Postgres's clock is
the only clock, so every server replica shares the same limit.
"""

from __future__ import annotations

from factflow.db.connection import DbConnection


def take(conn: DbConnection, subject: str, *, interval: float, tolerance: float) -> float | None:
    """Take one request for `subject`: None when allowed, else the seconds until one is.

    `interval` is the seconds one request costs (window / limit), `tolerance` the burst
    allowance in seconds (the window: a full window's requests may come at once).
    """
    params = {"subject": subject, "interval": interval, "tolerance": tolerance}
    allowed = conn.execute(
        "INSERT INTO rate_limits AS r (subject, tat)"
        " VALUES (%(subject)s, now() + make_interval(secs => %(interval)s))"
        " ON CONFLICT (subject) DO UPDATE"
        " SET tat = greatest(r.tat, now()) + make_interval(secs => %(interval)s)"
        " WHERE greatest(r.tat, now()) + make_interval(secs => %(interval)s)"
        "  <= now() + make_interval(secs => %(tolerance)s)"
        " RETURNING 1",
        params,
    ).fetchone()
    if allowed is not None:
        return None
    row = conn.execute(
        "SELECT extract(epoch FROM greatest(tat, now()) + make_interval(secs => %(interval)s)"
        " - make_interval(secs => %(tolerance)s) - now()) FROM rate_limits"
        " WHERE subject = %(subject)s",
        params,
    ).fetchone()
    return max(float(row[0]), 0.0) if row is not None else 0.0

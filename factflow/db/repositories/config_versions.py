"""Config queries the server needs beyond `configs`: inactive versions."""

from __future__ import annotations

from psycopg.rows import class_row

from factflow.db.connection import DbConnection
from factflow.db.repositories.configs import _COLUMNS, PipelineConfig


def list_inactive_versions(
    conn: DbConnection, *, limit: int = 100, offset: int = 0
) -> list[PipelineConfig]:
    """Superseded versions of every config, by name, newest version first."""
    with conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM pipeline_configs WHERE NOT is_active"
            " ORDER BY name, version DESC LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return cur.fetchall()

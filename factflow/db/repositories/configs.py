"""Pipeline configs: every update is a new version; one version per config is active."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from factflow.db.connection import DbConnection
from factflow.db.exceptions import ConflictError, NotFoundError

_COLUMNS = (
    "id, version, name, description, source_type, source_path, config_yaml, config_hash, "
    "is_active, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    id: uuid.UUID
    version: int
    name: str
    description: str | None
    source_type: str
    source_path: str | None
    config_yaml: str
    config_hash: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


def config_hash(config_yaml: str) -> str:
    """The sha256 of the YAML text; equal text means no new version."""
    return hashlib.sha256(config_yaml.encode()).hexdigest()


def create_config(
    conn: DbConnection,
    *,
    name: str,
    config_yaml: str,
    description: str | None = None,
    source_type: str = "inline",
    source_path: str | None = None,
) -> PipelineConfig:
    """Version 1 of a new config; ConflictError when an active config has that name."""
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
            cur.execute(
                f"INSERT INTO pipeline_configs (id, version, name, description, source_type,"
                f" source_path, config_yaml, config_hash) VALUES (%s, 1, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (
                    uuid.uuid4(),
                    name,
                    description,
                    source_type,
                    source_path,
                    config_yaml,
                    config_hash(config_yaml),
                ),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        msg = f"a config named {name!r} already exists; update it to add a version"
        raise ConflictError(msg) from exc
    assert row is not None
    return row


def get_config(
    conn: DbConnection, config_id: uuid.UUID, version: int | None = None
) -> PipelineConfig:
    """A config's active version, or the given version; NotFoundError when missing."""
    with conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
        if version is None:
            cur.execute(
                f"SELECT {_COLUMNS} FROM pipeline_configs WHERE id = %s"
                " ORDER BY is_active DESC, version DESC LIMIT 1",
                (config_id,),
            )
        else:
            cur.execute(
                f"SELECT {_COLUMNS} FROM pipeline_configs WHERE id = %s AND version = %s",
                (config_id, version),
            )
        row = cur.fetchone()
    if row is None:
        what = f"config {config_id}" + ("" if version is None else f" version {version}")
        msg = f"{what} does not exist"
        raise NotFoundError(msg)
    return row


def get_config_by_name(conn: DbConnection, name: str) -> PipelineConfig:
    """The active version of the config called `name`; NotFoundError when none is active."""
    with conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM pipeline_configs WHERE name = %s AND is_active", (name,)
        )
        row = cur.fetchone()
    if row is None:
        msg = f"no active config named {name!r}"
        raise NotFoundError(msg)
    return row


def list_configs(conn: DbConnection, *, limit: int = 100, offset: int = 0) -> list[PipelineConfig]:
    """The active version of every config, by name."""
    with conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM pipeline_configs WHERE is_active"
            " ORDER BY name LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return cur.fetchall()


def list_versions(conn: DbConnection, config_id: uuid.UUID) -> list[PipelineConfig]:
    """Every version of one config, newest first."""
    with conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM pipeline_configs WHERE id = %s ORDER BY version DESC",
            (config_id,),
        )
        return cur.fetchall()


def update_config(
    conn: DbConnection,
    config_id: uuid.UUID,
    *,
    config_yaml: str | None = None,
    name: str | None = None,
    description: str | None = None,
    source_type: str | None = None,
    source_path: str | None = None,
) -> PipelineConfig:
    """A new active version with the given fields changed; the old one stays, inactive.

    Unchanged fields return the current version instead of adding an identical one.
    """
    with conn.transaction():
        with conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
            # the row lock serialises concurrent updates of one config
            cur.execute(
                f"SELECT {_COLUMNS} FROM pipeline_configs WHERE id = %s"
                " ORDER BY is_active DESC, version DESC LIMIT 1 FOR UPDATE",
                (config_id,),
            )
            current = cur.fetchone()
        if current is None:
            msg = f"config {config_id} does not exist"
            raise NotFoundError(msg)
        new_yaml = current.config_yaml if config_yaml is None else config_yaml
        new_name = current.name if name is None else name
        new_description = current.description if description is None else description
        new_source_type = current.source_type if source_type is None else source_type
        new_source_path = current.source_path if source_path is None else source_path
        wanted = (new_yaml, new_name, new_description, new_source_type, new_source_path)
        existing = (
            current.config_yaml,
            current.name,
            current.description,
            current.source_type,
            current.source_path,
        )
        if wanted == existing and current.is_active:
            return current
        conn.execute(
            "UPDATE pipeline_configs SET is_active = false, updated_at = now()"
            " WHERE id = %s AND is_active",
            (config_id,),
        )
        try:
            with conn.cursor(row_factory=class_row(PipelineConfig)) as cur:
                cur.execute(
                    f"INSERT INTO pipeline_configs (id, version, name, description, source_type,"
                    f" source_path, config_yaml, config_hash)"
                    f" SELECT %s, max(version) + 1, %s, %s, %s, %s, %s, %s"
                    f" FROM pipeline_configs WHERE id = %s RETURNING {_COLUMNS}",
                    (
                        config_id,
                        new_name,
                        new_description,
                        new_source_type,
                        new_source_path,
                        new_yaml,
                        config_hash(new_yaml),
                        config_id,
                    ),
                )
                row = cur.fetchone()
        except psycopg.errors.UniqueViolation as exc:
            msg = f"another config is named {new_name!r}"
            raise ConflictError(msg) from exc
    assert row is not None
    return row


def delete_config(conn: DbConnection, config_id: uuid.UUID) -> int:
    """Delete every version; executions keep their snapshot. Returns the versions deleted."""
    with conn.transaction():
        cur = conn.execute("DELETE FROM pipeline_configs WHERE id = %s", (config_id,))
        deleted = cur.rowcount
    if deleted == 0:
        msg = f"config {config_id} does not exist"
        raise NotFoundError(msg)
    return deleted

"""The schema migration runner: versioned SQL files applied in order, once, under a lock.

Files are `migrations/NNNN_name.sql`, shipped as package data. Each is applied in its own
transaction and recorded in `factflow_schema_migrations` with its checksum; an advisory
lock makes concurrent starters (several workers, the server) apply each file exactly once.
An applied file must never change: a checksum mismatch stops the runner.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from factflow.db.connection import DbConnection
from factflow.db.exceptions import MigrationError

VERSION_TABLE = "factflow_schema_migrations"
# any constant works; it only has to differ from other applications' advisory locks
_LOCK_KEY = 0x66616374666C6F77  # "factflow"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """The migrations shipped with factflow, by version."""
    found: list[Migration] = []
    for entry in resources.files("factflow.db").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        msg = f"duplicate migration versions in factflow/db/migrations: {versions}"
        raise MigrationError(msg)
    return found


def applied_versions(conn: DbConnection) -> dict[int, str]:
    """Applied migration versions with their checksums; empty for a fresh database."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute(f"SELECT version, checksum FROM {VERSION_TABLE}").fetchall()
    return {int(v): str(c) for v, c in rows}


def current_version(conn: DbConnection) -> int:
    """The newest applied version, 0 for a fresh database."""
    return max(applied_versions(conn), default=0)


def pending_migrations(conn: DbConnection) -> list[Migration]:
    applied = applied_versions(conn)
    return [m for m in available_migrations() if m.version not in applied]


def migrate(conn: DbConnection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply the pending migrations; returns the versions applied now (empty when current).

    Safe to call from many processes at once. `conn` must be in autocommit mode (as
    `factflow.db.connect` gives) because each migration commits on its own.
    """
    if not conn.autocommit:
        msg = "migrate() needs an autocommit connection (use factflow.db.connect)"
        raise MigrationError(msg)
    wanted = available_migrations() if migrations is None else migrations
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = applied_versions(conn)
        _check_history(applied, wanted)
        done: list[int] = []
        for migration in wanted:
            if migration.version in applied:
                continue
            _apply(conn, migration)
            done.append(migration.version)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _check_history(applied: dict[int, str], wanted: list[Migration]) -> None:
    known = {m.version: m for m in wanted}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        msg = (
            f"the database has schema versions {newer} that this factflow does not know; "
            "upgrade factflow (never run an older one against a newer database)"
        )
        raise MigrationError(msg)
    for version, checksum in applied.items():
        migration = known[version]
        if migration.checksum != checksum:
            msg = (
                f"migration {version:04d}_{migration.name}.sql changed after it was applied; "
                "restore the original file and add a new migration instead"
            )
            raise MigrationError(msg)


def _apply(conn: DbConnection, migration: Migration) -> None:
    try:
        with conn.transaction():
            # no parameters: psycopg sends the file as one multi-statement query
            conn.execute(migration.sql.encode())
            conn.execute(
                f"INSERT INTO {VERSION_TABLE} (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"migration {migration.version:04d}_{migration.name}.sql failed: {reason}"
        raise MigrationError(msg) from exc

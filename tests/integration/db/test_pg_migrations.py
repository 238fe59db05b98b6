"""The migration runner against real, fresh databases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from factflow.db import connect, migrate
from factflow.db.exceptions import MigrationError
from factflow.db.lineage_writer import LINEAGE_COLUMNS
from factflow.db.migrate import (
    VERSION_TABLE,
    Migration,
    available_migrations,
    current_version,
    pending_migrations,
)

pytestmark = pytest.mark.integration

LINEAGE_COLUMNS_IN_DESIGN = [
    "id",
    "execution_id",
    "route_id",
    "adapter_name",
    "adapter_index",
    "stage_name",
    "message_id",
    "parent_id",
    "status",
    "attempts",
    "input_hash",
    "output_hash",
    "error",
    "started_at",
    "completed_at",
    "duration_ms",
    "batch_id",
    "storage_key",
    "metadata",
]


def test_migrations_apply_once_then_are_idempotent(fresh_database: Callable[[], str]) -> None:
    shipped = [m.version for m in available_migrations()]
    # unique and ascending; numbers are handed out per branch, so one may land before a
    # lower one (the runner applies every version it has not applied, gaps or not)
    assert shipped == sorted(set(shipped)) and shipped[0] == 1
    with connect(fresh_database()) as conn:
        assert current_version(conn) == 0
        assert migrate(conn) == shipped
        assert migrate(conn) == []
        assert current_version(conn) == shipped[-1]
        assert pending_migrations(conn) == []
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {
        "pipeline_configs",
        "executions",
        "lineage",
        "dead_letters",
        "recovery_archives",
        "events",
        "queue_messages",
        VERSION_TABLE,
    } <= tables


def test_lineage_writer_copies_the_designed_columns() -> None:
    # the writer's COPY column list is the contract with DESIGN.md "Postgres"
    assert list(LINEAGE_COLUMNS) == LINEAGE_COLUMNS_IN_DESIGN


def test_lineage_table_has_the_designed_columns(db_url: str) -> None:
    with connect(db_url) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'lineage' ORDER BY ordinal_position"
            ).fetchall()
        ]
    assert columns == LINEAGE_COLUMNS_IN_DESIGN


def test_concurrent_runners_apply_each_migration_once(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    results: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run() -> None:
        try:
            with connect(url) as conn:
                start.wait()
                results.append(migrate(conn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in available_migrations()]


def test_an_edited_applied_migration_is_refused(db_url: str) -> None:
    edited = [
        replace(m, sql=m.sql + "\n-- edited\n") if m.version == 1 else m
        for m in available_migrations()
    ]
    with connect(db_url) as conn, pytest.raises(MigrationError, match=r"0001_.*changed"):
        migrate(conn, edited)


def test_a_database_newer_than_factflow_is_refused(db_url: str) -> None:
    shipped = available_migrations()
    older = [m for m in shipped if m.version != shipped[-1].version]
    with connect(db_url) as conn, pytest.raises(MigrationError, match="does not know"):
        migrate(conn, older)


def test_a_failing_migration_keeps_the_earlier_ones(fresh_database: Callable[[], str]) -> None:
    migrations = [
        Migration(1, "good", "CREATE TABLE good_one (id int);"),
        Migration(2, "bad", "CREATE TABLE bad_one (id int); SELECT no_such_function();"),
    ]
    with connect(fresh_database()) as conn:
        with pytest.raises(MigrationError, match=r"0002_bad\.sql failed"):
            migrate(conn, migrations)
        assert current_version(conn) == 1
        exists = conn.execute("SELECT to_regclass('bad_one') IS NOT NULL").fetchone()
        assert exists == (False,)


def test_migrate_refuses_a_connection_in_transaction_mode(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.autocommit = False
        with pytest.raises(MigrationError, match="autocommit"):
            migrate(conn)


def test_event_payloads_are_stored_uncompressed(fresh_database: Callable[[], str]) -> None:
    """A lineage batch's `storage.object_created` payload lists all its objects:
    compressing it cost the batch's COPY a fifth of its time (migration 0017)."""
    with connect(fresh_database()) as conn:
        migrate(conn)
        row = conn.execute(
            "SELECT attstorage FROM pg_attribute"
            " WHERE attrelid = 'events'::regclass AND attname = 'payload'"
        ).fetchone()
    assert row is not None and row[0] == "e"  # external: out of line, not compressed

"""Versioned pipeline configs."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from factflow.db import DbConnection
from factflow.db.exceptions import ConflictError, NotFoundError
from factflow.db.repositories import configs
from factflow.db.repositories.executions import create_execution, get_execution

pytestmark = pytest.mark.integration


def _name() -> str:
    return f"pipe-{uuid.uuid4().hex[:8]}"


def test_create_gives_version_one_with_the_yaml_hash(conn: DbConnection) -> None:
    created = configs.create_config(conn, name=_name(), config_yaml="routes: {}\n")
    assert created.version == 1
    assert created.is_active
    assert created.config_hash == hashlib.sha256(b"routes: {}\n").hexdigest()
    assert configs.get_config(conn, created.id) == created


def test_update_adds_an_active_version_and_keeps_the_old_one(conn: DbConnection) -> None:
    first = configs.create_config(conn, name=_name(), config_yaml="a: 1\n")
    second = configs.update_config(conn, first.id, config_yaml="a: 2\n", description="two")
    assert (second.id, second.version, second.is_active) == (first.id, 2, True)
    assert configs.get_config(conn, first.id).version == 2
    old = configs.get_config(conn, first.id, version=1)
    assert (old.config_yaml, old.is_active) == ("a: 1\n", False)
    assert [c.version for c in configs.list_versions(conn, first.id)] == [2, 1]
    assert configs.get_config_by_name(conn, first.name).version == 2


def test_an_update_that_changes_nothing_adds_no_version(conn: DbConnection) -> None:
    first = configs.create_config(conn, name=_name(), config_yaml="a: 1\n")
    same = configs.update_config(conn, first.id, config_yaml="a: 1\n")
    assert same.version == 1
    assert len(configs.list_versions(conn, first.id)) == 1


def test_active_names_are_unique(conn: DbConnection) -> None:
    name = _name()
    configs.create_config(conn, name=name, config_yaml="a: 1\n")
    with pytest.raises(ConflictError, match=name):
        configs.create_config(conn, name=name, config_yaml="b: 1\n")
    other = configs.create_config(conn, name=_name(), config_yaml="c: 1\n")
    with pytest.raises(ConflictError, match=name):
        configs.update_config(conn, other.id, name=name)
    # the failed rename left the other config's active version alone
    assert configs.get_config(conn, other.id).version == 1


def test_list_shows_only_the_active_version(conn: DbConnection) -> None:
    first = configs.create_config(conn, name=_name(), config_yaml="a: 1\n")
    configs.update_config(conn, first.id, config_yaml="a: 2\n")
    listed = [c for c in configs.list_configs(conn, limit=10_000) if c.id == first.id]
    assert [c.version for c in listed] == [2]


def test_delete_removes_every_version_and_executions_keep_their_snapshot(
    conn: DbConnection,
) -> None:
    cfg = configs.create_config(conn, name=_name(), config_yaml="a: 1\n")
    execution = create_execution(
        conn,
        pipeline_name=cfg.name,
        config_snapshot={"yaml": cfg.config_yaml},
        config_id=cfg.id,
        config_version=cfg.version,
    )
    configs.update_config(conn, cfg.id, config_yaml="a: 2\n")
    assert configs.delete_config(conn, cfg.id) == 2
    with pytest.raises(NotFoundError):
        configs.get_config(conn, cfg.id)
    with pytest.raises(NotFoundError):
        configs.delete_config(conn, cfg.id)
    kept = get_execution(conn, execution.id)
    assert kept.config_id is None
    assert kept.config_snapshot == {"yaml": "a: 1\n"}

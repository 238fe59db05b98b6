"""`factflow db embedded|migrate|status` through the typer app."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factflow.cli.db import app
from factflow.db import connect
from factflow.db.embedded import embedded_status, stop_embedded
from factflow.db.migrate import available_migrations

pytestmark = pytest.mark.integration

LATEST = f"{available_migrations()[-1].version:04d}"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # outside pytest's basetemp, which pytest keeps at mode 0700 (see tests/integration)
    root = Path(tempfile.mkdtemp(prefix="factflow-cli-pg-"))
    yield root / "pg"
    stop_embedded(root / "pg")
    shutil.rmtree(root, ignore_errors=True)


def test_embedded_starts_prints_the_url_and_stops(data_dir: Path, pg_url: str) -> None:
    runner = CliRunner()
    started = runner.invoke(app, ["embedded", "--data-dir", str(data_dir)])
    assert started.exit_code == 0, started.output
    url = started.stdout.strip()
    assert url.startswith("postgresql://postgres")
    assert str(data_dir) in url
    with connect(url) as conn:
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        version = conn.execute("SHOW server_version_num").fetchone()
        tables = conn.execute("SELECT to_regclass('lineage') IS NOT NULL").fetchone()
    assert "vector" in extensions
    assert version is not None
    assert int(version[0]) >= 180000
    assert tables == (True,)

    again = runner.invoke(app, ["embedded", "--data-dir", str(data_dir)])
    assert (again.exit_code, again.stdout.strip()) == (0, url)
    status = runner.invoke(app, ["embedded", "--data-dir", str(data_dir), "--status"])
    assert (status.exit_code, status.stdout.strip()) == (0, url)

    stopped = runner.invoke(app, ["embedded", "--data-dir", str(data_dir), "--stop"])
    assert stopped.exit_code == 0
    assert embedded_status(data_dir) is None
    gone = runner.invoke(app, ["embedded", "--data-dir", str(data_dir), "--status"])
    assert gone.exit_code == 1


def test_migrate_and_status(db_url: str) -> None:
    runner = CliRunner()
    migrated = runner.invoke(app, ["migrate", "--url", db_url])
    assert migrated.exit_code == 0, migrated.output
    assert migrated.stdout.strip() == f"schema up to date at {LATEST}"
    status = runner.invoke(app, ["status", "--url", db_url])
    assert status.exit_code == 0
    assert f"schema:   {LATEST} (latest {LATEST})" in status.stdout


def test_migrate_against_an_unreachable_database_fails_in_one_line() -> None:
    result = CliRunner().invoke(
        app, ["migrate", "--url", "postgresql://u:topsecret@127.0.0.1:1/db"]
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "topsecret" not in lines[0]
    assert "postgresql://u:***@127.0.0.1:1/db" in lines[0]

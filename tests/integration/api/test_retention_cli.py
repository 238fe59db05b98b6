"""`factflow storage prune` and `factflow deadletters queue ...` as subprocesses against a
real uvicorn server (the fixture and helpers of test_auth_cli.py): they go through the
API, with its checks and error codes."""

from __future__ import annotations

import json
import uuid

import pytest

from factflow.auth.service import bootstrap_admin_key
from factflow.db.connection import connect
from tests.integration.api.test_auth_cli import SECRET, cli, server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["server"]  # the uvicorn fixture, used by name


def test_prune_and_queue_commands_go_through_the_api(server: str, api_db_url: str) -> None:
    with connect(api_db_url) as conn:
        key = bootstrap_admin_key(conn, SECRET, "retention@tests.factflow").key

    usage = cli(server, api_db_url, "storage", "prune", key=key)
    assert usage.returncode == 2 and "--older-than" in usage.stderr

    dry = cli(server, api_db_url, "storage", "prune", "--older-than", "30d", "--dry-run", key=key)
    assert dry.returncode == 0, dry.stderr
    body = json.loads(dry.stdout)  # piped: JSON
    assert body["dry_run"] is True and body["objects"] == 0

    unknown = str(uuid.uuid4())
    refused = cli(server, api_db_url, "storage", "prune", "--execution", unknown, key=key)
    assert refused.returncode == 1 and "RETENTION_INVALID" in refused.stderr

    missing = cli(server, api_db_url, "deadletters", "queue", "list", unknown, key=key)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr

"""`factflow keys ...` and `factflow users ...` as subprocesses against a real uvicorn
server with auth on: the database bootstrap of the first admin key, FACTFLOW_API_KEY and
--api-key, JSON output when piped, 401 and 403 as one error line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from factflow.api import ApiSettings, create_app
from factflow.dataflows.launch import free_ports
from tests.integration.api.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # 13 CLI processes

SECRET = "cli-secret-" + "z" * 32


@pytest.fixture
def server(api_db_url: str, tmp_path: Path) -> Iterator[str]:
    app = create_app(
        ApiSettings(
            environment="test",
            auth_secret=SECRET,
            database_url=api_db_url,
            data_dir=tmp_path / "server",
            recovery_dir=tmp_path / "recovery",
            storage_uri=f"file://{tmp_path / 'storage'}",
        )
    )
    port = free_ports(1)[0]
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/system/readiness", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        pytest.fail("the server did not become ready")
    yield url
    uv.should_exit = True
    thread.join(timeout=30)


def cli(
    server: str, db: str, *args: str, key: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FACTFLOW_SERVER_URL": server,
           "FACTFLOW_DATABASE_URL": db, "FACTFLOW_AUTH_SECRET": SECRET}  # fmt: skip
    env.pop("FACTFLOW_API_KEY", None)
    if key is not None:
        env["FACTFLOW_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "factflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # stdout is a pipe: JSON


def test_keys_and_users_from_the_cli(server: str, api_db_url: str) -> None:
    refused = cli(server, api_db_url, "keys", "list")
    assert refused.returncode == 1
    assert "401 AUTHENTICATION_REQUIRED" in refused.stderr and "FACTFLOW_API_KEY" in refused.stderr

    admin = ok(cli(server, api_db_url, "keys", "create", "--admin", "--owner", "boss@cli.test"))
    assert admin["key"].startswith("ff_live_") and admin["scopes"] == ["admin"]
    key = admin["key"]

    member = ok(
        cli(
            server,
            api_db_url,
            "users",
            "create",
            "--email",
            "dev@cli.test",
            "--role",
            "member",
            key=key,
        )
    )
    assert member["role"] == "member"
    ro = ok(
        cli(server, api_db_url, "keys", "create", "--owner", "dev@cli.test", "--type", "ro",
            "--scope", "configs:read", "--expires", "30d", key=key)
    )  # fmt: skip
    assert ro["key"].startswith("ff_ro_") and ro["expires_at"] is not None
    listed = ok(cli(server, api_db_url, "keys", "list", "--owner", "dev@cli.test", key=key))
    assert [k["prefix"] for k in listed] == [ro["prefix"]]

    denied = cli(server, api_db_url, "--api-key", ro["key"], "keys", "list")
    # keys:manage is no read scope: a read-only key is refused for what it is
    assert denied.returncode == 1 and "403 READ_ONLY_KEY" in denied.stderr
    assert ok(cli(server, api_db_url, "config", "list", key=ro["key"])) == []

    rotated = ok(cli(server, api_db_url, "keys", "rotate", ro["id"], "--grace", "0", key=key))
    assert cli(server, api_db_url, "config", "list", key=ro["key"]).returncode == 1
    assert ok(cli(server, api_db_url, "config", "list", key=rotated["key"])) == []
    revoked = ok(cli(server, api_db_url, "keys", "revoke", rotated["id"], key=key))
    assert revoked["status"] == "revoked"

    demoted = ok(cli(server, api_db_url, "users", "set-role", "dev@cli.test", "viewer", key=key))
    assert demoted["role"] == "viewer"


def test_create_admin_logs_in_and_is_audited(server: str, api_db_url: str) -> None:
    weak = cli(server, api_db_url, "create-admin", "--email", "root@cli.test",
               "--password-stdin", stdin="short\n")  # fmt: skip
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr
    made = ok(cli(server, api_db_url, "create-admin", "--email", "root@cli.test",
                  "--password-stdin", stdin="a long enough passphrase\n"))  # fmt: skip
    assert made["role"] == "admin" and made["has_password"] is True
    with httpx.Client(base_url=server) as browser:
        r = browser.post(
            "/api/v1/auth/login",
            json={"email": "root@cli.test", "password": "a long enough passphrase"},
        )
        assert r.status_code == 200, r.text
        token = r.json()["csrf_token"]
        created = browser.post(
            "/api/v1/users", json={"email": "new@cli.test"}, headers={"X-CSRF-Token": token}
        )
        assert created.status_code == 201, created.text
    key = ok(cli(server, api_db_url, "keys", "create", "--admin", "--owner", "root@cli.test"))
    audit = ok(cli(server, api_db_url, "audit", "--action", "create_user",
                   "--actor", "root@cli.test", key=key["key"]))  # fmt: skip
    assert [(e["actor"], e["status_code"]) for e in audit] == [("root@cli.test", 201)]
    new_password = "the new user's password\n"
    set_pw = ok(cli(server, api_db_url, "users", "set-password", "new@cli.test",
                    "--password-stdin", stdin=new_password, key=key["key"]))  # fmt: skip
    assert set_pw["has_password"] is True

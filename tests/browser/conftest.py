"""One real server for the module's browser tests, in key mode (so sign-in and a viewer's
page can be tested): embedded Postgres in tmp, worker processes that can import the test
adapters, an admin (the bootstrap key, and a login password the page signs in with) and a
viewer's read-only key (made through the API).
Playwright's own browser download cannot run here, so it drives the system Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from factflow.dataflows.launch import free_ports
from factflow.workflows.webscraper.browser import find_chromium
from tests.e2e.helpers import worker_env

CHROMIUM = find_chromium()
SECRET = "browser-tests-secret-0123456789abcdef"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
READS = ["configs:read", "executions:read", "lineage:read", "storage:read", "search:read",
         "system:read"]  # fmt: skip

try:
    from playwright.sync_api import Browser, Playwright, sync_playwright
except ImportError:  # pragma: no cover - the [browser] extra is missing
    sync_playwright = None

if CHROMIUM is None or sync_playwright is None:
    pytest.skip(
        "no Chromium or Playwright here: apt-get install chromium, pip install 'factflow[browser]'",
        allow_module_level=True,
    )


@dataclass
class Dashboard:
    url: str
    root: Path
    database_url: str
    admin_key: str
    viewer_key: str

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        response = httpx.request(
            method, f"{self.url}/api/v1/{path}", headers={"X-API-Key": self.admin_key},
            timeout=30, **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip
        response.raise_for_status()
        return response


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v1/system/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"server did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="package")
def dashboard() -> Iterator[Dashboard]:
    from factflow.auth.service import bootstrap_admin_key
    from factflow.db.connection import connect
    from factflow.db.embedded import start_embedded, stop_embedded
    from factflow.db.migrate import migrate

    # not under pytest's basetemp, as tests/integration/conftest.py says: Postgres runs as
    # another user when we are root, and a concurrent pytest session resets basetemp's mode
    root = Path(tempfile.mkdtemp(prefix="factflow-dashboard-"))
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    pg = start_embedded(root / "pg", keep_running=True)
    log = root / "server.log"
    env = worker_env(
        FACTFLOW_AUTH_SECRET=SECRET, FACTFLOW_HEARTBEAT_SECONDS="0.5", FACTFLOW_STORE_STAGES="1"
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "factflow", "serve", "--embedded", "--port", str(port),
             "--pg-data-dir", str(root / "pg"), "--log-level", "warning"],
            cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        _wait_healthy(proc, url, log)
        with connect(pg.url) as conn:
            migrate(conn)
            admin = bootstrap_admin_key(conn, SECRET, ADMIN_EMAIL, name="browser tests")
        headers = {"X-API-Key": admin.key}
        # the admin signs in with a password (session cookie + CSRF), the viewer with a key
        users = httpx.get(f"{url}/api/v1/users", headers=headers).json()
        admin_id = next(u["id"] for u in users if u["email"] == ADMIN_EMAIL)
        httpx.put(
            f"{url}/api/v1/users/{admin_id}/password",
            headers=headers,
            json={"password": ADMIN_PASSWORD},
        ).raise_for_status()
        httpx.post(
            f"{url}/api/v1/users", headers=headers, json={"email": "viewer@example.com"}
        ).raise_for_status()
        viewer = httpx.post(
            f"{url}/api/v1/keys",
            headers=headers,
            json={"name": "viewer", "scopes": READS, "owner_email": "viewer@example.com"},
        )
        viewer.raise_for_status()
        yield Dashboard(url, root, pg.url, admin.key, viewer.json()["key"])
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
        stop_embedded(root / "pg")
        shutil.rmtree(root, ignore_errors=True)


# package scope, not session: Playwright's sync API keeps an asyncio loop running on the
# main thread until it stops, and every later test calling asyncio.run() would fail
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    assert sync_playwright is not None
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield browser
    browser.close()

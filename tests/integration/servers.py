"""A `factflow serve` process on the test's Postgres, for tests of several server replicas."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.helpers import wait_until, worker_env


class Replica:
    """One `factflow serve` process in its own folder (development mode: no auth)."""

    def __init__(self, name: str, folder: Path, port: int, db_url: str, **settings: str) -> None:
        """`settings` (FACTFLOW_* variables) replace the defaults below."""
        self.name, self.folder, self.url = name, folder, f"http://127.0.0.1:{port}"
        folder.mkdir(parents=True)
        defaults = {
            "FACTFLOW_DATABASE_URL": db_url,
            "FACTFLOW_HEARTBEAT_SECONDS": "0.5",
            "FACTFLOW_STALE_AFTER_SECONDS": "6",
            "FACTFLOW_CANCEL_GRACE_SECONDS": "5",
            "FACTFLOW_RESUME_ABANDONED": "true",
            "FACTFLOW_INSTANCE_ID": name,
            "FACTFLOW_VALIDATE_PIPELINES_ON_START": "false",
        }
        env = worker_env(**{**defaults, **settings})
        with (folder / "server.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "factflow", "serve", "--port", str(port),
                 "--log-level", "warning"],
                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            assert self.proc.poll() is None, self.log()
            try:
                return httpx.get(f"{self.url}/api/v1/system/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 90, f"replica {self.name} to start")

    @property
    def up(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.up:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return (self.folder / "server.log").read_text()[-4000:]

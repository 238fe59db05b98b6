"""`factflow serve --embedded` as a real process, driven by the CLI client.

Embedded Postgres in tmp, real uvicorn, real worker processes: create a config from the
shipped text pipeline, run it with inline inputs, `execution wait` until completed, read
lineage and stored artefacts; then kill the server mid-run, start it again and see the
execution interrupted and resumed.
"""

from __future__ import annotations

import json
import os
import pty
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from factflow.dataflows.launch import free_ports
from tests.e2e.helpers import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Server:
    def __init__(self, cwd: Path, port: int) -> None:
        self.cwd = cwd
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.cwd / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "factflow", "serve", "--embedded", "--port", str(self.port),
             "--pg-data-dir", str(self.cwd / "pg"), "--log-level", "warning"],
            cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "FACTFLOW_HEARTBEAT_SECONDS": "0.5"},
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited: {(self.cwd / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/system/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"server did not start: {(self.cwd / 'server.log').read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "factflow", "--server", self.url, *args],
            cwd=self.cwd, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def in_terminal(self, *args: str, timeout: float = 60) -> str:
        """The CLI's stdout when it is a real (pseudo-)terminal."""
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "factflow", "--server", self.url, *args],
            cwd=self.cwd, stdout=follower, stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        os.close(follower)  # the child holds it; reading ends with EIO once the child exits
        chunks = []
        try:
            while chunk := os.read(leader, 65536):
                chunks.append(chunk)
        except OSError:
            pass
        finally:
            os.close(leader)
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        return b"".join(chunks).decode()

    def cli_json(self, *args: str) -> Any:
        result = self.cli("--output", "json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, free_ports(1)[0])
    srv.start()
    yield srv
    srv.stop()
    from factflow.db.embedded import stop_embedded

    stop_embedded(tmp_path / "pg")


def test_config_run_wait_lineage_storage(server: Server) -> None:
    config = server.cli_json("config", "create", "-f", str(REPO_ROOT / "pipelines" / "text.yaml"))
    assert config["is_runnable"] is True
    docs = REPO_ROOT / "pipelines" / "data" / "docs.in.jsonl"
    started = server.cli_json("config", "run", config["id"], "--input", f"docs.in={docs}")
    assert started["status"] == "running"
    execution_id = started["execution_id"]

    waited = server.cli("--timeout", "90s", "execution", "wait", execution_id)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "execution.completed" in waited.stdout + waited.stderr

    execution = server.cli_json("execution", "get", execution_id)
    assert execution["status"] == "completed"
    lineage = server.cli_json("lineage", "list", "--execution", execution_id)
    assert lineage and {row["route_id"] for row in lineage} == {"ingest", "dedupe"}
    chain = server.cli_json("lineage", "chain", lineage[-1]["id"])
    assert chain["entry"]["id"] == lineage[-1]["id"]
    objects = server.cli_json("storage", "list", "--execution", execution_id)
    assert objects["count"] > 0
    key = objects["objects"][0]["key"]
    content = server.cli("storage", "get", key)
    assert json.loads(content.stdout)["payload"]
    assert server.cli_json("storage", "metadata", key)["metadata"]["execution-id"] == execution_id
    out = server.cwd / "download"
    assert server.cli("storage", "download", execution_id, "--output-dir", str(out)).returncode == 0
    assert list((out / "executions" / execution_id).rglob("*.json"))
    assert server.cli_json("system", "health")["status"] == "healthy"

    # the seed system's idiom: no --output anywhere, a pipe gets JSON
    factflow = shlex.join([sys.executable, "-m", "factflow", "--server", server.url])
    script = (
        f"{factflow} config run {config['id']} --input docs.in={shlex.quote(str(docs))}"
        f" | jq -r .execution_id | xargs {factflow} --timeout 90s execution wait"
        f" && {factflow} execution list | jq -r '.[].status'"
    )
    idiom = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        cwd=server.cwd, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert idiom.returncode == 0, idiom.stdout + idiom.stderr
    assert '"type": "execution.completed"' in idiom.stdout  # wait's events, one JSON each
    assert idiom.stdout.rstrip().splitlines()[-2:] == ["completed", "completed"]
    # on a terminal the same commands print text; --output text forces it in a pipe
    table = server.in_terminal("config", "list")
    assert "is_runnable" in table and config["id"] in table and not table.lstrip().startswith("[")
    assert json.loads(server.cli("execution", "get", execution_id).stdout)["status"] == "completed"
    forced = server.cli("execution", "get", execution_id, "--output", "text")
    assert "status: completed" in forced.stdout
    assert (
        "status: completed"
        in server.cli("--output", "text", "execution", "get", execution_id).stdout
    )

    missing = server.cli("execution", "get", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1
    assert "404 NOT_FOUND" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_killed_server_interrupts_then_resumes(server: Server) -> None:
    text = REPO_ROOT / "pipelines" / "text-postgres.yaml"
    started = server.cli_json("execution", "start", "-f", str(text))
    execution_id = started["execution_id"]
    pids = [w["pid"] for w in started["workers"]]

    server.stop(signal.SIGKILL)
    server.start()  # finds the orphaned workers, stops them, marks the execution interrupted
    assert server.cli_json("execution", "get", execution_id)["status"] == "interrupted"
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}/cmdline").exists()
            or b"factflow.flow" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        )

    resumed = server.cli_json("execution", "resume", execution_id)
    assert resumed["status"] == "running"
    assert server.cli_json("execution", "cancel", execution_id)["status"] == "cancelling"
    waited = server.cli("--timeout", "60s", "execution", "wait", execution_id)
    assert waited.returncode == 1
    assert server.cli_json("execution", "get", execution_id)["status"] == "cancelled"


SEED_SHAPED = """version: "1.0"
name: webscraper-shaped
routes:
  sitemap:
    inbound: {queue: sitemap.urls}
    adapters:
      - type: split
        config: {field: urls, into: url}
    outbound: page.urls
  scrape:
    inbound: {queue: page.urls, external: true}
    adapters:
      - type: set_metadata
        config: {values: {scraped: true}}
    outbound: pages.out
init_message:
  route: sitemap
  payload: {urls: [a, b, c, d, e]}
"""


def test_seed_shaped_pipeline_completes_on_the_default_queue(server: Server) -> None:
    """No `queue:` section: the server's default (postgres) provider. The init queue and
    the broker hop are scoped to the execution, so it completes once they drain."""
    started = httpx.post(
        f"{server.url}/api/v1/executions", json={"pipeline_yaml": SEED_SHAPED}, timeout=30
    )
    assert started.status_code == 201, started.text
    execution_id = started.json()["execution_id"]
    waited = server.cli("--timeout", "90s", "execution", "wait", execution_id)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert server.cli_json("execution", "get", execution_id)["status"] == "completed"
    routes = {r["route_id"]: r for r in server.cli_json("execution", "routes", execution_id)}
    assert routes["scrape"]["scope"] == "execution"
    assert routes["scrape"]["provider_queue"] == f"exec:{execution_id}:page.urls"
    assert routes["scrape"]["messages_in"] == 5

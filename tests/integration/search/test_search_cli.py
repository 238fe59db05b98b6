"""`factflow search ...` and `factflow index ...` against a real server (uvicorn in a
thread) on the seeded index: readable results on request, JSON when piped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from factflow.api import ApiSettings, create_app
from factflow.cli.app import app
from factflow.dataflows.launch import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(seeded_db: str, minilm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("search-cli")
    settings = ApiSettings(
        environment="development",  # open: about search, not auth (api/test_auth*.py)
        database_url=seeded_db,
        data_dir=root / "server",
        recovery_dir=root / "recovery",
        storage_uri=f"file://{root / 'storage'}",
        validate_pipelines_on_start=False,
    )
    port = free_ports(1)[0]
    config = uvicorn.Config(create_app(settings), port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/api/v1/search/capabilities", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield url
    instance.should_exit = True
    thread.join(10)


def _cli(server: str, *args: str) -> str:
    result = CliRunner().invoke(app, ["--server", server, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_search_prints_citations_and_highlights(server: str) -> None:
    text = _cli(
        server, "search", "rrf", "how does a killed worker resume?", "-n", "2", "-o", "text"
    )
    lines = text.splitlines()
    assert lines[0].startswith("1. ") and "semantic #1" in lines[0]
    assert lines[1].strip() == "http://docs.test/recovery"
    assert lines[2].strip() == "Recovery > Resuming"
    assert "killed" in lines[3] and "**" not in lines[3]
    assert any(line.startswith("2. ") for line in lines)


def test_search_is_json_when_piped(server: str) -> None:
    for command in ("semantic", "hybrid", "rrf", "keyword"):
        data = json.loads(_cli(server, "search", command, "kafka offsets", "--limit", "1"))
        assert data["results"][0]["heading_path"] == ["Queue providers", "Kafka"], command
    merged = json.loads(_cli(server, "search", "multi-model", "kafka", "--models", "alt,default"))
    assert merged["models"] == ["alt", "default"]


def test_index_commands(server: str) -> None:
    listed = json.loads(_cli(server, "index", "list"))
    assert {s["name"] for s in listed["slots"]} == {"alt", "default"}
    assert "5 segments of 3 documents" in _cli(server, "index", "list", "-o", "text")
    stats = json.loads(_cli(server, "index", "stats", "alt"))
    assert stats["vectors"] == 5
    rebuilt = json.loads(_cli(server, "index", "reindex", "alt", "--m", "8"))
    assert rebuilt["hnsw_m"] == 8


def test_unknown_slot_is_an_error_line(server: str) -> None:
    result = CliRunner().invoke(
        app, ["--server", server, "search", "semantic", "x", "--slot", "no"]
    )
    assert result.exit_code == 1
    assert "400 BAD_SEARCH_REQUEST" in result.output and "no embedding slot 'no'" in result.output

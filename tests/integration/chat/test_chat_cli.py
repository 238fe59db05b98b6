"""`factflow chat ask|threads|messages`, the interactive `factflow chat` and `factflow
usage` against a real server (uvicorn in a thread) on the seeded index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factflow.api import ApiSettings
from factflow.cli.app import app
from tests.integration.chat.conftest import served
from tests.integration.chat.test_chat_api import QUESTION

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(chat_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("chat-cli")
    settings = ApiSettings(
        environment="development",  # open: about chat, not auth (api/test_auth*.py)
        database_url=chat_db,
        data_dir=root / "server",
        recovery_dir=root / "recovery",
        storage_uri=f"file://{root / 'storage'}",
        validate_pipelines_on_start=False,
    )
    with served(settings) as url:
        yield url


def _cli(server: str, *args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(app, ["--server", server, *args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_ask_prints_the_answer_and_numbered_sources(server: str) -> None:
    for extra in ([], ["--stream"]):
        out = _cli(server, "chat", "ask", QUESTION, "--output", "text", *extra)
        assert "SIGKILL" in out and "[1]" in out
        assert "Sources" in out and "http://docs.test/recovery" in out
        assert "Recovery > Resuming" in out and "lineage " in out
        assert "extractive:" in out  # the footer: mode, latency, tokens
    data = json.loads(_cli(server, "chat", "ask", QUESTION, "--output", "json", "--top-k", "2"))
    assert data["citations"][0]["url"] == "http://docs.test/recovery"
    assert len(data["citations"]) <= 2


def test_interactive_chat_keeps_a_thread(server: str) -> None:
    out = _cli(server, "chat", input=f"{QUESTION}\nkafka offsets?\n\n")
    assert out.count("Sources") == 2 and "Kafka offsets live" in out
    threads = json.loads(_cli(server, "chat", "threads", "--output", "json"))
    thread = next(t for t in threads if t["title"] == "factflow chat")
    assert thread["message_count"] == 4
    messages = _cli(server, "chat", "messages", thread["id"], "--output", "text")
    assert QUESTION in messages and "http://docs.test/queues" in messages
    followup = _cli(server, "chat", "ask", "pancakes?", "--thread", thread["id"], "-o", "json")
    assert json.loads(followup)["thread_id"] == thread["id"]


def test_usage_groups_and_totals(server: str) -> None:
    data = json.loads(_cli(server, "usage", "--group-by", "model,day", "--output", "json"))
    assert data["group_by"] == ["model", "day"] and "total" in data
    text = _cli(server, "usage", "--output", "text")
    assert "total" in text and "cost_usd" in text
    bad = CliRunner().invoke(app, ["--server", server, "usage", "--group-by", "colour"])
    assert bad.exit_code == 1 and "422" in bad.output

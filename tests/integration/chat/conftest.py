"""Chat fixtures: a database holding the search corpus (tests/integration/search/corpus.py)
embedded by the real local model, each segment with the lineage chain a crawl would have
left (crawl -> markdown -> segment -> embedding rows), and API clients on it; the local
OpenAI-compatible server (tests/llm_provider.py, a declared test double: no LLM provider
is reachable here) for the LLM path."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from factflow.api import ApiSettings, create_app
from factflow.db.connection import connect
from factflow.db.lineage_writer import LineageWriter
from factflow.messages import Message
from factflow.testing import call_adapter
from factflow.workflows.embeddings import EmbeddingGeneratorAdapter
from factflow.workflows.embeddings.index_writer import EmbeddingIndexWriter
from factflow.writers.base import WriterContext
from tests.integration.flows import database
from tests.integration.search.conftest import TestClient, minilm
from tests.integration.search.corpus import segments
from tests.llm_provider import FakeProvider, serve_provider

__all__ = ["TestClient", "chat_api", "chat_client", "chat_db", "minilm", "provider", "served"]

CHAIN = ("web_scraper", "html_to_markdown", "markdown_segmenter", "embedding_generator")


def seed_with_lineage(url: str) -> str:
    """The corpus indexed as the docs pipeline would: every segment's message was emitted
    by an embedding row whose ancestors are the segmenter, the converter and the crawl."""
    execution = uuid.uuid4()
    writer = LineageWriter(execution)
    adapter = EmbeddingGeneratorAdapter({})
    messages = []
    now = datetime.now(UTC)
    for record in segments():
        page = record["payload"]["url"]
        parent: uuid.UUID | None = None
        for index, name in enumerate(CHAIN):
            parent = writer.record(
                route_id="crawl" if index < 2 else "embed",
                adapter_name=name,
                adapter_index=index % 2,
                message_id=uuid.uuid4().hex,
                status="completed",
                started_at=now,
                completed_at=now,
                parent_id=parent,
                storage_key=f"executions/{execution}/crawl/{name}/{uuid.uuid4().hex}",
                metadata={"url": page},
            )
        message = Message(payload=record["payload"], metadata=record["metadata"])
        for out in call_adapter(adapter, message):
            messages.append(replace(out, correlation_id=str(parent)))
    with connect(url) as conn:
        writer.flush(conn)
    context = WriterContext(execution_id=str(execution), route_id="embed", step_id="index")
    index_writer = EmbeddingIndexWriter({}, replace(context, database_url=url))
    index_writer.write_batch(messages)
    index_writer.close()
    return str(execution)


@pytest.fixture(scope="module")
def chat_db(pg_url: str, minilm: str) -> Iterator[str]:
    with database(pg_url) as url:
        seed_with_lineage(url)
        yield url


@pytest.fixture(scope="module")
def chat_api(chat_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with chat_client(chat_db, tmp_path_factory.mktemp("chat-api")) as client:
        yield client


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with serve_provider() as state:
        yield state


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text[:800]
    return response.json()


def chat_client(url: str, root: Path, **overrides: Any) -> TestClient:
    """A client of an open development app on `url` (about chat, not auth: api/test_auth*),
    with settings `overrides` (an LLM: `chat_model`, `llm_api_base`, `llm_api_key`)."""
    settings = ApiSettings(
        environment="development",
        database_url=url,
        data_dir=root / "server",
        recovery_dir=root / "recovery",
        storage_uri=f"file://{root / 'storage'}",
        validate_pipelines_on_start=False,
        **overrides,
    )
    return TestClient(create_app(settings))


@contextmanager
def served(settings: ApiSettings) -> Iterator[str]:
    """The app on a real uvicorn server in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)

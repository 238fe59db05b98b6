"""Search fixtures: the local model (loaded once per session, from its package), a fresh
migrated database per test, and a module's database seeded with the corpus (embedded by
the real model, written by the real index writer) behind a started API client."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from factflow.api import ApiSettings, create_app
from factflow.extras import EMBEDDINGS
from factflow.messages import Message
from factflow.testing import call_adapter
from factflow.workflows.embeddings import EmbeddingGeneratorAdapter
from factflow.workflows.embeddings.backends import load_local, local_model
from factflow.workflows.embeddings.index_writer import EmbeddingIndexWriter
from factflow.writers.base import WriterContext
from tests.integration.flows import database
from tests.integration.search.corpus import segments

with warnings.catch_warnings():
    # starlette warns at import when its test client runs on httpx rather than httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


RUN_TIMEOUT = 300
"""Seconds a worker run may take: importing torch and loading the model alone takes 30 s
and more on a busy machine."""


@pytest.fixture(scope="session")
def minilm() -> str:
    """The local model's name, after loading it once for the session."""
    missing = EMBEDDINGS.missing()
    if missing is not None:
        pytest.skip(f"the local embedding model needs {missing} ({EMBEDDINGS.install})")
    load_local(local_model("all-MiniLM-L6-v2"))
    return "all-MiniLM-L6-v2"


@pytest.fixture
def index_db(pg_url: str) -> Iterator[str]:
    with database(pg_url) as url:
        yield url


def seed_index(url: str, execution_id: str, slots: list[dict[str, Any]] | None = None) -> None:
    """The corpus embedded (real local model) and written by the real index writer."""
    adapter = EmbeddingGeneratorAdapter({"slots": slots} if slots else {})
    context = WriterContext(execution_id=execution_id, route_id="embed", step_id="index")
    writer = EmbeddingIndexWriter({}, replace(context, database_url=url))
    messages = []
    for record in segments():
        message = Message(payload=record["payload"], metadata=record["metadata"])
        messages.extend(call_adapter(adapter, message))
    writer.write_batch(messages)
    writer.close()


@pytest.fixture(scope="module")
def seeded_db(pg_url: str) -> Iterator[str]:
    """A database holding the corpus in two slots of the local model."""
    with database(pg_url) as url:
        slots = [{"name": "default"}, {"name": "alt", "model": "all-MiniLM-L6-v2"}]
        seed_index(url, str(uuid.uuid4()), slots)
        yield url


def make_client(url: str, root: Path) -> TestClient:
    settings = ApiSettings(
        environment="development",  # open: about search, not auth (api/test_auth*.py)
        database_url=url,
        data_dir=root / "server",
        recovery_dir=root / "recovery",
        storage_uri=f"file://{root / 'storage'}",
        validate_pipelines_on_start=False,
    )
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def search_api(
    seeded_db: str, minilm: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    with make_client(seeded_db, tmp_path_factory.mktemp("search-api")) as client:
        yield client

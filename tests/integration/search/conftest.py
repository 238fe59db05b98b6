"""Search fixtures: the local model (loaded once per session, from its package) and a
fresh migrated database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from factflow.extras import EMBEDDINGS
from factflow.workflows.embeddings.backends import load_local, local_model
from tests.integration.flows import database


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

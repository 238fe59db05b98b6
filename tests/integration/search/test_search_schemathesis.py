"""Schemathesis over the search, indexes and embeddings endpoints on a seeded index (the
corpus in two slots of the local model): every response conforms to the
document (tests/integration/conformance.py).

POST and DELETE /indexes are left out (they would drop or add the slots the other cases
search; test_search_api.py covers them). The rest of the API is fuzzed on an empty
database in tests/integration/api/test_schemathesis.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.python import asgi as schemathesis_asgi

from factflow.api import ApiSettings, create_app
from tests.integration.conformance import CHECKS, OPERATION_TIMEOUT, openapi_schema

pytestmark = pytest.mark.integration

PREFIXES = ("/api/v1/search", "/api/v1/chat/search", "/api/v1/indexes", "/api/v1/embeddings")
EXCLUDED = {("POST", "/api/v1/indexes"), ("DELETE", "/api/v1/indexes/{slot}")}
SPEC = create_app(ApiSettings(environment="development")).openapi()  # open: not about auth


def _schema() -> schemathesis.BaseSchema:
    schema = openapi_schema(SPEC)
    for path in SPEC["paths"]:
        if not path.startswith(PREFIXES):
            schema = schema.exclude(path=path)
    for method, path in sorted(EXCLUDED):
        schema = schema.exclude(method=method, path=path)
    return schema


schema = _schema()


@pytest.fixture(scope="module")
def served_app(
    seeded_db: str, minilm: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    root: Path = tmp_path_factory.mktemp("search-schemathesis")
    app = create_app(
        ApiSettings(
            environment="development",  # open: about search, not auth (api/test_auth*.py)
            database_url=seeded_db,
            data_dir=root / "server",
            recovery_dir=root / "recovery",
            storage_uri=f"file://{root / 'storage'}",
            validate_pipelines_on_start=False,
        )
    )
    yield app
    schemathesis_asgi.shutdown_lifespans()


@schema.parametrize()
@pytest.mark.timeout(OPERATION_TIMEOUT)
def test_responses_conform(case: schemathesis.Case[Any], served_app: FastAPI) -> None:
    case.call_and_validate(app=served_app, checks=CHECKS)


def test_the_search_endpoints_are_fuzzed() -> None:
    paths = {p for p in SPEC["paths"] if p.startswith(PREFIXES)}
    assert len(paths) >= 10, paths

"""Schemathesis over the chat and usage endpoints on a seeded index (the search corpus,
its lineage chains): every response conforms to the
document (tests/integration/conformance.py). The rest of the API is fuzzed on
an empty database in tests/integration/api/test_schemathesis.py, the search endpoints in
tests/integration/search/test_search_schemathesis.py."""

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

PREFIXES = ("/api/v1/chat", "/api/v1/usage")
SPEC = create_app(ApiSettings(environment="development")).openapi()  # open: not about auth


def _schema() -> schemathesis.BaseSchema:
    schema = openapi_schema(SPEC)
    for path in SPEC["paths"]:
        if not path.startswith(PREFIXES) or path.startswith("/api/v1/chat/search"):
            schema = schema.exclude(path=path)
    return schema


schema = _schema()


@pytest.fixture(scope="module")
def served_app(chat_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    root: Path = tmp_path_factory.mktemp("chat-schemathesis")
    app = create_app(
        ApiSettings(
            environment="development",
            database_url=chat_db,
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


def test_the_chat_endpoints_are_fuzzed() -> None:
    paths = {p for p in SPEC["paths"] if p.startswith(PREFIXES)}
    assert len(paths) >= 9, paths

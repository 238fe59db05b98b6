"""The local documentation site every workflow test crawls (tests/docsite.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docsite import DocSite, serve_docsite


@pytest.fixture
def site() -> Iterator[DocSite]:
    with serve_docsite() as served:
        yield served

"""The main job: `factflow run pipelines/docs-search.yaml` crawls the local documentation
site (tests/docsite.py), embeds and indexes its segments, and search answers questions
about it with citations back to the page and its lineage row."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from factflow.db.connection import connect
from factflow.search import QueryEmbedder, SearchOptions, SearchService
from tests.docsite import CONTENT_PATHS, serve_docsite
from tests.e2e.helpers import REPO_ROOT, run_command, worker_env
from tests.integration.search.conftest import RUN_TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHIPPED = REPO_ROOT / "pipelines"


def test_docs_search_is_docs_ingest_plus_an_index_route() -> None:
    ingest = yaml.safe_load((SHIPPED / "docs-ingest.yaml").read_text())
    search = yaml.safe_load((SHIPPED / "docs-search.yaml").read_text())
    index = search["routes"].pop("index")
    assert search["routes"] == ingest["routes"]
    assert index["inbound"]["queue"] == "docs.segments"
    assert [a["type"] for a in index["adapters"]] == ["embedding_generator"]
    assert index["outbound"][0]["sink"]["type"] == "embedding_index"


def test_a_crawled_site_answers_questions_with_citations(
    tmp_path: Path, index_db: str, minilm: str
) -> None:
    with serve_docsite() as site:
        text = (SHIPPED / "docs-search.yaml").read_text()
        text = text.replace("http://127.0.0.1:8765/sitemap.xml", site.url("/sitemap_index.xml"))
        pipeline = tmp_path / "docs-search.yaml"
        pipeline.write_text(text)
        env = worker_env(
            FACTFLOW_DATABASE_URL=index_db,
            FACTFLOW_RECOVERY_DIR=str(tmp_path / "recovery"),
            FACTFLOW_STORE_STAGES="1",
            HF_HUB_OFFLINE="1",
        )
        command = [sys.executable, "-m", "factflow", "run", str(pipeline)]
        done = run_command(command, env=env, cwd=tmp_path, timeout=RUN_TIMEOUT)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        execution = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", done.stdout + done.stderr)
        assert execution is not None

        service = SearchService(QueryEmbedder())
        with connect(index_db) as conn:
            urls = {r[0] for r in conn.execute("SELECT url FROM search_segments").fetchall()}
            assert urls == {site.url(p) for p in CONTENT_PATHS}
            which = service.rrf(conn, SearchOptions(query="Which Python version do I need?"))
            brokers = service.rrf(conn, SearchOptions(query="do I need a message broker?"))
            lineage = conn.execute(
                "SELECT l.stage_name, l.metadata->>'url' FROM lineage l WHERE l.id::text = %s",
                (which.hits[0].hit.lineage_id,),
            ).fetchone()
    top = which.hits[0].hit
    assert top.url == site.url("/docs/install")
    assert top.heading_path[-1] == "Requirements"
    assert "**Python**" in top.snippet
    assert brokers.hits[0].hit.heading_path[-1] == "Optional services"
    # the citation's lineage row is the embedding step's invocation on this page's segment
    assert lineage == ("embedding_generator", site.url("/docs/install"))

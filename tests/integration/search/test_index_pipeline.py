"""A real run (`python -m bytewax.run factflow.flow`) that embeds segments with the local
model and indexes them, then searches that find them with their citations; a rerun writes
nothing twice and a re-ingested page replaces its old segments."""

from __future__ import annotations

import copy
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from factflow.db.connection import connect
from factflow.db.repositories import search_index as index
from factflow.db.repositories.usage import usage_groups
from factflow.search import QueryEmbedder, SearchOptions, SearchService
from tests.e2e.helpers import run_command, worker_env, write_jsonl
from tests.integration.flows import lineage_rows, write_pipeline
from tests.integration.search.conftest import RUN_TIMEOUT
from tests.integration.search.corpus import PAGES, segments

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PIPELINE = """
backpressure: {target_latency_ms: 60000, max_concurrency: 64}
routes:
  embed:
    inbound: {queue: segments, concurrency: 64}
    adapters:
      - type: embedding_generator
        config: {batch_size: 16}
    outbound:
      - sink: {type: embedding_index, config: {language: english}}
"""


def _run(tmp_path: Path, db_url: str, execution: uuid.UUID, records: list[Any]) -> None:
    queue = write_jsonl(tmp_path / "queues" / "segments.jsonl", records)
    pipeline = write_pipeline(tmp_path, "index", PIPELINE)
    env = worker_env(
        FACTFLOW_PIPELINE=str(pipeline),
        FACTFLOW_EXECUTION_ID=str(execution),
        FACTFLOW_DATABASE_URL=db_url,
        HF_HUB_OFFLINE="1",
    )
    command = [sys.executable, "-m", "bytewax.run", "factflow.flow"]
    done = run_command(command, env=env, cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    queue.unlink()


def _rows(db_url: str) -> list[tuple[Any, ...]]:
    with connect(db_url) as conn:
        return conn.execute(
            "SELECT url, heading_path, text, execution_id, lineage_id, indexed_at"
            " FROM search_segments ORDER BY url, segment_index"
        ).fetchall()


def test_a_run_indexes_segments_and_search_finds_them(
    tmp_path: Path, index_db: str, minilm: str
) -> None:
    first = uuid.uuid4()
    _run(tmp_path, index_db, first, segments())

    rows = _rows(index_db)
    assert len(rows) == 5
    assert {r[3] for r in rows} == {str(first)}
    with connect(index_db) as conn:
        slot = index.get_slot(conn, "default")
        stats = index.slot_stats(conn, "default")
    assert (slot.model, slot.backend, slot.dimensions) == (minilm, "local", 384)
    assert stats.vectors == 5
    # every segment cites the lineage row of the embedding step that produced it
    lineage = {str(r.id) for r in lineage_rows(index_db, first) if r.stage_name}
    assert {r[4] for r in rows} <= lineage and all(r[4] for r in rows)
    # the worker booked its embedding calls against the execution (local: tokens, no cost)
    with connect(index_db) as conn:
        (usage,) = usage_groups(conn, ["provider", "model", "purpose"], execution_id=first)
    assert usage.key == {"provider": "local", "model": minilm, "purpose": "pipeline"}
    assert 1 <= usage.calls <= 5 and usage.prompt_tokens > 5 * 5 and usage.cost_usd == 0.0

    service = SearchService(QueryEmbedder())
    with connect(index_db) as conn:
        rrf = service.rrf(conn, SearchOptions(query="how does a killed worker resume?"))
        keyword = service.keyword(conn, SearchOptions(query="pancake batter"))
        semantic = service.semantic(conn, SearchOptions(query="making breakfast food", limit=1))
    top = rrf.hits[0].hit
    assert (top.url, top.heading_path) == ("http://docs.test/recovery", ["Recovery", "Resuming"])
    assert top.semantic_rank == 1 and top.keyword_rank is not None
    assert "**killed**" in top.snippet
    assert [h.hit.url for h in keyword.hits] == ["http://docs.test/cooking"]
    assert semantic.hits[0].hit.url == "http://docs.test/cooking"

    # the same execution run again (a crash before its snapshot): nothing written twice
    _run(tmp_path, index_db, first, segments())
    assert _rows(index_db) == rows

    # a new execution re-ingests the recovery page with a changed second segment
    pages = copy.deepcopy(PAGES)
    pages["http://docs.test/recovery"][1][1] = (["Recovery", "Resuming"], "Workers restart.")
    second = uuid.uuid4()
    _run(tmp_path, index_db, second, segments(pages))
    after = _rows(index_db)
    assert len(after) == 5
    assert {r[3] for r in after} == {str(second)}
    texts = [r[2] for r in after]
    assert "Workers restart." in texts
    assert not any("SIGKILL" in t for t in texts)
    with connect(index_db) as conn:
        assert index.slot_stats(conn, "default").vectors == 5

"""The index writer across a SIGKILL: a worker killed while it indexes, then the same
execution run again, ends with every segment indexed exactly once and with its vector.

The segments carry their vectors already (as embedding_generator emits them; synthetic, so
the test needs no model), and a slow adapter before the sink spreads them over many 1 s
epochs, so the kill comes between and inside the writer's transactions. The rerun resumes
from the last snapshot and writes the replayed epochs again: the upsert by content hash
must absorb them.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from factflow.dataflows.launch import Launch
from factflow.db.connection import connect
from tests.e2e.helpers import T, wait_until, worker_env, write_jsonl
from tests.integration.flows import write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEGMENTS = 1500
SLEEP_MS = 4  # ~6 s for all: several epochs before and after the kill
DIMENSIONS = 8

PIPELINE = f"""
routes:
  index:
    inbound: {{queue: segments}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {SLEEP_MS}}}
    outbound:
      - sink: {{type: embedding_index, config: {{language: english}}}}
"""


def _segment(n: int) -> dict[str, Any]:
    page = n // 10
    vector = [float((n * (i + 3)) % 17 + 1) for i in range(DIMENSIONS)]
    return {
        "payload": {
            "url": f"http://docs.test/page-{page}",
            "title": f"Page {page}",
            "heading_path": [f"Page {page}", f"Section {n % 10}"],
            "text": f"segment number {n} of page {page}",
            "index": n % 10,
            "segment_count": 10,
            "embeddings": {
                "default": {
                    "model": "synthetic",
                    "backend": "local",
                    "dimensions": DIMENSIONS,
                    "vector": vector,
                }
            },
        },
        "metadata": {"origin": "sigkill-test"},
    }


def _indexed(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM search_segments").fetchone()
    return int(row[0]) if row else 0


def test_sigkill_mid_indexing_then_rerun_indexes_every_segment_once(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    write_jsonl(tmp_path / "queues" / "segments.jsonl", [_segment(n) for n in range(SEGMENTS)])
    execution = str(uuid.uuid4())
    launch = Launch(
        pipeline=write_pipeline(tmp_path, "index-kill", PIPELINE),
        execution_id=execution,
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery",
        snapshot_seconds=1,
        extra_env=worker_env(FACTFLOW_DATABASE_URL=db_url),
    )
    [proc] = launch.start()
    started.append(proc)
    wait_until(
        lambda: _indexed(db_url) >= SEGMENTS // 3 or proc.poll() is not None,
        120,
        "a third of the segments indexed",
    )
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    at_kill = _indexed(db_url)
    assert SEGMENTS // 3 <= at_kill < SEGMENTS, "killed mid-indexing"

    [proc] = launch.start()
    started.append(proc)
    assert proc.wait(timeout=120) == 0, (launch.log_dir / "process-0.log").read_text()[-3000:]

    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s.text, s.execution_id, v.embedding::text FROM search_segments s"
            " LEFT JOIN search_vectors_default v ON v.segment_id = s.id"
        ).fetchall()
        vectors = conn.execute("SELECT count(*) FROM search_vectors_default").fetchone()
    texts = Counter(r[0] for r in rows)
    expected = {_segment(n)["payload"]["text"] for n in range(SEGMENTS)}
    assert set(texts) == expected, "no segment lost"
    assert max(texts.values()) == 1, "no segment indexed twice"
    assert vectors == (SEGMENTS,), "one vector per segment"
    assert all(r[2] is not None for r in rows), "every segment has its vector"
    assert {r[1] for r in rows} == {execution}

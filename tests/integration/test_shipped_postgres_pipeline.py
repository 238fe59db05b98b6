"""pipelines/text-postgres.yaml runs end to end on the Postgres table queue."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from factflow.compiler.compile import compile_text
from factflow.compiler.plan import QueueSettings
from factflow.connectors.codec import decode_body
from factflow.connectors.registry import make_sink
from factflow.db import pgqueue
from factflow.db.connection import connect
from factflow.messages import Message
from tests.e2e.helpers import REPO_ROOT, worker_env

pytestmark = pytest.mark.integration

DOCS = [
    {"lang": "en", "title": "A", "paragraphs": ["One.", "Two.", "One."]},
    {"lang": "no", "title": "B", "paragraphs": ["Tre.", "Two."]},
]
EXPECTED = {"factflow compiles pipelines.", "Every message has lineage.", "One.", "Two.", "Tre."}


def test_the_shipped_postgres_pipeline_runs_end_to_end(pg_url: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."  # queues of their own in the shared table
    text = (REPO_ROOT / "pipelines/text-postgres.yaml").read_text().replace("text.", prefix)
    pipeline = tmp_path / "text-postgres.yaml"
    pipeline.write_text(text + "idle_timeout_seconds: 5\n")
    plan = compile_text(text).require_plan()
    docs_in = plan.route("ingest").inbound_queue
    all_out = next(o.queue for o in plan.route("dedupe").outbound if o.condition is None)
    env = worker_env(FACTFLOW_PIPELINE=str(pipeline), FACTFLOW_DATABASE_URL=pg_url)
    subprocess.run(  # workers migrate their database; the sink below needs the table now
        [sys.executable, "-m", "factflow", "db", "migrate"], env=env, check=True, timeout=60
    )
    sink = make_sink(docs_in, QueueSettings("postgres", pg_url, None, {}, "envelope"))
    partition = sink.build("test", 0, 1)
    partition.write_batch([Message(payload=d) for d in DOCS])
    partition.close()

    run = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]

    with connect(pg_url) as conn:
        claimed = pgqueue.claim_batch(conn, all_out, "test", limit=100)
        assert pgqueue.queue_depth(conn, docs_in).ready == 0, "every document was consumed"
    texts = []
    for record in claimed:
        message = decode_body(bytes(record.body), record.headers, raw=False, queue=all_out,
                              fallback_id=str(record.id))  # fmt: skip
        assert isinstance(message, Message)
        texts.append(message.payload["text"])
    assert sorted(texts) == sorted(EXPECTED), "each paragraph once, repeats dropped"

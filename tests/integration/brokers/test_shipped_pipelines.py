"""The shipped per-broker pipelines (pipelines/text-*.yaml) run end to end on each real
broker: documents published on the input queue, paragraphs on the output queues.

Each run renames the pipeline's queues (`text.` -> a fresh prefix) so runs never share
queues, and adds `idle_timeout_seconds` so the flow ends once the input is drained.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from factflow.compiler.compile import compile_text
from factflow.connectors.codec import decode_body, encode_body
from factflow.messages import Message
from tests.e2e.helpers import REPO_ROOT, worker_env
from tests.integration.brokers.clients import Broker, Record, tag
from tests.integration.brokers.conftest import BROKERS, require

pytestmark = pytest.mark.integration

SHIPPED = {
    "rabbitmq": "text-rabbitmq.yaml",
    "stomp-artemis": "text-stomp.yaml",
    "pulsar": "text-pulsar.yaml",
    "kafka": "text-kafka.yaml",
}
DOCS = [
    {"lang": "en", "title": "A", "paragraphs": ["One.", "Two.", "One."]},
    {"lang": "no", "title": "B", "paragraphs": ["Tre.", "Two."]},
]
INIT_PARAGRAPHS = {"factflow compiles pipelines.", "Every message has lineage."}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_pipeline_runs_end_to_end(name: str, tmp_path: Path) -> None:
    broker = require(BROKERS[name])
    prefix = f"t{tag()}."
    text = (REPO_ROOT / "pipelines" / SHIPPED[name]).read_text().replace("text.", prefix)
    pipeline = tmp_path / SHIPPED[name]
    pipeline.write_text(text + "idle_timeout_seconds: 8\n")
    plan = compile_text(text).require_plan()
    docs_in = plan.route("ingest").inbound_queue
    all_out = next(o.queue for o in plan.route("dedupe").outbound if o.condition is None)
    broker.prepare([docs_in, all_out, plan.route("dedupe").inbound_queue])
    collector = broker.collect(all_out)
    try:
        broker.publish(docs_in, [Record(*encode_body(Message(payload=d), raw=False)) for d in DOCS])
        env = worker_env(FACTFLOW_PIPELINE=str(pipeline), FACTFLOW_STOMP_URL=_stomp_url(broker))
        run = subprocess.run(
            [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        expected = INIT_PARAGRAPHS | {"One.", "Two.", "Tre."}
        records = collector.wait_for(len(expected), 30)
    finally:
        collector.stop()
    texts = [_payload(r, all_out)["text"] for r in records]
    assert sorted(texts) == sorted(expected), "each paragraph once, repeats dropped"


def _stomp_url(broker: Broker) -> str:
    return broker.url if broker.provider == "stomp" else ""


def _payload(record: Record, queue: str) -> dict[str, str]:
    message = decode_body(record.body, record.headers, raw=False, queue=queue, fallback_id="x")
    assert isinstance(message, Message), message
    payload = message.payload
    assert isinstance(payload, dict), json.dumps(payload)
    return payload

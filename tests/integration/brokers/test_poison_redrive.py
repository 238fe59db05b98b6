"""A poison message (not msgpack, JSON or UTF-8) keeps its original bytes and headers in
its dead letter, and a redrive puts exactly those back on the route's inbound queue: on
RabbitMQ's dead-letter queue (`server/broker_dlq.py`) and in the Postgres table
(`dataflows/redrive.py`, a file queue). A body over the size limit is kept cut, marked
truncated, and its redrive is refused (factflow/deadletter.py)."""

from __future__ import annotations

import base64
import sys
import uuid
from pathlib import Path

import pytest

from factflow.db import connect
from factflow.db.repositories.dead_letters import list_dead_letters
from factflow.deadletter import ORIGINAL_LIMIT_BYTES, PREVIEW_BYTES
from factflow.flow import load_plan
from factflow.providers.registry import get_provider
from factflow.server import broker_dlq
from factflow.server.exceptions import ReplayError
from tests.e2e.helpers import REPO_ROOT, factflow_run, run_command, worker_env
from tests.integration.brokers.clients import RabbitMQ, Record, tag
from tests.integration.brokers.conftest import require
from tests.integration.brokers.flows import relay_route, run_flow, write_pipeline
from tests.integration.flows import write_pipeline as write_file_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POISON = b"\xc1\xff\xfe\x00 neither msgpack nor UTF-8 \x80\x81"
HEADERS = {"x-origin": "sensor-7", "x-batch": "42"}


def test_a_poison_message_is_redriven_byte_for_byte_from_rabbitmq(tmp_path: Path) -> None:
    broker = require(RabbitMQ())
    route, qin, qout = f"poison-{tag()}", f"ff-poison-in-{tag()}", f"ff-poison-out-{tag()}"
    dlq = get_provider(broker.provider).dead_letter_queue(route)
    big = b"\xff" * (ORIGINAL_LIMIT_BYTES + 1)
    broker.prepare([qin, qout, dlq])
    broker.publish(qin, [Record(POISON, HEADERS)])
    pipeline = write_pipeline(tmp_path / "poison.yaml", broker, relay_route(route, qin, qout))
    execution = str(uuid.uuid4())
    result = run_flow(pipeline, env={"FACTFLOW_EXECUTION_ID": execution})
    assert result.returncode == 0, result.stderr[-3000:]

    plan = load_plan(pipeline)
    peeked = broker_dlq.peek(plan, route, execution, 10, None)
    [letter] = peeked.letters
    original = letter.record["message"]["original"]
    assert base64.b64decode(original["body_base64"]) == POISON
    assert original["truncated"] is False
    assert original["size"] == len(POISON)
    assert {k: original["headers"][k] for k in HEADERS} == HEADERS

    inbound = broker.collect(qin)
    try:
        redriven = broker_dlq.redrive(plan, route, execution, 10, None)
        assert len(redriven.letters) == 1
        [record] = inbound.wait_for(1, 10)
    finally:
        inbound.stop()
    assert record.body == POISON, "the redrive changed the bytes"
    assert {k: record.headers.get(k) for k in HEADERS} == HEADERS

    # too large to keep whole: cut, marked, and not redriven (the letter stays)
    broker.publish(qin, [Record(big)])
    result = run_flow(pipeline, env={"FACTFLOW_EXECUTION_ID": execution})
    assert result.returncode == 0, result.stderr[-3000:]
    [letter] = broker_dlq.peek(plan, route, execution, 10, None).letters
    original = letter.record["message"]["original"]
    assert (original["truncated"], original["size"]) == (True, len(big))
    assert len(base64.b64decode(original["body_base64"])) == PREVIEW_BYTES
    with pytest.raises(ReplayError, match="cannot be redriven"):
        broker_dlq.redrive(plan, route, execution, 10, None)
    assert len(broker_dlq.peek(plan, route, execution, 10, None).letters) == 1
    broker_dlq.purge(plan, route, execution, 10, None)


def test_a_poison_line_is_redriven_byte_for_byte_from_the_table(
    tmp_path: Path, db_url: str
) -> None:
    queues = tmp_path / "queues"
    queues.mkdir()
    (queues / "in.jsonl").write_bytes(b'{"n": 1}\n' + POISON + b"\n")
    pipeline = write_file_pipeline(
        tmp_path,
        "poison",
        "routes:\n  r:\n    inbound: {queue: in}\n    adapters: [{type: passthrough}]\n"
        "    outbound: out\n",
    )
    execution = str(uuid.uuid4())
    env = worker_env(FACTFLOW_DATABASE_URL=db_url, FACTFLOW_RECOVERY_DIR=str(tmp_path / "rec"))
    first = factflow_run(str(pipeline), "--execution-id", execution, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    with connect(db_url) as conn:
        [letter] = list_dead_letters(conn, execution_id=uuid.UUID(execution))
    assert base64.b64decode(letter.message["original"]["body_base64"]) == POISON

    (queues / "in.jsonl").write_bytes(b"")
    cli = [sys.executable, "-m", "factflow", "deadletters", "redrive", execution]
    redriven = run_command([*cli, "--pipeline", str(pipeline)], env=env, cwd=REPO_ROOT)
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.strip() == "redrove 1 dead letter(s)"
    assert (queues / "in.jsonl").read_bytes() == POISON + b"\n"

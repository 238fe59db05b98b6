"""Completion when every route drains: a seed-shaped pipeline (an init message fans out
through execution-scoped broker queues, slow adapters, two worker processes) ends by
itself with exit 0 once nothing is in flight, and never before its last message reached
the global output queue; two executions of one config never see each other's messages.

Runs on the postgres provider (embedded Postgres) and on every broker that answers.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from factflow.compiler.compile import compile_file
from factflow.connectors.codec import decode_body
from factflow.db import connect
from factflow.db.pgqueue import queue_depth
from factflow.messages import Message
from factflow.providers.registry import get_provider
from tests.e2e.helpers import worker_env
from tests.integration.brokers.clients import Broker, Record, tag
from tests.integration.brokers.conftest import BROKERS, require
from tests.integration.flows import A, queue_messages

pytestmark = [pytest.mark.integration, pytest.mark.slow]

URLS = 24
SLEEP_MS = 40


def _pipeline(folder: Path, queue_block: str, names: dict[str, str], urls: list[str]) -> Path:
    """discover (init) -split-> urls -> scrape (slow) -> pages -> convert -> docs.out, the
    two middle hops through the provider (`external: true`), so both are scoped queues."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ws.yaml"
    path.write_text(
        f"""version: "1.0"
name: ws
{queue_block}
routes:
  discover:
    inbound: {{queue: "{names["in"]}"}}
    adapters:
      - type: split
        config: {{field: urls, into: url}}
    outbound: "{names["urls"]}"
  scrape:
    inbound: {{queue: "{names["urls"]}", external: true, prefetch: 4}}
    adapters:
      - type: "{A}:TaggedSlow"
        config: {{sleep_ms: {SLEEP_MS}}}
    outbound: "{names["pages"]}"
  convert:
    inbound: {{queue: "{names["pages"]}", external: true}}
    adapters:
      - type: passthrough
    outbound: "{names["out"]}"
init_message:
  route: discover
  payload: {{urls: {urls}}}
"""
    )
    return path


def _run(
    pipeline: Path, execution: str, env: dict[str, str], processes: int = 2
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "factflow", "run", str(pipeline)]
    command += ["--processes", str(processes), "--execution-id", execution]
    return subprocess.Popen(
        command,
        env=worker_env(**env),
        cwd=pipeline.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM: `factflow run` stops its workers too (a SIGKILL would orphan them)
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"the execution did not complete by itself within {timeout}s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    return out


def test_plan_scopes_fed_queues_only(tmp_path: Path) -> None:
    names = {"in": "sitemap.in", "urls": "urls", "pages": "pages", "out": "docs.out"}
    plan = compile_file(
        _pipeline(tmp_path, "queue: {provider: postgres}", names, ["a"])
    ).require_plan()
    assert plan.scoped_queues == {"sitemap.in", "urls", "pages"}
    assert {s.queue: s.scope for s in plan.sinks}["docs.out"] == "global"
    assert plan.drains
    # the init queue is scoped, so no outside producer can write it: it needs no source
    assert "sitemap.in" not in {s.queue for s in plan.sources}
    assert plan.queue_name("urls", "E", "postgres") == "exec:E:urls"
    assert plan.queue_name("docs.out", "E", "postgres") == "docs.out"


def test_postgres_execution_completes_when_drained(tmp_path: Path, db_url: str) -> None:
    names = {"in": "sitemap.in", "urls": "urls", "pages": "pages", "out": "docs.out"}
    urls = [f"u{n}" for n in range(URLS)]
    pipeline = _pipeline(tmp_path, "queue: {provider: postgres}", names, urls)
    execution = str(uuid.uuid4())
    _finish(_run(pipeline, execution, {"FACTFLOW_DATABASE_URL": db_url}))
    out = queue_messages(db_url, "docs.out")
    # never early: every url reached the output before the workers exited
    assert sorted(m.payload["url"] for m in out) == sorted(urls)
    assert {m.execution_id for m in out} == {execution}
    with connect(db_url) as conn:
        for queue in ("urls", "pages"):
            depth = queue_depth(conn, get_provider("postgres").scoped_queue(queue, execution))
            assert (depth.ready, depth.in_flight) == (0, 0)
            assert queue_depth(conn, queue).ready == 0  # the global name was never used


def _existing(broker: Broker, queues: list[str]) -> list[str]:
    """Which of `queues` still exist on the broker."""
    if broker.provider == "kafka":
        from confluent_kafka.admin import AdminClient

        topics = AdminClient({"bootstrap.servers": broker.url}).list_topics(timeout=10).topics
        return [q for q in queues if q in topics]
    import asyncio

    import aio_pika

    async def check() -> list[str]:
        left = []
        connection = await aio_pika.connect(broker.url)
        try:
            for queue in queues:
                channel = await connection.channel()
                try:
                    await channel.declare_queue(queue, passive=True)
                    left.append(queue)
                except aio_pika.exceptions.ChannelClosed:
                    pass  # 404: gone
        finally:
            await connection.close()
        return left

    return asyncio.run(check())


def _decode(record: Record, queue: str) -> Message:
    message = decode_body(record.body, record.headers, raw=False, queue=queue, fallback_id="x")
    assert isinstance(message, Message), message
    return message


def _broker_names(broker: Broker) -> dict[str, str]:
    prefix = f"d{tag()}"
    return {k: broker.queue(f"{prefix}.{k}") for k in ("in", "urls", "pages", "out")}


@pytest.mark.parametrize("name", sorted(BROKERS))
def test_broker_execution_completes_when_drained(name: str, tmp_path: Path) -> None:
    broker = require(BROKERS[name])
    names = _broker_names(broker)
    urls = [f"u{n}" for n in range(URLS)]
    pipeline = _pipeline(tmp_path, broker.queue_block(), names, urls)
    broker.prepare([names["out"]])
    collector = broker.collect(names["out"])
    try:
        execution = str(uuid.uuid4())
        _finish(_run(pipeline, execution, {"FACTFLOW_STOMP_URL": broker.url}))
        records = collector.wait_for(URLS, 30)
    finally:
        collector.stop()
    got = [_decode(r, names["out"]) for r in records]
    assert sorted(m.payload["url"] for m in got) == sorted(urls)
    if broker.provider in ("rabbitmq", "kafka"):  # deleted once drained (README)
        left = _existing(
            broker,
            [
                get_provider(broker.provider).scoped_queue(names[k], execution)
                for k in ("urls", "pages")
            ],
        )
        assert left == [], f"scoped queues left on {name}: {left}"


def test_two_executions_of_one_config_keep_apart(tmp_path: Path) -> None:
    broker = require(BROKERS["rabbitmq"])
    names = _broker_names(broker)
    broker.prepare([names["out"]])
    collector = broker.collect(names["out"])
    runs = {}
    try:
        for side in ("a", "b"):
            urls = [f"{side}{n}" for n in range(URLS)]
            pipeline = _pipeline(tmp_path / side, broker.queue_block(), names, urls)
            execution = str(uuid.uuid4())
            runs[side] = (execution, _run(pipeline, execution, {}, processes=1))
        for _, proc in runs.values():
            _finish(proc)
        records = collector.wait_for(2 * URLS, 30)
    finally:
        collector.stop()
    got = [_decode(r, names["out"]) for r in records]
    by_side: dict[str, set[str]] = {"a": set(), "b": set()}
    for message in got:
        url = message.payload["url"]
        by_side[url[0]].add(message.execution_id)
    assert by_side == {side: {runs[side][0]} for side in ("a", "b")}
    assert len(got) == 2 * URLS

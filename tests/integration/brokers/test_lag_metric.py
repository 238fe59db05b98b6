"""`factflow_source_lag_messages` on a real broker: a backlog shows, shrinks as the flow
reads it, and reaches 0 once everything was read.

N messages wait in the queue before the flow starts; its route sleeps SLEEP_MS a message
and reads at most PREFETCH at a time, so the backlog drains over several lag samples
(LAG_SAMPLE_SECONDS). The test scrapes the worker's metrics endpoint
(FACTFLOW_METRICS_PORT) until the flow ends. Kafka's topic has two partitions (the gauge
sums them); RabbitMQ's count is the queue's, reported by one consumer.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from factflow.dataflows.metrics import LAG_SAMPLE_SECONDS
from factflow.messages import Message
from tests.e2e.helpers import REPO_ROOT, worker_env
from tests.integration.brokers.clients import Broker, tag
from tests.integration.brokers.conftest import BROKERS, require
from tests.integration.brokers.flows import T, adapter_route, envelope, unpack, write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 400
SLEEP_MS = 25
PREFETCH = 50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lag(port: int, queue: str) -> float | None:
    """The gauge for `queue` on the worker's endpoint; None before its first sample or
    while the endpoint is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "factflow_source_lag_messages" and sample.labels["queue"] == queue:
                return sample.value
    return None


@pytest.mark.parametrize("name", ["kafka", "rabbitmq"])
def test_lag_gauge_shows_the_backlog_and_its_drain(name: str, tmp_path: Path) -> None:
    broker: Broker = require(BROKERS[name])
    t = tag()
    route, qin, qout = f"lag-{t}", broker.queue(f"ff-{t}-in"), broker.queue(f"ff-{t}-out")
    broker.prepare([qin, qout], partitions=2)
    sent = [Message(payload={"n": i}) for i in range(N)]
    broker.publish(qin, [envelope(m) for m in sent])
    collector = broker.collect(qout)
    slow = f'{{type: "{T}:Slow", config: {{sleep_ms: {SLEEP_MS}}}}}'
    pipeline = write_pipeline(
        tmp_path / "lag.yaml",
        broker,
        adapter_route(route, qin, qout, slow),
        # long enough for a sample after the last message was read
        idle=2 * LAG_SAMPLE_SECONDS + 1,
        options={"prefetch": PREFETCH},
    )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1", "-w", "1"],
        env=worker_env(FACTFLOW_PIPELINE=str(pipeline), FACTFLOW_METRICS_PORT=str(port)),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            value = _lag(port, qin)
            if value is not None and (not seen or value != seen[-1]):
                seen.append(value)
            time.sleep(0.2)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr[-3000:]
        out = collector.wait_for(N, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
        collector.stop()
    print(f"{name}: lag samples seen {seen}")
    assert seen, "no lag sample was exported"
    assert max(seen) >= N / 2, f"the backlog of {N} did not show: {seen}"
    assert seen[-1] == 0, f"the lag did not reach 0 once all was read: {seen}"
    assert sorted({unpack(r)["message_id"] for r in out}) == sorted(m.message_id for m in sent)

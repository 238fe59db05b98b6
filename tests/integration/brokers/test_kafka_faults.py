"""Kafka faults: the broker stopped mid-run and started again, and poison messages mixed
into a stream.

An outage shorter than the outage limit pauses the Kafka source and sink (the sink keeps
flushing, the source keeps polling, neither counts the outage as idleness) with a WARNING
"waiting for kafka at HOST since ..." in the worker log, then the run goes on: it exits 0, loses
nothing, and, since the source's offsets stay in its snapshot and the producer is
idempotent, duplicates at most what about two snapshot intervals carry.

The broker is stopped with `scripts/services.sh stop kafka` (the shared test broker: each
stop and start is logged to /tmp/ff-restarts.log, where other tests failing with
connection errors at that time can find it).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from factflow.messages import Message
from factflow.providers.registry import get_provider
from tests.e2e.helpers import wait_until
from tests.integration.brokers.clients import Kafka, Record, tag
from tests.integration.brokers.conftest import require
from tests.integration.brokers.flows import (
    T,
    adapter_route,
    envelope,
    run_flow,
    unpack,
    write_pipeline,
)
from tests.integration.brokers.test_faults import (
    EPOCH_MESSAGES,
    _ids,
    _launch,
    _log,
    _messages,
    _services,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECONDS = 60
"""The issue's failing case (Kafka down 57 s failed the run after one 30 s flush): longer
than the producer's 30 s message timeout, the old flush in close() and the source's idle
timeout (3 s), and well under the outage limit (5 minutes): the run must ride it out."""
DUPLICATES_BOUND = 2 * EPOCH_MESSAGES
"""Two snapshot intervals' worth (the issue's bound for a broker restart)."""


@pytest.mark.serial  # stops the shared Kafka: no other test may run meanwhile
def test_kafka_restart_mid_run_is_ridden_out(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    broker = require(Kafka())
    n = 2000
    t = tag()
    qin, qout = broker.queue(f"ff-{t}-in"), broker.queue(f"ff-{t}-out")
    broker.prepare([qin, qout])
    sent = _messages(n)
    broker.publish(qin, [envelope(m) for m in sent])
    collector = broker.collect(qout)
    try:
        # the default prefetch (MAX_BATCH): the batch sizer alone keeps epochs short
        launch = _launch(broker, tmp_path, f"restart-{t}", qin, qout, prefetch=None)
        [proc] = launch.start()
        started.append(proc)
        wait_until(
            lambda: len(collector.records) >= n // 4 or proc.poll() is not None,
            40,
            "a quarter of the output",
        )
        assert proc.poll() is None, "the run ended before the broker could be stopped"
        stopped_at = time.monotonic()
        _services("stop", "kafka", timeout=90)
        try:
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
        finally:
            _services("start", "kafka", timeout=180)
        outage = time.monotonic() - stopped_at
        code = proc.wait(timeout=90)
        records = collector.wait_for(n, 30)
        left = broker.leftover(qin, f"restart-{t}-processors")
    finally:
        collector.stop()
    ids = _ids(records)
    missing = [m.message_id for m in sent if m.message_id not in ids]
    duplicates = sum(ids.values()) - len(ids)
    log = _log(launch)
    print(
        f"kafka restart: down {outage:.1f}s; run exit {code}; {len(records)} outputs for {n} "
        f"inputs, {duplicates} duplicates (bound {DUPLICATES_BOUND}); {left} left"
    )
    assert code == 0, log
    whole = _log(launch, tail=None)  # the outage line may sit far before the tail
    assert "waiting for kafka at" in whole, log
    assert "panicked" not in whole, log
    assert not missing, f"{len(missing)} of {n} messages lost"
    assert duplicates <= DUPLICATES_BOUND
    assert left == 0, f"{left} inputs not acked after the run"


def test_kafka_poison_messages_are_dead_lettered_and_the_rest_delivered(
    tmp_path: Path,
) -> None:
    """Undecodable bodies and messages the adapter rejects, spread through a stream."""
    broker = require(Kafka())
    n, every = 1000, 50
    t = tag()
    route = f"poison-{t}"
    qin, qout = broker.queue(f"ff-{t}-in"), broker.queue(f"ff-{t}-out")
    dlq = get_provider("kafka").dead_letter_queue(route)
    broker.prepare([qin, qout, dlq])
    sent: list[Record] = []
    good: list[Message] = []
    bad: list[Message] = []
    undecodable: list[bytes] = []
    for i in range(n):
        if i % every == 7:
            body = b"\xc1\xff poison " + str(i).encode()
            undecodable.append(body)
            sent.append(Record(body))
        elif i % every == 23:
            bad.append(Message(payload={"n": i, "bad": True}))
            sent.append(envelope(bad[-1]))
        else:
            good.append(Message(payload={"n": i}))
            sent.append(envelope(good[-1]))
    broker.publish(qin, sent)
    collector, dead = broker.collect(qout), broker.collect(dlq)
    try:
        pipeline = write_pipeline(
            tmp_path / "poison.yaml",
            broker,
            adapter_route(route, qin, qout, f'{{type: "{T}:RejectsBad"}}'),
            idle=1,
        )
        started_at = time.monotonic()
        result = run_flow(pipeline)
        seconds = time.monotonic() - started_at
        assert result.returncode == 0, result.stderr[-3000:]
        records = collector.wait_for(len(good), 10)
        letters = dead.wait_for(len(bad) + len(undecodable), 10)
        left = broker.leftover(qin, f"{route}-processors")
    finally:
        collector.stop()
        dead.stop()
    print(
        f"kafka poison: {len(records)} delivered, {len(letters)} dead letters of {n} in "
        f"{seconds:.1f}s"
    )
    ids = _ids(records)
    assert sorted(ids) == sorted(m.message_id for m in good)
    assert sum(ids.values()) == len(good), "duplicates without a fault"
    reasons = Counter(r.headers.get("factflow-reason") for r in letters)
    assert reasons == {"non_retryable": len(bad), "undecodable": len(undecodable)}, reasons
    rejected = [
        unpack(r)["message"]["message_id"]
        for r in letters
        if r.headers.get("factflow-reason") == "non_retryable"
    ]
    assert sorted(rejected) == sorted(m.message_id for m in bad)
    assert left == 0

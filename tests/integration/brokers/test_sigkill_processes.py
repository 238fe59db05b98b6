"""SIGKILL of a `--processes 2` run mid-stream on RabbitMQ, then the rerun: nothing lost,
and the duplicates bounded by what about two snapshot intervals carry.

The issue's case: a `format: raw` relay of N messages with the default prefetch, 1 s
snapshots; both worker processes are killed once half of the output is out. Raw bodies
without a message id get their id from their content (factflow/ids.py), so a redelivered
message keeps its id; the duplicates are counted by body. The bound is the relay's rate
(its processes' progress files: the test's own consumer lags the relay by half) times 2.5
snapshot intervals (the epoch in flight and the sealed one before it, each an interval and
one batch long), and at least one batch window per process. N is large enough that the
bound is well under the output at the kill (10,000 at ~4,000 msg/s was killed within the
first 2.5 intervals, where any result passed).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from factflow.dataflows.launch import Launch
from factflow.dataflows.progress import read_counts
from tests.e2e.helpers import wait_until, worker_env
from tests.integration.brokers.clients import RabbitMQ, Record, tag
from tests.integration.brokers.conftest import require
from tests.integration.brokers.flows import relay_route, write_pipeline

# serial: its bound is a rate measured in the run itself, and the first epochs of two
# processes starved of CPU by the other tests' workers would carry more than it
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.serial]

N = 30_000
SNAPSHOT_SECONDS = 1


def test_sigkill_of_a_two_process_run_then_rerun_loses_nothing(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    broker = require(RabbitMQ())
    t = tag()
    route = f"kill2-{t}"
    qin, qout = f"ff-{t}-in", f"ff-{t}-out"
    broker.prepare([qin, qout])
    collector = broker.collect(qout)
    try:
        broker.publish(qin, [Record(json.dumps({"n": i}).encode()) for i in range(N)])
        pipeline = write_pipeline(
            tmp_path / "kill2.yaml", broker, relay_route(route, qin, qout, raw=True), idle=3
        )
        launch = Launch(
            pipeline=pipeline,
            execution_id=route,
            run_dir=tmp_path / "run",
            recovery_dir=tmp_path / "recovery",
            processes=2,
            snapshot_seconds=SNAPSHOT_SECONDS,
            extra_env=worker_env(),
        )

        def relayed() -> int:
            """What the run's processes output so far, from their progress files (refreshed
            twice a second; the larger of two reads, in case one caught a file being
            replaced): the relay's own count, which the collector's consumer lags."""
            return max(
                read_counts(launch.progress_dir).get(f"route:{route}:out", 0) for _ in range(2)
            )

        procs = launch.start()
        started.extend(procs)
        wait_until(lambda: relayed() > 0, 40, "the first output")
        first_at, first = time.monotonic(), relayed()
        wait_until(
            lambda: relayed() >= N // 2 or any(p.poll() is not None for p in procs),
            40,
            "half of the output",
        )
        # the relay's rate between two progress refreshes after its first output: what a
        # snapshot interval carries (the collector's count measured its own consumer)
        rate = (relayed() - first) / max(time.monotonic() - first_at, 0.1)
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        assert [p.wait() for p in procs] == [-signal.SIGKILL] * 2, "a process ended first"
        killed_at = relayed()
        rerun_started = time.monotonic()
        rerun = launch.start()
        started.extend(rerun)
        for proc in rerun:
            assert proc.wait(timeout=60) == 0, proc.args
        rerun_seconds = time.monotonic() - rerun_started
        records = collector.wait_for(N, 20)
        left = broker.message_count(qin)
    finally:
        collector.stop()
    seen = Counter(json.loads(r.body)["n"] for r in records)
    missing = N - len(seen)
    duplicates = sum(seen.values()) - len(seen)
    bound = max(int(2.5 * SNAPSHOT_SECONDS * rate), 2 * 500)
    print(
        f"rabbitmq sigkill of 2 processes at {killed_at} of {N} out ({rate:,.0f} msg/s); "
        f"rerun {rerun_seconds:.1f}s; {len(records)} outputs, {duplicates} duplicates "
        f"(bound {bound}); {left} left in input"
    )
    assert missing == 0, f"{missing} of {N} messages lost"
    assert left == 0, f"{left} inputs not acked after the rerun"
    assert duplicates <= bound

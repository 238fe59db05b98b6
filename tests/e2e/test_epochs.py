"""Epochs bounded in time with a slow adapter: 1,500 lines through a sync adapter sleeping
5 ms (7.5 s of work) with a 1 s snapshot interval.

With fixed source batches of 1,000 lines the first output came after the first 5 s batch
and every epoch lasted 5 s, so a crash threw away up to 1,000 messages of work. With
batches sized from the observed cost per message (connectors/batching.py) output flows
from the start, epochs end about a quarter second after their interval, and a SIGKILL
duplicates at most about two epochs of messages on the rerun.

Timing asserts compare measured spans of the same run (a loaded machine slows all of
them), or allow several times what a batch should take.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

from factflow.connectors.file import FileOffset
from factflow.dataflows.launch import Launch
from tests.e2e.helpers import T, count_lines, read_jsonl, wait_until, write_jsonl
from tests.e2e.recovery import resume_state

LINES = 1500
SLEEP_MS = 5
SNAPSHOT_SECONDS = 1
ONE_EPOCH = SNAPSHOT_SECONDS * 1000 // SLEEP_MS
"""Messages the adapter processes in one snapshot interval at most (200)."""
POLL_SECONDS = 0.02


def _launch(tmp_path: Path, env: dict[str, str]) -> Launch:
    pipeline = tmp_path / "slow.yaml"
    pipeline.write_text(
        f"""version: "1.0"
name: slow
queue: {{provider: file, path: {tmp_path}/queues}}
routes:
  r:
    inbound: {{queue: in}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {SLEEP_MS}}}
    outbound: out
"""
    )
    write_jsonl(tmp_path / "queues" / "in.jsonl", [{"n": n} for n in range(LINES)])
    return Launch(
        pipeline=pipeline,
        execution_id="epochs",
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery",
        snapshot_seconds=SNAPSHOT_SECONDS,
        extra_env=env,
    )


def _log(launch: Launch) -> str:
    return (launch.log_dir / "process-0.log").read_text()[-3000:]


def test_slow_adapter_output_flows_from_the_start(
    tmp_path: Path, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> None:
    launch = _launch(tmp_path, env)
    out = tmp_path / "queues" / "out.jsonl"
    launch.prepare()  # not timed: folders and recovery partitions
    began = time.monotonic()
    [proc] = launch.start()
    started.append(proc)
    growth: list[tuple[float, int]] = []  # (seconds since start, lines) at every change
    while proc.poll() is None:
        lines = count_lines(out)
        if lines and (not growth or lines != growth[-1][1]):
            growth.append((time.monotonic() - began, lines))
        assert time.monotonic() - began < 120, "the run did not end"
        time.sleep(POLL_SECONDS)
    total = time.monotonic() - began
    assert proc.returncode == 0, _log(launch)
    assert count_lines(out) == LINES
    first = growth[0][0]
    gaps = [later[0] - earlier[0] for earlier, later in pairwise(growth)]
    print(
        f"first output {first:.2f}s after the worker started; run {total:.2f}s; "
        f"{len(growth)} output steps, longest gap {max(gaps):.2f}s"
    )
    # all at once (1,000-line batches) the first output came after 5 s of the 7.5 s of
    # sleeping; now nearly all of it is still ahead (however long the worker took to start)
    work = LINES * SLEEP_MS / 1000
    assert total - first > 0.9 * work, f"first output at {first:.1f}s of {total:.1f}s"
    # output flows in small steps: a 1,000-line batch was one 5 s step
    assert max(gaps) < 2 * SNAPSHOT_SECONDS, f"output stalled for {max(gaps):.1f}s"
    assert len(growth) > LINES // ONE_EPOCH


def test_sigkill_mid_run_then_rerun_duplicates_at_most_two_epochs(
    tmp_path: Path, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> None:
    launch = _launch(tmp_path, env)
    out = tmp_path / "queues" / "out.jsonl"
    [proc] = launch.start()
    started.append(proc)
    # half the output: had every line been read in one epoch, the rerun would redo it all
    wait_until(lambda: count_lines(out) >= LINES // 2 or proc.poll() is not None, 60, "output")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    before_kill = count_lines(out)
    # no snapshot yet: the rerun starts over
    states = resume_state(tmp_path / "recovery", "factflow_slow.source__in")
    resume_at = states.get("0", FileOffset())
    assert isinstance(resume_at, FileOffset)

    [rerun] = launch.start()
    started.append(rerun)
    assert rerun.wait(timeout=60) == 0, _log(launch)

    seen = Counter(r["payload"]["n"] for r in read_jsonl(out))
    assert set(seen) == set(range(LINES)), "every input line reaches the output"
    assert max(seen.values()) <= 2
    duplicated = sorted(n for n, count in seen.items() if count > 1)
    print(f"killed after {before_kill} outputs; {len(duplicated)} duplicated on the rerun")
    # the lines read after the snapshot the rerun resumed from: the epoch in flight and at
    # most the one whose snapshot was being written, each an interval and one batch long
    assert duplicated == list(range(resume_at.line, before_kill))
    assert len(duplicated) <= 2.5 * ONE_EPOCH

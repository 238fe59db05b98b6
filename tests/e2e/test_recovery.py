"""SIGKILL mid-run, then the same execution again: nothing lost, duplicates bounded, and
stateful adapter state (deduplicate) restored from Bytewax recovery.

The worker runs a sync adapter sleeping SLEEP_MS per message with a 1 s epoch, so the run
takes several epochs and is killed in the middle. At-least-once: the rerun resumes from the
newest snapshot all workers committed and replays what was read after it. That is the
epoch in flight, plus at most the one whose snapshot was being written when the kill came,
so the duplicates are at most what the adapter can process in two snapshot intervals:
2 * SNAPSHOT_SECONDS / SLEEP_MS lines (an upper bound, since sleeping is not all the
adapter does). An epoch ends only between source batches, which the file source sizes to
take a quarter second each (connectors/batching.py).
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from factflow.connectors.file import FileOffset
from factflow.dataflows.launch import Launch
from tests.e2e.helpers import T, count_lines, read_jsonl, wait_until, write_jsonl
from tests.e2e.recovery import resume_state

SLEEP_MS = 1
SNAPSHOT_SECONDS = 1
PROCESSABLE_IN_TWO_INTERVALS = 2 * SNAPSHOT_SECONDS * 1000 // SLEEP_MS


def _pipeline(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f'version: "1.0"\nname: {name}\nqueue: {{provider: file, path: {tmp_path}/queues}}\n' + body
    )
    return path


def _launch(pipeline: Path, tmp_path: Path, env: dict[str, str]) -> Launch:
    return Launch(
        pipeline=pipeline,
        execution_id="killed-once",
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery",
        snapshot_seconds=SNAPSHOT_SECONDS,
        extra_env=env,
    )


def _kill(proc: subprocess.Popen[bytes], when: Callable[[], bool]) -> None:
    wait_until(lambda: when() or proc.poll() is not None, 60, "the moment to kill")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"


def _finish(launch: Launch, started: list[subprocess.Popen[bytes]]) -> None:
    [proc] = launch.start()
    started.append(proc)
    assert proc.wait(timeout=60) == 0, (launch.log_dir / "process-0.log").read_text()[-3000:]


def test_sigkill_then_rerun_loses_nothing(
    tmp_path: Path, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> None:
    total = 5000
    write_jsonl(tmp_path / "queues" / "in.jsonl", [{"n": n} for n in range(total)])
    pipeline = _pipeline(
        tmp_path,
        "slow",
        f"""
routes:
  r:
    inbound: {{queue: in}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {SLEEP_MS}}}
    outbound: out
""",
    )
    out = tmp_path / "queues" / "out.jsonl"
    launch = _launch(pipeline, tmp_path, env)
    [proc] = launch.start()
    started.append(proc)
    _kill(proc, lambda: count_lines(out) >= 3000)
    before_kill = count_lines(out)
    [resume_at] = resume_state(tmp_path / "recovery", "factflow_slow.source__in").values()
    assert isinstance(resume_at, FileOffset)

    _finish(launch, started)

    seen = Counter(r["payload"]["n"] for r in read_jsonl(out))
    assert set(seen) == set(range(total)), "every input line reaches the output"
    duplicated = sorted(n for n, count in seen.items() if count > 1)
    assert max(seen.values()) <= 2
    # exactly the lines read after the snapshot the rerun resumed from, and few of them:
    # starting over from the first line would duplicate >= 3000 lines
    assert duplicated == list(range(resume_at.line, before_kill))
    assert len(duplicated) <= PROCESSABLE_IN_TWO_INTERVALS


def test_deduplicate_state_survives_sigkill(
    tmp_path: Path, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> None:
    keys = 2000
    # every key once (slow), then every key again (fast): the repeats are read by the rerun
    records = [{"k": f"key-{i}"} for i in range(keys)]
    records += [{"k": f"key-{i}", "fast": True} for i in range(keys)]
    write_jsonl(tmp_path / "queues" / "in.jsonl", records)
    pipeline = _pipeline(
        tmp_path,
        "dedup",
        f"""
routes:
  r:
    inbound: {{queue: in}}
    key: k
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {SLEEP_MS}}}
      - type: deduplicate
        config: {{key: k}}
    outbound: out
""",
    )
    out = tmp_path / "queues" / "out.jsonl"
    launch = _launch(pipeline, tmp_path, env)
    recovery = tmp_path / "recovery"
    dedup_step = "factflow_dedup.r__1_deduplicate"
    [proc] = launch.start()
    started.append(proc)
    _kill(proc, lambda: len(resume_state(recovery, dedup_step)) >= 500)
    before_kill = count_lines(out)
    [resume_at] = resume_state(recovery, "factflow_dedup.source__in").values()
    in_snapshot = set(resume_state(recovery, dedup_step))
    assert resume_at.line < keys, "the repeats must be read after the restart"
    assert len(in_snapshot) >= 500

    _finish(launch, started)

    emitted = [r["payload"]["k"] for r in read_jsonl(out)]
    after_restart = Counter(emitted[before_kill:])
    assert set(emitted) == {f"key-{i}" for i in range(keys)}
    assert not in_snapshot & set(after_restart), "keys in the snapshot were emitted again"
    assert max(after_restart.values()) == 1, "a restored key let a repeat through"
    # only the keys of the replayed epoch come out twice
    assert len(emitted) - keys <= PROCESSABLE_IN_TWO_INTERVALS

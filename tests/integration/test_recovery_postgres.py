"""A killed run resumes from Postgres alone: SIGKILL the worker, delete its local recovery
directory, run the same execution again. And an archive of another plan is refused.

The worker (process 0) archives each Bytewax recovery partition into Postgres every few
seconds. The test kills the worker a little after it sees a new archive, so the rerun,
restored from that archive, resumes at the archive's resume epoch and processes the lines
read since then a second time. Those are (a) the lines output after the archive was
taken, until the kill, plus (b) the epoch in flight when it was taken: the source starts
an epoch only once the previous one is output and its snapshot written, so everything
before (b) is in the archive. An epoch ends between source batches, so (b) is at most the
lines processed in one snapshot interval (at most SNAPSHOT_SECONDS / SLEEP_MS, since
sleeping is not all the adapter does) plus one batch. Lines carry PAD so that a batch
(about 1 MiB of lines) is a few hundred lines.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from factflow.connectors.file import BATCH_BYTES, FileOffset
from factflow.dataflows.launch import Launch
from factflow.db import connect
from factflow.db.repositories.recovery import latest_archive_set, list_archives
from tests.e2e.helpers import (
    REPO_ROOT,
    T,
    count_lines,
    factflow_run,
    read_jsonl,
    run_command,
    wait_until,
    worker_env,
    write_jsonl,
)
from tests.e2e.recovery import resume_state
from tests.integration.flows import write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLEEP_MS = 2
SNAPSHOT_SECONDS = 1
PAD = "x" * 3000
LINE_BYTES = len(json.dumps({"n": 9999, "pad": PAD})) + 1
ONE_EPOCH = SNAPSHOT_SECONDS * 1000 // SLEEP_MS + BATCH_BYTES // LINE_BYTES + 1

SLOW_ROUTE = f"""
routes:
  r:
    inbound: {{queue: in}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {SLEEP_MS}}}
    outbound: out
"""


def _launch(pipeline: Path, tmp_path: Path, execution: uuid.UUID, db_url: str) -> Launch:
    return Launch(
        pipeline=pipeline,
        execution_id=str(execution),
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery" / str(execution),  # where `factflow run` has it
        snapshot_seconds=SNAPSHOT_SECONDS,
        extra_env=worker_env(FACTFLOW_DATABASE_URL=db_url),
    )


def _newest_archive(db_url: str, execution: uuid.UUID) -> object | None:
    with connect(db_url) as conn:
        archives = list_archives(conn, execution)
    return archives[0].taken_at if archives else None


def _archived_copy(db_url: str, execution: uuid.UUID, folder: Path) -> Path:
    """The newest archived partitions, written out to read them like a recovery dir."""
    with connect(db_url) as conn:
        archives = latest_archive_set(conn, execution)
    assert archives is not None
    folder.mkdir()
    for archive in archives:
        (folder / f"part-{archive.partition_index}.sqlite3").write_bytes(archive.data)
    return folder


def test_sigkill_delete_local_recovery_rerun_resumes_from_postgres(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    total = 4000
    write_jsonl(tmp_path / "queues" / "in.jsonl", [{"n": n, "pad": PAD} for n in range(total)])
    out = tmp_path / "queues" / "out.jsonl"
    execution = uuid.uuid4()
    launch = _launch(write_pipeline(tmp_path, "slow", SLOW_ROUTE), tmp_path, execution, db_url)
    [proc] = launch.start()
    started.append(proc)

    # kill right after an archive appears that holds real progress
    seen_archive = _newest_archive(db_url, execution)
    lines_before_archive = 0
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no archive with progress within 30 s"
        lines = count_lines(out)
        newest = _newest_archive(db_url, execution)
        if newest != seen_archive and lines_before_archive >= 500:
            break
        seen_archive, lines_before_archive = newest, lines
        time.sleep(0.05)
    # some more work after the archive, which the rerun must do again
    wait_until(lambda: count_lines(out) >= lines + 300 or proc.poll() is not None, 10, "work")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    before_kill = count_lines(out)
    archived = _archived_copy(db_url, execution, tmp_path / "archived")
    [resume_at] = resume_state(archived, "factflow_slow.source__in").values()
    assert isinstance(resume_at, FileOffset)
    assert resume_at.line >= 100, "the archive holds the run's progress"

    shutil.rmtree(launch.recovery_dir)  # the machine is gone: Postgres has it all
    [proc] = launch.start()
    started.append(proc)
    assert proc.wait(timeout=60) == 0, (launch.log_dir / "process-0.log").read_text()[-3000:]

    seen = Counter(r["payload"]["n"] for r in read_jsonl(out))
    assert set(seen) == set(range(total)), "every input line reaches the output"
    assert max(seen.values()) <= 2
    duplicated = sorted(n for n, count in seen.items() if count > 1)
    # exactly the lines read after the archived snapshot: the rerun started from it (a
    # fresh recovery directory would have started over at line 0)
    assert duplicated == list(range(resume_at.line, before_kill))
    after_archive = before_kill - lines_before_archive
    assert 0 < len(duplicated) <= after_archive + ONE_EPOCH, (
        f"{len(duplicated)} duplicates: {after_archive} lines output after the archive"
    )


def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_restore_of_another_plan_is_refused_and_leaves_the_local_directory(
    tmp_path: Path, db_url: str, started: list[subprocess.Popen[bytes]]
) -> None:
    write_jsonl(tmp_path / "queues" / "in.jsonl", [{"n": n} for n in range(20)])
    execution = uuid.uuid4()
    launch = _launch(write_pipeline(tmp_path, "plan", SLOW_ROUTE), tmp_path, execution, db_url)
    [proc] = launch.start()
    started.append(proc)
    assert proc.wait(timeout=60) == 0, (launch.log_dir / "process-0.log").read_text()[-3000:]
    wait_until(lambda: _newest_archive(db_url, execution) is not None, 5, "the final archive")

    # the same pipeline with one more adapter: other step ids, so other snapshots
    changed = write_pipeline(
        tmp_path / "changed",
        "plan",
        SLOW_ROUTE.replace("outbound: out", "  - type: passthrough\n    outbound: out"),
        queue=f"{{provider: file, path: {tmp_path}/queues}}",
    )
    local = launch.recovery_dir
    hour_ago = time.time() - 3600
    for part in local.iterdir():
        os.utime(part, (hour_ago, hour_ago))  # older than the archive: a restore is due
    before = _tree(local)

    env = worker_env(FACTFLOW_DATABASE_URL=db_url)
    command = [sys.executable, "-m", "factflow", "recovery", "restore", str(execution)]
    refused = run_command(
        [*command, "--pipeline", str(changed), "--directory", str(local)], env=env, cwd=REPO_ROOT
    )
    assert refused.returncode == 1
    assert "belong to a plan with other step ids; refusing to restore" in refused.stderr
    assert str(execution) in refused.stderr
    assert _tree(local) == before, "a refused restore touched the local directory"
    assert [p.name for p in local.parent.iterdir()] == [local.name], "staging left behind"

    # running the changed pipeline as the same execution is refused the same way
    run = factflow_run(
        str(changed),
        "--execution-id",
        str(execution),
        env={**env, "FACTFLOW_RECOVERY_DIR": str(local.parent)},
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert run.stderr.splitlines()[-1].startswith(
        f"error: recovery archives of execution {execution} belong to a plan with other step ids"
    )
    assert "Traceback" not in run.stderr
    assert _tree(local) == before

    # the matching plan restores the same archive
    elsewhere = tmp_path / "restored"
    restored = run_command(
        [*command, "--pipeline", str(launch.pipeline), "--directory", str(elsewhere)],
        env=env,
        cwd=REPO_ROOT,
    )
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == f"restored 1 partition(s) into {elsewhere}"
    assert [p.name for p in elsewhere.iterdir()] == ["part-0.sqlite3"]

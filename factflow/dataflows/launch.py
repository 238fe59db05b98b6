"""Launching an execution's worker processes: `python -m bytewax.run factflow.flow`.

`factflow run` and the server both use this. Every execution gets a recovery directory
(created with Bytewax's partitions on first use) so that running the same execution id
again resumes it; workers get their settings through `FACTFLOW_*` variables.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bytewax.recovery import init_db_dir

from factflow.compiler.compile import compile_file
from factflow.compiler.plan import Plan
from factflow.compiler.plan_codec import write_plan

DEFAULT_SNAPSHOT_SECONDS = 1
DEFAULT_BACKUP_SECONDS = 30


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Launch:
    """What to start: one execution of one pipeline.

    `plan` is the compiled plan the workers run (written to `<run_dir>/plan.json`); without
    one, `pipeline` is compiled here, once, for all of them.
    """

    pipeline: Path | None
    execution_id: str
    run_dir: Path
    recovery_dir: Path
    workers: int = 1
    processes: int = 1
    inputs: dict[str, str] = field(default_factory=dict)
    entries: dict[str, str] = field(default_factory=dict)
    """Route -> a JSON-lines file of messages entering it part-way (`FlowOptions.entries`)."""
    snapshot_seconds: int = DEFAULT_SNAPSHOT_SECONDS
    backup_seconds: int = DEFAULT_BACKUP_SECONDS
    extra_env: dict[str, str] = field(default_factory=dict)
    plan: Plan | None = None

    @property
    def plan_path(self) -> Path:
        return self.run_dir / "plan.json"

    def compiled(self) -> Plan:
        """The plan to run (compiling `pipeline` the first time when none was given)."""
        if self.plan is None:
            if self.pipeline is None:
                msg = "a Launch needs a plan or a pipeline file"
                raise ValueError(msg)
            self.plan = compile_file(self.pipeline).require_plan()
        return self.plan

    @property
    def progress_dir(self) -> Path:
        return self.run_dir / "progress"

    @property
    def drain_dir(self) -> Path:
        return self.run_dir / "drain"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def prepare(self) -> None:
        """Folders, and the recovery partitions unless they exist (a resumed run)."""
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*self.progress_dir.glob("*.json"), *self.drain_dir.glob("*.json")]:
            stale.unlink()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        write_plan(self.compiled(), self.plan_path)
        self._restore_from_postgres()
        self.recovery_dir.mkdir(parents=True, exist_ok=True)
        if not any(self.recovery_dir.glob("part-*.sqlite3")):
            init_db_dir(self.recovery_dir, max(1, self.workers * self.processes))  # type: ignore[no-untyped-call]

    def _restore_from_postgres(self) -> None:
        """A resumed execution whose local recovery is missing or stale gets Postgres's:
        here, once, before any worker starts (the workers only archive)."""
        url = self.env().get("FACTFLOW_DATABASE_URL")
        if not url:
            return
        from factflow.dataflows.recovery import restore_if_stale
        from factflow.db.repositories.recovery import step_fingerprint
        from factflow.flow import prepare_database

        prepare_database(url)
        steps = step_fingerprint(self.compiled().step_ids)
        restored = restore_if_stale(url, uuid.UUID(self.execution_id), self.recovery_dir, steps)
        if restored:
            print(
                f"factflow: restored {restored} recovery partition(s) from Postgres",
                file=sys.stderr,
            )

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FACTFLOW_PLAN": str(self.plan_path.resolve()),
            "FACTFLOW_EXECUTION_ID": self.execution_id,
            "FACTFLOW_PROGRESS_DIR": str(self.progress_dir),
            "FACTFLOW_DRAIN_DIR": str(self.drain_dir),
            "FACTFLOW_PROCESSES": str(self.processes),
            "FACTFLOW_SOURCE_PARTITIONS": str(self.workers * self.processes),
            "FACTFLOW_INPUTS": json.dumps(self.inputs),
            "FACTFLOW_ENTRIES": json.dumps(self.entries),
            **self.extra_env,
        }

    def commands(self) -> list[list[str]]:
        base = [
            sys.executable, "-m", "bytewax.run", "factflow.flow",
            "-w", str(self.workers),
            "-r", str(self.recovery_dir),
            "-s", str(self.snapshot_seconds),
            "-b", str(self.backup_seconds),
        ]  # fmt: skip
        if self.processes == 1:
            return [base]
        addresses = ";".join(f"127.0.0.1:{port}" for port in free_ports(self.processes))
        return [[*base, "-i", str(i), "-a", addresses] for i in range(self.processes)]

    def start(self) -> list[subprocess.Popen[bytes]]:
        self.prepare()
        env = self.env()
        procs = []
        for index, command in enumerate(self.commands()):
            log = (self.log_dir / f"process-{index}.log").open("ab")
            procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        return procs


def stop(procs: list[subprocess.Popen[bytes]], grace_seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL whatever is still running after the grace period."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""Launching an execution's worker processes: `python -m bytewax.run factflow.flow`.

`factflow run` and the server both use this. Every execution gets a recovery directory
(created with Bytewax's partitions on first use) so that running the same execution id
again resumes it; workers get their settings through `FACTFLOW_*` variables. A launch with
a `spawner` (the server's and the worker agent's `forkserver.ForkServer`) forks its
processes from a warm zygote instead, with the same command, environment and log; when
the spawner cannot, they start with `subprocess.Popen` as without one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bytewax.recovery import init_db_dir

from factflow.compiler.compile import compile_file
from factflow.compiler.plan import Plan
from factflow.compiler.plan_codec import write_plan

_log = logging.getLogger(__name__)

DEFAULT_SNAPSHOT_SECONDS = 1
DEFAULT_BACKUP_SECONDS = 30


_TEMPLATES: dict[int, list[bytes]] = {}
_TEMPLATES_LOCK = threading.Lock()


def new_partitions(directory: Path, count: int) -> None:
    """Empty recovery partitions `part-0.sqlite3` ... in `directory`, as Bytewax's
    `init_db_dir` makes them: copies of ones it made once per count in this process
    (it holds the GIL ~30 ms per call, a server pays that on every launch). Their
    `parts.created_at` is the time the first of that count was made."""
    with _TEMPLATES_LOCK:
        template = _TEMPLATES.get(count)
        if template is None:
            with tempfile.TemporaryDirectory(prefix="factflow-parts-") as tmp:
                init_db_dir(Path(tmp), count)  # type: ignore[no-untyped-call]
                template = [(Path(tmp) / f"part-{i}.sqlite3").read_bytes() for i in range(count)]
            _TEMPLATES[count] = template
    for index, data in enumerate(template):
        (directory / f"part-{index}.sqlite3").write_bytes(data)


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
    launch_id: str = ""
    """This start of the processes (`FACTFLOW_LAUNCH_ID`): `start` draws a new one."""
    restore: bool = True
    """Restore the recovery directory from Postgres before starting when it is stale;
    False for an execution id that is new (no archive can exist), which saves the
    launch its own database connections."""
    spawner: Spawner | None = None
    """Starts the processes when it can (a forkserver); else `subprocess.Popen`."""
    nice: int = 0
    """Added to the processes' niceness (the server's `worker_nice`): under load the
    server and Postgres, which the workers wait on, get the CPU first."""

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

    def prepare(self, *, from_archive: bool = False) -> None:
        """Folders, and the recovery partitions unless they exist (a resumed run).

        `from_archive`: the archive in Postgres wins over any local directory (a worker
        agent, whose directory may hold another process's partitions of an earlier
        launch)."""
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*self.progress_dir.glob("*.json"), *self.drain_dir.glob("*.json")]:
            stale.unlink()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        write_plan(self.compiled(), self.plan_path)
        self._restore_from_postgres(from_archive)
        self.recovery_dir.mkdir(parents=True, exist_ok=True)
        if not any(self.recovery_dir.glob("part-*.sqlite3")):
            new_partitions(self.recovery_dir, max(1, self.workers * self.processes))

    def _restore_from_postgres(self, always: bool) -> None:
        """A resumed execution whose local recovery is missing or stale (or, `always`,
        any) gets Postgres's: here, once, before the worker starts (workers only archive)."""
        url = self.env().get("FACTFLOW_DATABASE_URL")
        if not url or not (self.restore or always):
            return
        from factflow.dataflows.recovery import restore_if_stale
        from factflow.db.repositories.recovery import step_fingerprint
        from factflow.flow import prepare_database

        prepare_database(url)
        steps = step_fingerprint(self.compiled().step_ids)
        execution = uuid.UUID(self.execution_id)
        restored = restore_if_stale(url, execution, self.recovery_dir, steps, always=always)
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
            "FACTFLOW_LAUNCH_ID": self.launch_id,
            **self.extra_env,
        }

    def command(self, index: int = 0, addresses: Sequence[str] = ()) -> list[str]:
        """Process `index` of the cluster whose processes listen on `addresses`
        (`-i/-a`: Bytewax's own cluster mode; none for a single process)."""
        base = [
            sys.executable, "-m", "bytewax.run", "factflow.flow",
            "-w", str(self.workers),
            "-r", str(self.recovery_dir),
            "-s", str(self.snapshot_seconds),
            "-b", str(self.backup_seconds),
        ]  # fmt: skip
        if self.processes == 1:
            return base
        return [*base, "-i", str(index), "-a", ";".join(addresses)]

    def commands(self) -> list[list[str]]:
        addresses = [f"127.0.0.1:{port}" for port in free_ports(self.processes)]
        return [self.command(i, addresses) for i in range(self.processes)]

    def start(self) -> list[LocalProcess]:
        """Every process on this host."""
        self.launch_id = uuid.uuid4().hex
        self.prepare()
        env = self.env()
        return [self._spawn(index, command, env) for index, command in enumerate(self.commands())]

    def start_process(self, index: int, addresses: Sequence[str]) -> LocalProcess:
        """Process `index` alone, its cluster's others elsewhere (a worker agent's run:
        `launch_id` given, recovery from the archive in Postgres)."""
        self.prepare(from_archive=True)
        return self._spawn(index, self.command(index, addresses), self.env())

    def _spawn(self, index: int, command: list[str], env: dict[str, str]) -> LocalProcess:
        log_path = self.log_dir / f"process-{index}.log"
        if self.spawner is not None:
            try:
                forked = self.spawner.spawn(command, env, log_path, nice=self.nice)
            except Exception:
                _log.exception("the forkserver failed: process %d starts with Popen", index)
                forked = None
            if forked is not None:
                return forked
        with log_path.open("ab") as log:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        if self.nice:
            # the interpreter is still starting (no threads yet, which would keep their
            # own niceness); preexec_fn is unsafe in a server with threads
            with contextlib.suppress(OSError):  # it may have exited already
                own = os.getpriority(os.PRIO_PROCESS, 0)
                os.setpriority(os.PRIO_PROCESS, proc.pid, min(own + self.nice, 19))
        return proc


class WorkerHandle(Protocol):
    """What the supervisor needs of a worker process: a `subprocess.Popen` here, or a
    process a worker agent runs on another host (`factflow.server.agents`)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class LocalProcess(WorkerHandle, Protocol):
    """A worker process on this host: a `subprocess.Popen`, or one a forkserver forked."""

    @property
    def returncode(self) -> int | None: ...

    def terminate(self) -> None: ...


class Spawner(Protocol):
    """Starts worker processes faster than `subprocess.Popen` (`forkserver.ForkServer`)."""

    def spawn(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: str | None = None,
        nice: int = 0,
    ) -> LocalProcess | None:
        """`command` with `env`, stdout and stderr appended to `log_path`, as Popen would
        start it, `nice` added to its niceness; None when it cannot (the caller uses
        Popen). Must not raise."""
        ...


def stop(procs: Sequence[WorkerHandle], grace_seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL whatever is still running after the grace period (one period
    for all of them, not one each)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # an operator sees why the run's last epoch may be lost: it did not drain
            _log.warning(
                "worker process %d still running %.1f s after SIGTERM: sending SIGKILL",
                proc.pid,
                grace_seconds,
            )
            proc.kill()
            proc.wait()

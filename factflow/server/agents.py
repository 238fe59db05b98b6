"""Worker agents: an execution's Bytewax processes on several hosts.

`factflow worker serve` runs a `WorkerAgent` on each host. It registers itself in
Postgres (host, address, first port, capacity) and beats a heartbeat; the supervisor
places a launch's processes on the live agents (`place`, through
`worker_processes` rows) and each agent starts its own with `python -m bytewax.run
factflow.flow -i N -a addr0;addr1;...`: Bytewax's cluster mode across the hosts. The
agent reads the compiled plan and inputs from the launch's row, restores its recovery
directory from the execution's archive in Postgres and reports the pid and the exit
code; the supervisor sees a process through a `RemoteProcess`, which behaves like a
`subprocess.Popen` for the supervisor's watch loop (a stop request is a row update the
agent carries out). A process whose agent stopped beating counts as killed (-9), so the
supervisor restarts the launch on the agents that are left (or on its own host).

Everything the processes share (drain and progress counters, recovery archives,
lineage) is in Postgres, so the agents need no folder in common, only the database,
the broker and the object store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from factflow.compiler.plan_codec import plan_from_json, plan_to_json
from factflow.dataflows.forkserver import ForkServer
from factflow.dataflows.launch import Launch, LocalProcess
from factflow.db.connection import DbConnection, connect
from factflow.db.repositories import worker_agents as repo
from factflow.server import rundir
from factflow.types import JsonDict

_log = logging.getLogger(__name__)
TICK_SECONDS = 0.2
BEAT_SECONDS = 1.0
LOG_TAIL_CHARS = 2000
# the agent's own database URL reaches the workers, not the server's
_SERVER_ONLY_ENV = ("FACTFLOW_DATABASE_URL",)


# --- the supervisor's side ---------------------------------------------------------------


class RemoteProcess:
    """A process of a launch run by a worker agent, seen through its row."""

    def __init__(
        self, pool: ConnectionPool[Any], launch_id: uuid.UUID, process: int, stale_after: float
    ) -> None:
        self.pool, self.launch_id, self.process = pool, launch_id, process
        self.stale_after = stale_after
        self.pid = 0
        self.agent_id = ""
        self.log_tail = ""
        self._code: int | None = None

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        with self.pool.connection() as conn:
            rows = [
                r for r in repo.launch_processes(conn, self.launch_id) if r.process == self.process
            ]
        if not rows:
            self._code = -9  # its launch is gone (the execution was deleted)
            return self._code
        row = rows[0]
        self.pid, self.agent_id = row.pid or 0, row.agent_id
        if row.state == "exited":
            self._code = row.exit_code if row.exit_code is not None else -9
            self.log_tail = row.log_tail or ""
        elif row.agent_age_seconds is None or row.agent_age_seconds > self.stale_after:
            self._code = -9  # the agent (its host) is gone: as if the process were killed
            self.log_tail = f"worker agent {row.agent_id} stopped beating"
        return self._code

    def send_signal(self, sig: int) -> None:
        self._stop("kill" if sig == signal.SIGKILL else "term")

    def kill(self) -> None:
        self._stop("kill")

    def _stop(self, kind: repo.StopKind) -> None:
        with self.pool.connection() as conn:
            repo.request_stop(conn, self.launch_id, self.process, kind)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                msg = "worker agent process"
                raise subprocess.TimeoutExpired(msg, timeout or 0)
            time.sleep(TICK_SECONDS)
        return code


def place(conn: DbConnection, launch: Launch, stale_after: float) -> list[tuple[str, str]] | None:
    """Record `launch` (a new launch id) on the live agents: `[(agent id, address)]` per
    process, or None when they lack room for all of them (the caller starts it here)."""
    launch.launch_id = uuid.uuid4().hex
    addresses = repo.place_launch(
        conn,
        uuid.UUID(launch.launch_id),
        uuid.UUID(launch.execution_id),
        launch_spec(launch),
        launch.processes,
        stale_after,
    )
    if addresses is None:
        return None
    rows = repo.launch_processes(conn, uuid.UUID(launch.launch_id))
    return [(row.agent_id, row.address) for row in rows]


def launch_spec(launch: Launch) -> JsonDict:
    """What an agent needs to start a process of `launch`: the plan, the inputs' and
    entries' messages (their files are on the server's host), the environment."""
    return {
        "launch_id": launch.launch_id,
        "execution_id": launch.execution_id,
        "plan": plan_to_json(launch.compiled()),
        "workers": launch.workers,
        "processes": launch.processes,
        "snapshot_seconds": launch.snapshot_seconds,
        "backup_seconds": launch.backup_seconds,
        "inputs": {name: _read_jsonl(path) for name, path in launch.inputs.items()},
        "entries": {name: _read_jsonl(path) for name, path in launch.entries.items()},
        "env": {k: v for k, v in launch.extra_env.items() if k not in _SERVER_ONLY_ENV},
    }


def _read_jsonl(path: str) -> list[Any]:
    text = Path(path).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- the agent -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSettings:
    agent_id: str
    database_url: str
    address: str
    first_port: int
    capacity: int
    folder: Path
    stop_grace_seconds: float = 10.0
    host: str = field(default_factory=socket.gethostname)
    worker_forkserver: bool = True
    """Fork the processes from a warm forkserver (`factflow.dataflows.forkserver`)."""
    worker_nice: int = 0
    """Added to the processes' niceness (`Launch.nice`)."""


@dataclass
class _Local:
    process: int
    proc: LocalProcess
    log_dir: Path
    term_sent_at: float | None = None


class WorkerAgent:
    """Runs the processes placed on this agent; see the module docstring."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self._conn: DbConnection | None = None
        self._procs: dict[tuple[uuid.UUID, int], _Local] = {}
        self._last_beat = 0.0
        self._forkserver = ForkServer() if settings.worker_forkserver else None

    def serve(self, stop: threading.Event) -> None:
        """Register, then run until `stop` is set: the agent's processes are stopped
        (SIGTERM, SIGKILL after the grace period) and the agent leaves the table."""
        s = self.settings
        self._forget_orphans()
        with self._db() as conn:
            repo.register_agent(conn, s.agent_id, s.host, s.address, s.first_port, s.capacity)
        _log.info(
            "worker agent %s on %s:%d-%d (%d processes)",
            s.agent_id, s.address, s.first_port, s.first_port + s.capacity - 1, s.capacity,
        )  # fmt: skip
        try:
            while not stop.wait(TICK_SECONDS):
                try:
                    self.tick()
                except Exception:
                    _log.exception("worker agent tick failed")
                    self._drop()
        finally:
            self._shutdown()

    def tick(self) -> None:
        now = time.monotonic()
        with self._db() as conn:
            if now - self._last_beat >= BEAT_SECONDS:
                repo.beat_agent(conn, self.settings.agent_id)
                self._last_beat = now
            for row in repo.assigned_to(conn, self.settings.agent_id):
                self._start(conn, row)
            rows = repo.running_on(conn, self.settings.agent_id)
            wanted = {(r.launch_id, r.process): r for r in rows}
            for key, local in list(self._procs.items()):
                code = local.proc.poll()
                if code is not None:
                    tail = _log_tail(local.log_dir, local.process) if code else None
                    repo.set_exited(conn, key[0], key[1], code, tail)
                    del self._procs[key]
                elif key not in wanted:
                    local.proc.kill()  # its row is gone or finished: nobody waits for it
                else:
                    self._carry_out(local, wanted[key].stop)

    def _carry_out(self, local: _Local, stop: repo.StopKind | None) -> None:
        """A stop request: SIGTERM once, SIGKILL for `kill` or after the grace period."""
        if stop is None:
            return
        if stop == "term" and local.term_sent_at is None:
            local.proc.send_signal(signal.SIGTERM)
            local.term_sent_at = time.monotonic()
        elif stop == "kill" or (
            local.term_sent_at is not None
            and time.monotonic() - local.term_sent_at >= self.settings.stop_grace_seconds
        ):
            local.proc.kill()

    def _start(self, conn: DbConnection, row: repo.WorkerProcess) -> None:
        spec = repo.launch_spec(conn, row.launch_id)
        base = self.settings.folder / "runs" / str(row.execution_id) / f"process-{row.process}"
        try:
            launch = self._launch(spec, base)
            proc = launch.start_process(row.process, list(spec["addresses"]))
        except Exception as exc:
            _log.exception("process %d of %s did not start", row.process, row.execution_id)
            error = f"the worker agent {self.settings.agent_id} could not start it: {exc}"
            repo.set_exited(conn, row.launch_id, row.process, 1, error)
            return
        if not repo.set_running(conn, row.launch_id, row.process, proc.pid):
            proc.kill()  # stopped before it started
            proc.wait()
            return
        self._procs[(row.launch_id, row.process)] = _Local(row.process, proc, launch.log_dir)
        _log.info(
            "started process %d of execution %s (pid %d, %s)",
            row.process, row.execution_id, proc.pid, row.address,
        )  # fmt: skip

    def _launch(self, spec: JsonDict, base: Path) -> Launch:
        base.mkdir(parents=True, exist_ok=True)
        inputs = rundir.write_inputs(base, spec["inputs"])
        entries = rundir.write_inputs(base, spec["entries"], "entries")
        execution_id = str(spec["execution_id"])
        return Launch(
            pipeline=None,
            plan=plan_from_json(spec["plan"]),
            execution_id=execution_id,
            run_dir=base,
            recovery_dir=base / "recovery",
            workers=int(spec["workers"]),
            processes=int(spec["processes"]),
            inputs=inputs,
            entries=entries,
            snapshot_seconds=int(spec["snapshot_seconds"]),
            backup_seconds=int(spec["backup_seconds"]),
            extra_env={**spec["env"], "FACTFLOW_DATABASE_URL": self.settings.database_url},
            launch_id=str(spec["launch_id"]),
            spawner=self._forkserver,
            nice=self.settings.worker_nice,
        )

    def _forget_orphans(self) -> None:
        """Rows an earlier run of this agent left unfinished: their processes (if still
        alive on this host) are killed and the rows marked exited, so the supervisor
        restarts their launches."""
        with self._db() as conn:
            for row in [*repo.assigned_to(conn, self.settings.agent_id),
                        *repo.running_on(conn, self.settings.agent_id)]:  # fmt: skip
                if row.pid:
                    with contextlib.suppress(OSError):
                        if b"factflow.flow" in Path(f"/proc/{row.pid}/cmdline").read_bytes():
                            os.kill(row.pid, signal.SIGKILL)
                repo.set_exited(conn, row.launch_id, row.process, -9, "its worker agent restarted")

    def _shutdown(self) -> None:
        for local in self._procs.values():
            with contextlib.suppress(OSError):
                local.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        for local in self._procs.values():
            try:
                local.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                local.proc.kill()
                local.proc.wait()
        with contextlib.suppress(Exception), self._db() as conn:
            for (launch_id, process), local in self._procs.items():
                repo.set_exited(conn, launch_id, process, local.proc.returncode or -15)
            repo.remove_agent(conn, self.settings.agent_id)
        self._procs.clear()
        self._drop()
        if self._forkserver is not None:
            self._forkserver.close()

    @contextlib.contextmanager
    def _db(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings.database_url)
        yield self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None


def _log_tail(log_dir: Path, process: int) -> str:
    path = log_dir / f"process-{process}.log"
    try:
        return path.read_text(errors="replace").strip()[-LOG_TAIL_CHARS:]
    except OSError:
        return ""

"""The execution supervisor: launches worker processes, watches them, moves the status.

One `Supervisor` per server instance. It owns the worker processes it started; every
fact about an execution is in Postgres, so any instance answers for any execution, and
cancelling through another instance works too (the owner sees `cancelling` on its next
heartbeat and stops its workers).

- Launch: the row is created under an advisory lock that also enforces
  `max_concurrent_executions` across instances, then `python -m bytewax.run
  factflow.flow` processes start (`factflow.dataflows.launch.Launch`), forked from the
  instance's warm forkserver (`worker_forkserver`, `factflow.dataflows.forkserver`) when it
  is ready, else as new interpreters.
- Watch: a thread polls exit codes; while workers live it beats the row's heartbeat and
  copies the workers' counters into `stats.counts`. All exited with 0 -> completed; after
  a cancel -> cancelled; a non-zero exit -> failed with the log tail. When a process is
  killed by a signal (SIGKILL, the OOM killer), the others cannot go on (a Bytewax
  cluster needs every process), so all of them are stopped and started again from the
  recovery directory, up to `worker_restarts` times (`stats.restarts`); then it fails.
- Cancel: `running -> cancelling`, then SIGTERM and SIGKILL after the grace period.
- Abandoned executions (their server is gone, or no heartbeat for `stale_after_seconds`)
  become `interrupted` (a `cancelling` one `cancelled`); orphaned workers on this host
  are stopped first. `resume` relaunches an interrupted execution from its recovery
  directory (restored from its Postgres archive when that is newer); with
  `resume_abandoned` the instance that marked an execution interrupted resumes it at
  once through `on_abandoned` (the execution service's `resume`), so a surviving replica
  takes over the executions of one that died.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from factflow.compiler.loader import parse_yaml
from factflow.compiler.overrides import relative_file_uri
from factflow.compiler.plan import Plan
from factflow.connectors.cleanup import delete_scoped_queues
from factflow.dataflows.forkserver import ForkServer, pid_running
from factflow.dataflows.launch import Launch, WorkerHandle, stop
from factflow.dataflows.progress import read_counts, read_waiting
from factflow.db.connection import DbConnection
from factflow.db.exceptions import IllegalTransitionError
from factflow.db.repositories import executions as repo
from factflow.db.repositories import worker_agents as agents_repo
from factflow.db.repositories import worker_counters
from factflow.db.repositories.recovery import latest_archive_time
from factflow.outage import Waiting
from factflow.server import agents, rundir
from factflow.server.exceptions import (
    ExecutionStateError,
    KeyExecutionLimitError,
    SupervisorError,
    TooManyConcurrentExecutionsError,
)
from factflow.server.restart import Restart
from factflow.server.settings import SupervisorSettings
from factflow.types import JsonDict

_log = logging.getLogger(__name__)
# pg_advisory_xact_lock key: serialises the capacity check with the commit of the row
_LAUNCH_LOCK = 0x46_46_4C_41  # "FFLA"
_TICK_SECONDS = 0.2
_ACTIVE: tuple[repo.ExecutionStatus, ...] = ("running", "cancelling")
# a finished run's worker metrics stay on /metrics this long, so a scrape sees the end
METRICS_KEPT_SECONDS = 300.0
ENTRIES_INDEX = "entries.json"


@dataclass(frozen=True, slots=True)
class StartedBy:
    """Who asks for an execution: recorded on its row; with a key and a cap, the key may
    have at most `max_running` executions running at once (on every server instance)."""

    label: str
    key_id: uuid.UUID | None = None
    max_running: int | None = None


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """What the execution service asks to run: the compiled plan (with the server's
    overrides in) and the YAML it came from, for the execution's snapshot."""

    execution_id: uuid.UUID
    plan: Plan
    config_yaml: str
    pipeline_name: str
    config_id: uuid.UUID | None = None
    config_version: int | None = None
    inputs: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    workers: int = 1
    processes: int = 1
    trigger_context: JsonDict = field(default_factory=dict)
    idempotency_key: str | None = None
    source: str = "api"
    replay_source: JsonDict | None = None
    """For a replay: the parent execution, stage and entry route (`source: replay`)."""
    started_by: StartedBy | None = None
    parsed_yaml: Any = None
    """`config_yaml` as the compiler parsed it (its `loaded.data`), so the snapshot does not
    parse it again; None: parsed here."""

    def snapshot(self) -> JsonDict:
        """The immutable `config_snapshot`: the YAML as given, parsed, and where it came from."""
        parsed = parse_yaml(self.config_yaml) if self.parsed_yaml is None else self.parsed_yaml
        return {
            "name": self.pipeline_name,
            "config_id": None if self.config_id is None else str(self.config_id),
            "config_version": self.config_version,
            "config_hash": self.plan.config_hash,
            "config_yaml": self.config_yaml,
            "config": parsed if isinstance(parsed, dict) else {},
            "workers": self.workers,
            "processes": self.processes,
        }


@dataclass
class _Run:
    execution_id: uuid.UUID
    launch: Launch
    procs: list[WorkerHandle]
    stopper: threading.Thread | None = None
    last_beat: float = 0.0
    restarts: int = 0
    restarter: threading.Thread | None = None


class Supervisor:
    """Starts, watches, cancels and resumes executions; see the module docstring."""

    def __init__(self, settings: SupervisorSettings, pool: ConnectionPool[Any]) -> None:
        self.settings = settings
        self.pool = pool
        self.host = socket.gethostname()
        self.finished: collections.Counter[str] = collections.Counter()
        self.launched = 0
        self.restarts = 0
        self.on_abandoned: Callable[[DbConnection, uuid.UUID], object] | None = None
        """Called with each execution this instance marked interrupted (see module doc)."""
        self._runs: dict[uuid.UUID, _Run] = {}
        self._finished_at: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0
        self.forkserver: ForkServer | None = ForkServer() if settings.worker_forkserver else None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Mark abandoned executions interrupted, then start watching."""
        self.sweep(force=True)
        self._thread = threading.Thread(target=self._watch, name="factflow-supervisor")
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        """Stop watching; this instance's executions become interrupted, workers stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for run in runs:
            with contextlib.suppress(Exception), self.pool.connection() as conn:
                current = repo.get_execution(conn, run.execution_id)
                if current.status == "running":
                    repo.transition(
                        conn, run.execution_id, "interrupted", error="the server stopped"
                    )
                elif current.status == "cancelling":
                    repo.transition(conn, run.execution_id, "cancelled")
        stoppers = [
            threading.Thread(target=stop, args=(run.procs, self.settings.cancel_grace_seconds))
            for run in runs
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        if self.forkserver is not None:
            self.forkserver.close()

    def local_executions(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._runs)

    def metric_executions(self) -> list[uuid.UUID]:
        """The executions whose worker metrics this instance shows: its running ones and
        those that finished in the last METRICS_KEPT_SECONDS."""
        now = time.monotonic()
        with self._lock:
            for execution_id, at in list(self._finished_at.items()):
                if now - at > METRICS_KEPT_SECONDS:
                    del self._finished_at[execution_id]
            return [*self._runs, *self._finished_at]

    def is_local(self, execution_id: uuid.UUID) -> bool:
        with self._lock:
            return execution_id in self._runs

    def run_dir(self, execution_id: uuid.UUID) -> Path:
        return self.settings.runs_dir / str(execution_id)

    def progress_counts(
        self, execution_id: uuid.UUID, conn: DbConnection | None = None
    ) -> dict[str, int]:
        """The workers' counters as they are now, whichever hosts they run on (the
        newest launch's rows in Postgres; files for processes that wrote none). On `conn`
        when given (a request's own: no second connection from the pool)."""
        if conn is None:
            with self.pool.connection() as own:
                rows = worker_counters.newest_counters(own, execution_id, "progress")
        else:
            rows = worker_counters.newest_counters(conn, execution_id, "progress")
        if rows:
            return worker_counters.summed(rows)
        return read_counts(self.run_dir(execution_id) / "progress")

    def worker_metric_texts(self, execution_id: uuid.UUID) -> list[str]:
        """The Prometheus text of each of the execution's processes (newest launch)."""
        with self.pool.connection() as conn:
            _, rows = worker_counters.read_counters(conn, execution_id, "progress")
        return [row.metrics for row in rows if row.metrics]

    def waiting(self, execution_id: uuid.UUID) -> list[Waiting]:
        """What the workers of this instance's run wait for now (an outage), else []."""
        if not self.is_local(execution_id):
            return []
        return read_waiting(self.run_dir(execution_id) / "progress")

    # --- launching ----------------------------------------------------------------------

    def launch(self, conn: DbConnection, request: LaunchRequest) -> tuple[repo.Execution, bool]:
        """Create the execution and start its workers; `(execution, False)` when the
        idempotency key names an existing one (nothing is started)."""
        execution_id = request.execution_id
        with conn.transaction():
            # the row (and its event) first, unseen by others until the commit; then the
            # launch lock, held only for the count and the commit: every launch of every
            # instance waits for it, so the fewer round trips under it the better
            execution = repo.create_execution(
                conn,
                execution_id=execution_id,
                pipeline_name=request.pipeline_name,
                config_snapshot=request.snapshot(),
                config_id=request.config_id,
                config_version=request.config_version,
                source=request.source,
                replay_source=request.replay_source,
                trigger_context=request.trigger_context,
                idempotency_key=request.idempotency_key,
                started_by=request.started_by.label if request.started_by else None,
                started_by_key=request.started_by.key_id if request.started_by else None,
            )
            if execution.id != execution_id:
                return execution, False  # a repeated idempotency key: never a 429
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LAUNCH_LOCK,))
            # a refusal rolls the row and its event back
            self._check_capacity(conn, exclude=execution_id, started_by=request.started_by)
        run_dir = self.run_dir(execution_id)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            inputs = rundir.write_inputs(run_dir, request.inputs)
            rundir.save_input_index(run_dir, inputs)
            execution = self._start_workers(
                conn,
                execution_id,
                request.plan,
                inputs,
                request.workers,
                request.processes,
                fresh=True,
            )
        except Exception as exc:
            _log.exception("execution %s could not be launched", execution_id)
            repo.transition(conn, execution_id, "failed", error=f"launch failed: {exc}")
            msg = f"execution {execution_id} could not be launched: {exc}"
            raise SupervisorError(msg) from exc
        return execution, True

    def absolute_storage_uri(self) -> str:
        """The server's storage URI with a relative `file://` path made absolute (the
        workers run in other folders)."""
        uri = self.settings.storage_uri
        if relative_file_uri(uri):
            return f"file://{Path(uri.removeprefix('file://')).resolve()}"
        return uri

    def _check_capacity(
        self,
        conn: DbConnection,
        exclude: uuid.UUID | None = None,
        started_by: StartedBy | None = None,
    ) -> None:
        """Under the launch lock: the server-wide cap, then the asking key's own."""
        if started_by is not None and started_by.key_id and started_by.max_running:
            running = repo.count_running_by_key(conn, started_by.key_id, exclude=exclude)
            if running >= started_by.max_running:
                msg = (
                    f"{started_by.label} has {running} executions running, its limit is"
                    f" {started_by.max_running} (max_running_executions): wait for one to"
                    " finish or cancel one"
                )
                raise KeyExecutionLimitError(msg)
        count = repo.count_executions(conn, status=list(_ACTIVE), exclude=exclude)
        limit = self.settings.max_concurrent_executions
        if count >= limit:
            msg = (
                f"{count} executions are running, the limit is {limit} "
                "(max_concurrent_executions): wait for one to finish, cancel one, or raise "
                "FACTFLOW_MAX_CONCURRENT_EXECUTIONS"
            )
            raise TooManyConcurrentExecutionsError(msg)

    def _start_workers(
        self,
        conn: DbConnection,
        execution_id: uuid.UUID,
        plan: Plan,
        inputs: dict[str, str],
        workers: int,
        processes: int,
        entries: dict[str, str] | None = None,
        *,
        fresh: bool = False,
    ) -> repo.Execution:
        """Start the processes; `fresh`: a new execution id, which has no recovery archive
        to restore (nor migrations to apply: the server did at start), so the launch
        opens no database connections of its own."""
        run_dir = self.run_dir(execution_id)
        env = dict(self.settings.worker_env)
        if self.settings.database_url:
            env["FACTFLOW_DATABASE_URL"] = self.settings.database_url
        env["FACTFLOW_STORAGE_URI"] = self.absolute_storage_uri()
        launch = Launch(
            pipeline=None,
            plan=plan,
            execution_id=str(execution_id),
            run_dir=run_dir,
            recovery_dir=self.settings.recovery_dir / str(execution_id),
            workers=workers,
            processes=processes,
            inputs=inputs,
            entries=entries or {},
            extra_env=env,
            restore=not fresh,
            spawner=self.forkserver,
            nice=self.settings.worker_nice,
        )
        procs = self._spawn(launch)
        launch.restore = True  # a restart of these processes resumes from recovery
        with self._lock:
            self._runs[execution_id] = _Run(execution_id, launch, procs, last_beat=time.monotonic())
        self.launched += 1
        return repo.set_workers(conn, execution_id, self._worker_info(procs, workers))

    def _spawn(self, launch: Launch) -> list[WorkerHandle]:
        """The launch's processes on the live worker agents (`worker_agents: auto`, a
        queue every host reaches), else all of them on this host."""
        if self.settings.worker_agents == "auto" and launch.compiled().queue.provider != "file":
            with self.pool.connection() as conn:
                placed = agents.place(conn, launch, self.settings.stale_after_seconds)
            if placed is not None:
                launch_id = uuid.UUID(launch.launch_id)
                stale = self.settings.stale_after_seconds
                return [
                    agents.RemoteProcess(self.pool, launch_id, index, stale)
                    for index in range(len(placed))
                ]
        return list(launch.start())

    def _worker_info(self, procs: Sequence[WorkerHandle], workers: int) -> list[JsonDict]:
        info = []
        for index, proc in enumerate(procs):
            worker: JsonDict = {
                "process": index,
                "pid": proc.pid,
                "host": self.host,
                "server_host": self.host,
                "server_pid": os.getpid(),
                "instance": self.settings.instance_id,
                "workers": workers,
            }
            if isinstance(proc, agents.RemoteProcess):
                worker["agent"] = proc.agent_id
            info.append(worker)
        return info

    # --- cancel and resume --------------------------------------------------------------

    def cancel(self, conn: DbConnection, execution_id: uuid.UUID) -> repo.Execution:
        """`cancelling` at once; the workers get SIGTERM (SIGKILL after the grace period)."""
        execution = repo.get_execution(conn, execution_id)
        if execution.status == "cancelling":
            return execution
        if execution.status == "interrupted":
            return repo.transition(conn, execution_id, "cancelled")
        if execution.status != "running":
            msg = f"execution {execution_id} is {execution.status}: there is nothing to cancel"
            raise ExecutionStateError(msg)
        execution = repo.transition(conn, execution_id, "cancelling")
        with self._lock:
            run = self._runs.get(execution_id)
        if run is not None:
            self._stop_run(run)
        return execution

    def has_recovery(self, conn: DbConnection, execution_id: uuid.UUID) -> bool:
        """Whether a resume has a recovery snapshot to start from: the local directory's
        partitions, or an archive in Postgres."""
        local = self.settings.recovery_dir / str(execution_id)
        if any(local.glob("part-*.sqlite3")):
            return True
        return latest_archive_time(conn, execution_id) is not None

    def resume(
        self,
        conn: DbConnection,
        execution_id: uuid.UUID,
        plan: Plan,
        restart: Restart | None = None,
    ) -> repo.Execution:
        """Relaunch an interrupted execution (running `plan`, the one it ran) where its
        recovery snapshot left it, or, with `restart`, from the entries lineage and
        storage gave (`server.restart`; its inputs and entries are kept for later
        resumes, which then have a snapshot of their own)."""
        execution = repo.get_execution(conn, execution_id)
        if execution.status != "interrupted" or self.is_local(execution_id):
            msg = (
                f"execution {execution_id} is {execution.status}: only interrupted "
                "executions can be resumed"
            )
            raise ExecutionStateError(msg)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LAUNCH_LOCK,))
            self._check_capacity(conn)
            execution = repo.resume_execution(conn, execution_id)
        run_dir = self.run_dir(execution_id)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            if restart is not None:
                self._prepare_restart(conn, execution_id, run_dir, restart)
            # Launch.prepare restores the recovery directory from Postgres when stale
            snapshot = execution.config_snapshot
            return self._start_workers(
                conn,
                execution_id,
                plan if restart is None else restart.plan,
                rundir.input_files(run_dir),
                int(snapshot.get("workers", 1)),
                int(snapshot.get("processes", 1)),
                rundir.input_files(run_dir, ENTRIES_INDEX),
            )
        except Exception as exc:
            repo.transition(conn, execution_id, "interrupted", error=f"resume failed: {exc}")
            raise

    def _prepare_restart(
        self, conn: DbConnection, execution_id: uuid.UUID, run_dir: Path, restart: Restart
    ) -> None:
        """The restart's inputs and entries in the run folder, a fresh recovery directory
        (what is left of the old one belongs to a lost snapshot), and the summary on the
        execution's stats."""
        inputs = rundir.write_inputs(run_dir, restart.inputs, "restart/inputs")
        entries = rundir.write_inputs(run_dir, restart.entries, "restart/entries")
        rundir.save_input_index(run_dir, inputs)
        rundir.save_input_index(run_dir, entries, ENTRIES_INDEX)
        shutil.rmtree(self.settings.recovery_dir / str(execution_id), ignore_errors=True)
        repo.merge_stats(conn, execution_id, {"restart": restart.summary})

    def _stop_run(self, run: _Run) -> None:
        if run.stopper is not None:
            return
        run.stopper = threading.Thread(
            target=stop,
            args=(run.procs, self.settings.cancel_grace_seconds),
            name=f"factflow-stop-{run.execution_id}",
            daemon=True,
        )
        run.stopper.start()

    # --- watching -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(_TICK_SECONDS):
            try:
                self.tick()
            except Exception:
                _log.exception("supervisor tick failed")

    def tick(self) -> None:
        """One round: finish exited runs, beat and check the live ones, sweep the others."""
        with self._lock:
            runs = list(self._runs.values())
        now = time.monotonic()
        for run in runs:
            if run.restarter is not None:
                if run.restarter.is_alive():
                    continue
                run.restarter = None
            codes = [proc.poll() for proc in run.procs]
            # killed by a signal nobody here sent (SIGKILL, the OOM killer): restart; an
            # exit status is the program's own verdict and fails the execution
            died = any(code is not None and code < 0 for code in codes)
            if died and run.stopper is None and run.restarts < self.settings.worker_restarts:
                if self._status(run) == "running":
                    self._restart(run, codes)
                else:
                    # ended meanwhile (cancelled, swept as stale): nothing to restart, and
                    # no restart counted; the next ticks finish the run once it is stopped
                    self._stop_run(run)
            elif all(code is not None for code in codes):
                self._finish(run, [int(c) for c in codes if c is not None])
            elif now - run.last_beat >= self.settings.heartbeat_seconds:
                run.last_beat = now
                self._beat(run)
        self.sweep()

    def _beat(self, run: _Run) -> None:
        counts = self.progress_counts(run.execution_id)
        with self.pool.connection() as conn:
            repo.heartbeat(conn, run.execution_id)
            if counts:
                repo.merge_stats(conn, run.execution_id, {"counts": counts})
            execution = repo.get_execution(conn, run.execution_id)
            info = self._worker_info(run.procs, run.launch.workers)
            if info != execution.workers:
                # an agent's process got its pid (or its agent) since the launch
                repo.set_workers(conn, run.execution_id, info)
            status = execution.status
        if status == "cancelling":
            self._stop_run(run)
        elif status in ("interrupted", "cancelled", "failed", "completed"):
            # another instance decided (e.g. it swept us as stale): stop the workers
            self._stop_run(run)

    def _status(self, run: _Run) -> repo.ExecutionStatus:
        with self.pool.connection() as conn:
            return repo.get_execution(conn, run.execution_id).status

    def _restart(self, run: _Run, codes: Sequence[int | None]) -> None:
        """Stop what is left of the run's processes and start them all again from the
        recovery directory (in a thread: stopping may take the grace period)."""
        run.restarts += 1
        self.restarts += 1
        dead = ", ".join(f"process {i} exited with {c}" for i, c in enumerate(codes) if c)
        _log.warning(
            "execution %s: %s; restarting its processes from recovery (%d of %d)",
            run.execution_id,
            dead,
            run.restarts,
            self.settings.worker_restarts,
        )

        def restart() -> None:
            stop(run.procs, self.settings.cancel_grace_seconds)
            with self.pool.connection() as conn:
                if repo.get_execution(conn, run.execution_id).status != "running":
                    return  # cancelled meanwhile: the next tick finishes the run
                procs = self._spawn(run.launch)
                run.procs = procs
                workers = run.launch.workers
                repo.set_workers(conn, run.execution_id, self._worker_info(procs, workers))
                repo.merge_stats(conn, run.execution_id, {"restarts": run.restarts})

        run.restarter = threading.Thread(
            target=restart, name=f"factflow-restart-{run.execution_id}", daemon=True
        )
        run.restarter.start()

    def _finish(self, run: _Run, codes: list[int]) -> None:
        with self._lock:
            self._runs.pop(run.execution_id, None)
            self._finished_at[run.execution_id] = time.monotonic()
        counts = self.progress_counts(run.execution_id)
        with self.pool.connection() as conn:
            current = repo.get_execution(conn, run.execution_id)
            repo.merge_stats(conn, run.execution_id, {"counts": counts, "exit_codes": codes})
            error = None
            if current.status == "cancelling":
                target: repo.ExecutionStatus = "cancelled"
            elif current.status != "running":
                return
            elif all(code == 0 for code in codes):
                target = "completed"
            else:
                target = "failed"
                failed = ", ".join(
                    f"process {i} exited with {c}" for i, c in enumerate(codes) if c != 0
                )
                remote = "\n".join(
                    f"--- process {i} (worker agent {p.agent_id})\n{p.log_tail}"
                    for i, p in enumerate(run.procs)
                    if isinstance(p, agents.RemoteProcess) and p.log_tail
                )
                tail = "\n".join(t for t in (rundir.log_tail(run.launch.run_dir), remote) if t)
                error = f"{failed}\n{tail}" if tail else failed
            repo.transition(conn, run.execution_id, target, error=error)
        if target == "completed":
            plan = run.launch.compiled()
            delete_scoped_queues(plan, str(run.execution_id), plan.queue)
        self.finished[target] += 1
        _log.info("execution %s %s (exit codes %s)", run.execution_id, target, codes)

    def sweep(self, *, force: bool = False) -> None:
        """Interrupt executions nobody watches any more (see `_abandoned`)."""
        now = time.monotonic()
        if not force and now - self._last_sweep < self.settings.stale_after_seconds / 3:
            return
        self._last_sweep = now
        local = set(self.local_executions())
        with self.pool.connection() as conn:
            for execution in repo.list_executions(conn, status=list(_ACTIVE), limit=10_000):
                if execution.id in local or not self._abandoned(execution):
                    continue
                self._kill_orphans(execution)
                target: repo.ExecutionStatus = (
                    "cancelled" if execution.status == "cancelling" else "interrupted"
                )
                try:
                    repo.transition(
                        conn,
                        execution.id,
                        target,
                        error=None
                        if target == "cancelled"
                        else "its server stopped watching it; resume it with "
                        f"POST /api/v1/executions/{execution.id}/resume",
                    )
                except IllegalTransitionError:
                    continue  # another instance got there first
                _log.warning("execution %s was abandoned: now %s", execution.id, target)
                if target == "interrupted" and self.on_abandoned is not None:
                    try:
                        self.on_abandoned(conn, execution.id)
                        _log.warning("execution %s resumed by %s", execution.id, self.host)
                    except Exception:
                        _log.exception("execution %s could not be resumed", execution.id)

    def _abandoned(self, execution: repo.Execution) -> bool:
        beat = execution.heartbeat_at or execution.started_at
        stale = timedelta(seconds=self.settings.stale_after_seconds)
        if datetime.now(UTC) - beat > stale:
            return True
        for worker in execution.workers:
            if worker.get("server_host", worker.get("host")) != self.host:
                return False
            server_pid = int(worker.get("server_pid", 0))
            if server_pid == os.getpid() or worker.get("instance") == self.settings.instance_id:
                return False  # this process (another app instance in it): heartbeat decides
            return not pid_running(server_pid)
        return False

    def _kill_orphans(self, execution: repo.Execution) -> None:
        if any("agent" in worker for worker in execution.workers):
            self._stop_remote_orphans(execution.id)
        for worker in execution.workers:
            if worker.get("host") != self.host or "agent" in worker:
                continue
            pid = int(worker.get("pid", 0))
            if _is_worker(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, 15)
                deadline = time.monotonic() + self.settings.cancel_grace_seconds
                while pid_running(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _is_worker(pid):
                    with contextlib.suppress(OSError):
                        os.kill(pid, 9)

    def _stop_remote_orphans(self, execution_id: uuid.UUID) -> None:
        """Ask the agents to stop the execution's processes, and wait (the grace period
        and a little more) until they have: a resume must not run beside them."""
        with self.pool.connection() as conn:
            agents_repo.stop_execution(conn, execution_id, "term")
        deadline = time.monotonic() + self.settings.cancel_grace_seconds + 5
        while time.monotonic() < deadline:
            with self.pool.connection() as conn:
                if not agents_repo.unfinished(
                    conn, execution_id, self.settings.stale_after_seconds
                ):
                    return
            time.sleep(_TICK_SECONDS)


def _is_worker(pid: int) -> bool:
    """A live process running `factflow.flow` (not a recycled pid)."""
    if not pid_running(pid):
        return False
    try:
        return b"factflow.flow" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False

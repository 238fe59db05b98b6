"""`python -m bytewax.run factflow.flow`: the dataflow of the pipeline in FACTFLOW_PIPELINE.

`python -m bytewax.run "factflow.flow:build('pipeline.yaml')"` names the file instead.
Bytewax's own flags apply: `-w N` workers, `-i/-a` for several processes, and `-r DIR
-s SECONDS -b SECONDS` (or BYTEWAX_RECOVERY_DIRECTORY ...) for a recovery directory, which
is what lets a killed run resume. An invalid pipeline prints the compiler's report and
exits with status 1, without a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
import uuid
from pathlib import Path

from bytewax.dataflow import Dataflow

from factflow.compiler.compile import compile_file
from factflow.compiler.plan import Plan
from factflow.compiler.plan_codec import read_plan
from factflow.compiler.render import render_report
from factflow.connectors.drain import CounterStore, FileCounters, ledger
from factflow.dataflows.build import FlowOptions, build_dataflow
from factflow.dataflows.metrics import start_worker_metrics
from factflow.dataflows.progress import progress
from factflow.db.repositories.worker_counters import PostgresCounters
from factflow.exceptions import ConfigurationError
from factflow.llm import LLMConfig
from factflow.logs import configure_logging
from factflow.outage import set_limit as set_outage_limit
from factflow.settings import Settings

_EXECUTION_NAMESPACE = uuid.UUID("3f2b7c1e-9a4d-4e8b-8c55-1d0e6f7a2b90")


def load_plan(pipeline: str | Path) -> Plan:
    """The plan of `pipeline` (its report's issues on stderr); ConfigurationError when it
    is invalid."""
    result = compile_file(pipeline)
    if result.report.issues:
        print(render_report(result), file=sys.stderr)
    return result.require_plan()


def stage_storage_uri(plan: Plan, settings: Settings) -> str:
    """Where an execution's stages go: the pipeline's `storage.uri`, else the settings'."""
    return plan.storage_uri or settings.storage_uri


def run_options(plan: Plan, settings: Settings) -> FlowOptions:
    """Execution id, stage storage, source partitions and LLM models from the settings."""
    storage = None
    if settings.store_stages:
        from factflow.storage import open_storage

        storage = open_storage(stage_storage_uri(plan, settings))
    execution_id = settings.execution_id or default_execution_id(plan)
    progress_file = None
    if settings.progress_dir is not None:
        settings.progress_dir.mkdir(parents=True, exist_ok=True)
        progress_file = settings.progress_dir / f"{os.getpid()}.json"
    drain: CounterStore | None = (
        None if settings.drain_dir is None else FileCounters(settings.drain_dir)
    )
    shared: PostgresCounters | None = None
    if settings.database_url and settings.launch_id:
        # the launch's processes may run on several hosts: counters go through Postgres
        where = (settings.database_url, uuid.UUID(execution_id), settings.launch_id)
        shared = PostgresCounters(*where, process_id(), "progress")
        drain = PostgresCounters(*where, process_id(), "drain")
    # started at once: an outage may come before any message and must show
    progress(progress_file, shared).start()
    ledger(drain)
    set_outage_limit(settings.outage_limit_seconds)
    # text too: the default handler prints bare messages, without time, level or logger
    configure_logging(settings.log_format, execution_id=execution_id, process_id=process_id())
    start_worker_metrics(execution_id, settings.metrics_port, process_id())
    return FlowOptions(
        execution_id=execution_id,
        storage=storage,
        source_partitions=settings.source_partitions,
        inputs=dict(settings.inputs),
        entries=dict(settings.entries),
        database_url=settings.database_url,
        processes=settings.processes,
        process_id=process_id(),
        llm=LLMConfig.from_settings(settings),
    )


def bytewax_option(short: str, long: str, env: str) -> str | None:
    """A `python -m bytewax.run` option of this process (Bytewax parsed it already)."""
    args = sys.argv
    for index, arg in enumerate(args[:-1]):
        if arg in (short, long):
            return args[index + 1]
    for arg in args:
        if arg.startswith(long + "="):
            return arg.partition("=")[2]
    return os.environ.get(env)


def process_id() -> int:
    """This process's Bytewax process id: `-i`, BYTEWAX_PROCESS_ID, or (Bytewax's rule for
    a Kubernetes StatefulSet) BYTEWAX_POD_NAME without "BYTEWAX_STATEFULSET_NAME-"."""
    given = bytewax_option("-i", "--process-id", "BYTEWAX_PROCESS_ID")
    if given is not None:
        return int(given)
    pod, statefulset = (
        os.environ.get("BYTEWAX_POD_NAME"),
        os.environ.get("BYTEWAX_STATEFULSET_NAME"),
    )
    if pod and statefulset:
        return int(pod.removeprefix(f"{statefulset}-"))
    return 0


def prepare_database(url: str) -> None:
    """Apply pending migrations before the workers write lineage, dead letters or
    archives (safe from many processes at once: `migrate` holds an advisory lock)."""
    from factflow.db import connect, migrate

    with connect(url) as conn:
        migrate(conn)


def start_recovery_archive(plan: Plan, options: FlowOptions, *, restore: bool = True) -> None:
    """With a database and a recovery directory: restore it from Postgres when it is
    missing or stale (unless a launcher did, once, before starting the workers), then
    archive the partitions this process owns every few seconds."""
    recovery = bytewax_option("-r", "--recovery-directory", "BYTEWAX_RECOVERY_DIRECTORY")
    execution = options.lineage_execution
    if options.database_url is None or recovery is None or execution is None:
        return
    from factflow.dataflows.recovery import RecoveryArchiver, restore_if_stale
    from factflow.db.recovery_files import partition_files
    from factflow.db.repositories.recovery import step_fingerprint

    steps = step_fingerprint(plan.step_ids)
    directory = Path(recovery)
    restored = restore_if_stale(options.database_url, execution, directory, steps) if restore else 0
    if restored:
        print(f"factflow: restored {restored} recovery partition(s) from Postgres", file=sys.stderr)
    if directory.is_dir():
        owned = owned_partitions(len(partition_files(directory)), options.processes)
        RecoveryArchiver(options.database_url, execution, directory, steps, owned).start()


def owned_partitions(count: int, processes: int) -> set[int]:
    """The recovery partitions this process writes, which it archives: Bytewax gives
    partition i to worker i mod (workers x processes), and a process's workers are
    numbered process id x workers onwards. The other partitions in a directory on this
    host are untouched copies (their own process archives them, on its host)."""
    workers = int(bytewax_option("-w", "--workers-per-process", "BYTEWAX_WORKERS_PER_PROCESS") or 1)
    total = workers * processes
    return {i for i in range(count) if (i % total) // workers == process_id()}


def default_execution_id(plan: Plan) -> str:
    """Without FACTFLOW_EXECUTION_ID a pipeline's runs share one id, derived from its
    config, so rerunning the unchanged pipeline resumes it."""
    return str(uuid.uuid5(_EXECUTION_NAMESPACE, plan.config_hash))


def build(pipeline: str | Path | None = None, settings: Settings | None = None) -> Dataflow:
    """The dataflow of `pipeline` (default: FACTFLOW_PIPELINE)."""
    settings = settings or Settings()
    path = pipeline or settings.pipeline
    launched = pipeline is None and settings.plan is not None
    if path is None and not launched:
        print(
            "factflow.flow: set FACTFLOW_PIPELINE to a pipeline YAML, or run "
            "\"factflow.flow:build('pipeline.yaml')\"",
            file=sys.stderr,
        )
        raise SystemExit(2)
    try:
        # a launcher compiled the plan once for every worker: never compile YAML again
        plan = read_plan(settings.plan) if launched and settings.plan else load_plan(path or "")
    except ConfigurationError as exc:
        print(f"factflow.flow: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    options = run_options(plan, settings)
    if options.database_url is not None:
        prepare_database(options.database_url)
        from factflow.dataflows.lineage import install_flush_on_exit

        # a cancel (SIGTERM) keeps the lineage of everything processed so far
        install_flush_on_exit()
    start_recovery_archive(plan, options, restore=not launched)
    return build_dataflow(plan, options)


def __getattr__(name: str) -> Dataflow:
    # `python -m bytewax.run factflow.flow` looks up `flow`; build it only then, so that
    # importing this module (for `build`) needs no environment.
    if name == "flow":
        flow = build()
        # From here the process only runs the flow, and what imports and the build made
        # lives until it exits: frozen, the cyclic collector no longer scans it, neither
        # in the run's collections nor at exit, where it cost every worker ~0.2 s of CPU
        # after its last message (bench/engine.py, 2,000-message cpu case).
        gc.collect()
        gc.freeze()
        return flow
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)

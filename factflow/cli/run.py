"""`factflow run PIPELINE.yaml`: run a pipeline's workers here, with live progress."""

from __future__ import annotations

import difflib
import signal
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from factflow.cli.common import InputOption, ProcessesOption, WorkersOption, split_input
from factflow.compiler.plan import Plan
from factflow.connectors.cleanup import delete_scoped_queues
from factflow.connectors.file import queue_path
from factflow.dataflows.launch import Launch, stop
from factflow.dataflows.progress import read_counts, read_waiting
from factflow.db.exceptions import DatabaseError
from factflow.flow import load_plan, stage_storage_uri
from factflow.outage import Waiting
from factflow.settings import Settings
from factflow.storage.keys import STAGE_ROOT

REFRESH_SECONDS = 0.5


def _parse_inputs(plan: Plan, values: list[str]) -> dict[str, str]:
    """`QUEUE=FILE` pairs, each QUEUE read by a route: else one line and exit 2, before any
    worker starts (a worker would fail on it with a traceback)."""
    read = sorted({r.inbound_queue for r in plan.routes})
    inputs = {}
    for value in values:
        queue, path = split_input(value)
        if queue not in read:
            close = difflib.get_close_matches(queue, read, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'? " if close else ""
            typer.echo(
                f"error: --input {queue}: no route reads queue '{queue}'; {hint}"
                f"routes read: {', '.join(read)}",
                err=True,
            )
            raise typer.Exit(2)
        inputs[queue] = str(path.resolve())
    return inputs


def counts_table(
    plan: Plan,
    counts: dict[str, int],
    elapsed: float,
    *,
    final: bool,
    waiting: list[Waiting] | None = None,
) -> Table:
    """The live view (and the summary): per route and queue, and under it what the workers
    wait for during an outage."""
    title = f"{plan.pipeline}: {'done' if final else 'running'} in {elapsed:.1f}s"
    caption = "\n".join(w.describe() for w in waiting or []) or None
    table = Table(title=title, caption=caption, caption_style="bold yellow")
    table.add_column("route / queue")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("dead letters", justify="right")
    table.add_column("msg/s", justify="right")
    rate = max(elapsed, 1e-6)
    for route in plan.routes:
        seen = counts.get(f"route:{route.id}:in", 0)
        table.add_row(
            f"route {route.id}",
            str(seen),
            str(counts.get(f"route:{route.id}:out", 0)),
            str(counts.get(f"route:{route.id}:dead", 0)),
            f"{seen / rate:,.0f}",
        )
    queues = sorted(k.removeprefix("queue:") for k in counts if k.startswith("queue:"))
    for queue in queues:
        written = counts[f"queue:{queue}"]
        table.add_row(f"queue {queue}", "", str(written), "", f"{written / rate:,.0f}")
    return table


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_command(
    pipeline: Annotated[
        Path, typer.Argument(metavar="PIPELINE.yaml", help="The pipeline YAML file.")
    ],
    input_files: InputOption = None,
    workers: WorkersOption = 1,
    processes: ProcessesOption = 1,
    execution_id: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Run this execution again: resumes from its recovery."),
    ] = None,
    snapshot_seconds: Annotated[
        int, typer.Option(min=1, metavar="SECONDS", help="Epoch / snapshot interval.")
    ] = 1,
) -> None:
    """Run PIPELINE as Bytewax workers here, showing messages in and out per route."""
    plan = load_plan(pipeline)
    inputs = _parse_inputs(plan, input_files or [])
    settings = Settings()
    execution = execution_id or str(uuid.uuid4())
    run_dir = Path("output/runs") / execution
    launch = Launch(
        pipeline=pipeline.resolve(),
        plan=plan,
        execution_id=execution,
        run_dir=run_dir,
        recovery_dir=settings.recovery_dir / execution,
        workers=workers,
        processes=processes,
        inputs=inputs,
        snapshot_seconds=snapshot_seconds,
    )
    console = Console(stderr=True)
    console.print(f"execution {execution}: {processes} process(es) x {workers} worker(s)")
    started = time.monotonic()
    try:
        procs = launch.start()
    except DatabaseError as exc:  # unreachable, or a recovery archive of another plan
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    # SIGTERM (a supervisor, `kill`) stops the workers like Ctrl-C does, never orphans them
    signal.signal(signal.SIGTERM, _interrupt)
    interrupted = False
    try:
        with Live(console=console, refresh_per_second=4, transient=True) as live:
            while any(p.poll() is None for p in procs):
                counts = read_counts(launch.progress_dir)
                waiting = read_waiting(launch.progress_dir)
                elapsed = time.monotonic() - started
                live.update(counts_table(plan, counts, elapsed, final=False, waiting=waiting))
                time.sleep(REFRESH_SECONDS)
    except KeyboardInterrupt:
        interrupted = True
        console.print("interrupted: stopping workers (run again with --execution-id to resume)")
        stop(procs)
    elapsed = time.monotonic() - started
    Console().print(counts_table(plan, read_counts(launch.progress_dir), elapsed, final=True))
    failed = [i for i, p in enumerate(procs) if p.returncode != 0]
    for index in failed:
        log = launch.log_dir / f"process-{index}.log"
        console.print(f"[red]process {index} exited with {procs[index].returncode}[/]; log: {log}")
        console.print(log.read_text()[-3000:])
    if not failed and not interrupted:
        delete_scoped_queues(plan, execution, plan.queue)
    for line in where_things_went(plan, settings, execution, launch.log_dir):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"resume with --execution-id {execution}", soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


def where_things_went(plan: Plan, settings: Settings, execution: str, log_dir: Path) -> list[str]:
    """The summary's last lines: where the outputs, the stage artefacts and the logs are."""
    # scoped queues are the execution's own hops, consumed by its routes: not outputs
    outputs = [
        _queue_location(plan, sink.queue)
        for sink in plan.sinks
        if sink.queue not in plan.scoped_queues
    ]
    lines = [f"outputs: {', '.join(outputs) or 'none (no route writes a queue outside it)'}"]
    if plan.queue.provider == "file":
        lines[0] += " (file queues are appended to: a second run adds to them)"
    if settings.store_stages:
        uri = stage_storage_uri(plan, settings)
        root = str(Path(uri[7:])) if uri.startswith("file://") else uri.rstrip("/")
        lines.append(f"stage storage: {root}/{STAGE_ROOT}/{execution}/")
    else:
        lines.append("stage storage: off (FACTFLOW_STORE_STAGES=0)")
    lines.append(f"logs: {log_dir}/")
    return lines


def _queue_location(plan: Plan, queue: str) -> str:
    provider = plan.queue.provider
    if provider == "file" and plan.queue.path is not None:
        return str(queue_path(plan.queue.path, queue))
    if provider == "memory":
        return f"{queue} (in memory: gone when the run ends)"
    return f"{queue} on {provider}"

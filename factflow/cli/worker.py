"""`factflow worker serve`: the worker agent of a host (`factflow.server.agents`).

Mounted into the main CLI with `app.add_typer(worker_app, name="worker")`. Settings come
from FACTFLOW_* variables (FACTFLOW_DATABASE_URL, FACTFLOW_AGENT_*), the options win.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

worker_app = typer.Typer(
    name="worker",
    help="Worker agents: run an execution's Bytewax processes on this host.",
    no_args_is_help=True,
)


@worker_app.command("serve")
def serve(
    agent_id: Annotated[
        str | None,
        typer.Option(
            "--id", metavar="ID", help="Agent id (FACTFLOW_AGENT_ID).", show_default=False
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            metavar="HOST",
            help="Address the other hosts reach this one's processes on (FACTFLOW_AGENT_ADDRESS).",
            show_default=False,
        ),
    ] = None,
    first_port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            help="First port of the processes (FACTFLOW_AGENT_FIRST_PORT).",
            show_default=False,
        ),
    ] = None,
    capacity: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Processes at once (FACTFLOW_AGENT_CAPACITY).", show_default=False
        ),
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Run folders and recovery (FACTFLOW_AGENT_DIR).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="Log level.")] = "info",
) -> None:
    """Register this host's agent in Postgres and run the processes placed on it until
    SIGTERM or Ctrl-C (its processes are then stopped)."""
    from factflow.db.settings import DatabaseSettings
    from factflow.flow import prepare_database
    from factflow.logs import configure_logging
    from factflow.server.agents import AgentSettings, WorkerAgent
    from factflow.settings import Settings

    settings = Settings()
    url = DatabaseSettings(database_url=settings.database_url).require_url()
    configure_logging(
        settings.log_format,
        logging.getLevelNamesMapping()[log_level.upper()],
        instance_id=agent_id or settings.agent_id,
    )
    prepare_database(url)
    agent = WorkerAgent(
        AgentSettings(
            agent_id=agent_id or settings.agent_id,
            database_url=url,
            address=address or settings.agent_address,
            first_port=first_port or settings.agent_first_port,
            capacity=capacity or settings.agent_capacity,
            folder=(folder or settings.agent_dir).resolve(),
            stop_grace_seconds=settings.cancel_grace_seconds,
            worker_forkserver=settings.worker_forkserver,
            worker_nice=settings.worker_nice,
        )
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    agent.serve(stop)

"""The root `factflow` typer app; command groups are added here."""

from __future__ import annotations

import typer

from factflow.cli.compile import compile_command
from factflow.cli.config import config_app
from factflow.cli.db import app as db_app
from factflow.cli.recovery import deadletters_app, recovery_app
from factflow.cli.run import run_command
from factflow.cli.worker import worker_app
from factflow.exceptions import ConfigurationError

app = typer.Typer(
    name="factflow",
    help="Declarative message pipelines compiled into Bytewax dataflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help: rich panels print a type beside every option, `<bool>` on flags
    rich_markup_mode=None,
)
app.command("compile")(compile_command)
app.command("run")(run_command)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(recovery_app, name="recovery")
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(worker_app, name="worker")


def main() -> None:
    """The CLI edge: library code raises ConfigurationError, this turns it into exit 1."""
    try:
        app()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


# server commands (serve, execution, lineage, storage, pipeline, system) and the global
# --server / --output / --timeout options
from factflow.cli.client import mount  # noqa: E402

mount(app)

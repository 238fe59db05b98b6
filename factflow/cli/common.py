"""Options and output helpers shared by the CLI's commands."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from factflow.compiler.compile import CompileResult, compile_file
from factflow.compiler.render import render_report


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class Validation(StrEnum):
    strict = "strict"
    warn = "warn"


# Every option shows a metavar as a person types the value; typer's default would print
# the Python type (`<list[str]>`, `<int range>`).
OUTPUT_METAVAR = "|".join(OutputFormat)
InputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input", "-i", metavar="QUEUE=FILE.jsonl",
        help="Read FILE (JSON lines) as the queue QUEUE; repeat for more queues.",
    ),
]  # fmt: skip
WorkersOption = Annotated[
    int, typer.Option("--workers", "-w", min=1, metavar="N", help="Workers per process.")
]
ProcessesOption = Annotated[
    int,
    typer.Option(
        "--processes", "-p", min=1, metavar="N",
        help="Worker processes (a Bytewax cluster on local ports when more than 1).",
    ),
]  # fmt: skip
ValidationOption = Annotated[
    Validation | None,
    typer.Option(
        metavar="strict|warn",
        help="strict (default) or warn: downgrade what can still run to warnings.",
    ),
]


def split_input(value: str) -> tuple[str, Path]:
    """`--input QUEUE=FILE.jsonl` -> (queue, file); a usage error (exit 2) otherwise."""
    queue, sep, file = value.partition("=")
    if not sep or not queue or not file:
        msg = f"--input takes QUEUE=FILE.jsonl, got {value!r}"
        raise typer.BadParameter(msg)
    path = Path(file)
    if not path.is_file():
        msg = f"--input {queue}: no such file {file}"
        raise typer.BadParameter(msg)
    return queue, path


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def strictness(validation: Validation | None) -> bool | None:
    """None lets FACTFLOW_CONFIG_VALIDATOR_STRICT decide."""
    return None if validation is None else validation is Validation.strict


def compile_and_report(path: str, validation: Validation | None) -> CompileResult:
    return compile_file(path, strict=strictness(validation))


def echo_report(result: CompileResult) -> None:
    """Issues (if any) go to stderr so stdout stays the plan."""
    if result.report.issues or not result.report.is_valid:
        typer.echo(render_report(result), err=True)

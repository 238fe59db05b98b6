"""`factflow config ...`: the seed system's config commands (validate works offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factflow.cli.common import (
    OUTPUT_METAVAR,
    OutputFormat,
    ValidationOption,
    compile_and_report,
    echo_report,
    emit_json,
)

config_app = typer.Typer(help="Pipeline configs: validate files; manage stored configs.")


def _pipeline_files(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml"))
    return [target]


@config_app.command("validate")
def validate_command(
    target: Annotated[
        Path,
        typer.Argument(metavar="FILE|DIR", help="A pipeline YAML file or a folder of them."),
    ],
    output: Annotated[
        OutputFormat,
        typer.Option("--output", "-o", metavar=OUTPUT_METAVAR, help="The report as text or json."),
    ] = OutputFormat.text,
    validation: ValidationOption = None,
) -> None:
    """Check pipeline YAML. Exit 0 when every file is valid, 1 otherwise."""
    files = _pipeline_files(target)
    if not files:
        typer.echo(f"error: no .yaml or .yml files in {target}", err=True)
        raise typer.Exit(1)
    results = [compile_and_report(str(f), validation) for f in files]
    valid = all(r.report.is_valid for r in results)
    if output is OutputFormat.json:
        if target.is_dir():
            emit_json(
                {
                    "is_valid": valid,
                    "files": [{"file": r.loaded.file, **r.report.to_dict()} for r in results],
                }
            )
        else:
            emit_json(results[0].report.to_dict())
    else:
        for result in results:
            echo_report(result)
            if result.report.is_valid:
                counts = (
                    f" ({len(result.report.warnings)} warning(s))" if result.report.warnings else ""
                )
                typer.echo(f"{result.loaded.file}: valid{counts}")
    raise typer.Exit(0 if valid else 1)

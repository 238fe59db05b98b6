"""`factflow compile PIPELINE.yaml`: validate and print the plan."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from factflow.cli.common import ValidationOption, compile_and_report, echo_report, emit_json
from factflow.compiler.render import render_mermaid, render_plan


class PlanOutput(StrEnum):
    text = "text"
    json = "json"
    mermaid = "mermaid"


def compile_command(
    pipeline: Annotated[
        str, typer.Argument(metavar="PIPELINE.yaml", help="The pipeline YAML file.")
    ],
    output: Annotated[
        PlanOutput,
        typer.Option(
            "--output",
            "-o",
            metavar="|".join(PlanOutput),
            help="The plan as text, json (with the report) or a mermaid flowchart.",
        ),
    ] = PlanOutput.text,
    validation: ValidationOption = None,
) -> None:
    """Validate PIPELINE and print its plan. Exit 0 valid, 1 invalid or unreadable."""
    result = compile_and_report(pipeline, validation)
    if output is PlanOutput.json:
        emit_json(
            {**result.report.to_dict(), "plan": result.plan.to_dict() if result.plan else None}
        )
    else:
        echo_report(result)
        if result.plan is not None:
            typer.echo(
                render_mermaid(result.plan)
                if output is PlanOutput.mermaid
                else render_plan(result.plan)
            )
    raise typer.Exit(0 if result.report.is_valid else 1)

"""`factflow compile PIPELINE.yaml`: validate and print the plan."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from factflow.cli.common import ValidationOption, compile_and_report, echo_report, emit_json
from factflow.compiler.plan import Plan
from factflow.compiler.plan_codec import read_plan
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
    """Validate PIPELINE and print its plan. Exit 0 valid, 1 invalid or unreadable.

    PIPELINE may also be an execution's compiled `plan.json` (in its run folder,
    `output/runs/<id>/` or the server's `<data_dir>/runs/<id>/`): the effective plan it
    runs, with the server's provider, queue folder and storage in.
    """
    if pipeline.endswith(".json"):
        _print_plan(read_plan(Path(pipeline)), output)
        raise typer.Exit(0)
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


def _print_plan(plan: Plan, output: PlanOutput) -> None:
    if output is PlanOutput.json:
        emit_json({"plan": plan.to_dict()})
    else:
        typer.echo(render_mermaid(plan) if output is PlanOutput.mermaid else render_plan(plan))

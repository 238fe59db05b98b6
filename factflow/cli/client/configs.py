"""`factflow config create|list|get|edit|run|delete` against the server (validate is local)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from factflow.cli.client.http import ConfigArg, OutputOption, call, emit, wants_json
from factflow.cli.common import InputOption, ProcessesOption, WorkersOption, split_input
from factflow.cli.config import config_app

FileOption = Annotated[
    str, typer.Option("--file", "-f", metavar="FILE", help="Pipeline YAML file; - for stdin.")
]
CONFIG_COLUMNS = ("id", "name", "version", "is_runnable", "source_type", "updated_at")


def _read(file: str) -> tuple[str, str | None]:
    if file == "-":
        return sys.stdin.read(), None
    path = Path(file)
    if not path.is_file():
        msg = f"no such file: {file}"
        raise typer.BadParameter(msg)
    return path.read_text(), str(path)


def _name(text: str, path: str | None) -> str:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"]:
        return str(data["name"])
    return Path(path).stem if path else "pipeline"


def parse_inputs(values: list[str] | None) -> dict[str, list[Any]]:
    """`QUEUE=FILE.jsonl` -> `{queue: [record, ...]}` for the request body."""
    import json

    inputs: dict[str, list[Any]] = {}
    for value in values or []:
        queue, path = split_input(value)
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        inputs.setdefault(queue, []).extend(json.loads(line) for line in lines)
    return inputs


def _show_config(config: dict[str, Any], output: Any) -> None:
    if wants_json(output):
        emit(config, output)
        return
    report = config.get("validation_report") or {}
    emit({k: v for k, v in config.items() if k not in ("config_yaml", "validation_report")}, output)
    for issue in report.get("issues", []):
        typer.echo(f"  {issue['severity']} {issue['code']} at {issue['path']}: {issue['message']}")
    if config.get("config_yaml"):
        typer.echo("---")
        typer.echo(config["config_yaml"].rstrip())


@config_app.command("create")
def create(
    file: FileOption,
    name: Annotated[
        str | None, typer.Option(metavar="NAME", help="Config name (default: the YAML's name).")
    ] = None,
    description: Annotated[
        str | None, typer.Option(metavar="TEXT", help="What the config is for.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Store a pipeline config on the server; prints the record with its id."""
    text, path = _read(file)
    body = {
        "name": name or _name(text, path),
        "config_yaml": text,
        "description": description,
        "source_type": "file" if path else "api",
        "source_path": path,
    }
    _show_config(call("POST", "/configs", json=body), output)


@config_app.command("list")
def list_configs(
    active: Annotated[
        bool, typer.Option("--active/--inactive", help="Active or old versions.")
    ] = True,
    output: OutputOption = None,
) -> None:
    """Stored configs."""
    emit(call("GET", "/configs", params={"active": active}), output, CONFIG_COLUMNS)


@config_app.command("get")
def get(config_id: ConfigArg, output: OutputOption = None) -> None:
    """A config: its YAML, version, source and hash, and a fresh validation report."""
    _show_config(call("GET", f"/configs/{config_id}"), output)


@config_app.command("edit")
def edit(config_id: ConfigArg, file: FileOption, output: OutputOption = None) -> None:
    """Replace the YAML: a new version."""
    text, path = _read(file)
    body = {"config_yaml": text, "source_path": path}
    _show_config(call("PUT", f"/configs/{config_id}", json=body), output)


@config_app.command("run")
def run(
    config_id: ConfigArg,
    input_files: InputOption = None,
    workers: WorkersOption = 1,
    processes: ProcessesOption = 1,
    output: OutputOption = None,
) -> None:
    """Start an execution of the config; prints `{"execution_id", "status"}`."""
    body = {"inputs": parse_inputs(input_files), "workers": workers, "processes": processes}
    started = call("POST", f"/configs/{config_id}/run", json=body)
    emit(started, output, ("execution_id", "status", "pipeline_name", "started_at"))


@config_app.command("delete")
def delete(config_id: ConfigArg, output: OutputOption = None) -> None:
    """Delete a config (every version); executions keep their snapshot."""
    call("DELETE", f"/configs/{config_id}")
    if wants_json(output):
        emit({"config_id": config_id, "deleted": True}, output)
    else:
        typer.echo(f"deleted config {config_id}")

"""`factflow storage list|browse|get|metadata|download|watch|prune`."""

from __future__ import annotations

import io
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from factflow.cli.client.http import (
    STATE,
    ExecutionArg,
    ExecutionOption,
    KeyArg,
    OutputOption,
    call,
    emit,
    fail,
    output_format,
    parse_duration,
    request,
    stream_events,
    wants_json,
)
from factflow.cli.common import OUTPUT_METAVAR, OutputFormat

storage_app = typer.Typer(help="Stage artefacts in storage.", no_args_is_help=True)


@storage_app.command("list")
def list_objects(
    execution: ExecutionOption = None,
    prefix: Annotated[
        str, typer.Option(metavar="PREFIX", help="Key prefix (after the execution's folder).")
    ] = "",
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most N objects.")] = 1000,
    output: OutputOption = None,
) -> None:
    """Stored objects: key, size, last modified."""
    params: dict[str, Any] = {"prefix": prefix, "limit": limit}
    if execution:
        params["execution_id"] = execution
    data = call("GET", "/storage/objects", params=params)
    emit(data if wants_json(output) else data["objects"], output, ("key", "size", "last_modified"))


@storage_app.command("browse")
def browse(
    prefix: Annotated[
        str, typer.Argument(metavar="PREFIX", help="Key prefix, e.g. executions/ID/.")
    ] = "",
    output: OutputOption = None,
) -> None:
    """Objects under PREFIX grouped by their next key segment."""
    data = call("GET", "/storage/objects", params={"prefix": prefix, "limit": 100_000})
    groups: Counter[str] = Counter()
    for obj in data["objects"]:
        rest = obj["key"][len(prefix) :]
        head, sep, _ = rest.partition("/")
        groups[head + sep] += 1
    emit([{"prefix": prefix + k, "objects": v} for k, v in sorted(groups.items())], output)


@storage_app.command("get")
def get(
    key: KeyArg,
    output: Annotated[
        OutputFormat | None,
        typer.Option(
            "--output",
            "-o",
            metavar=OUTPUT_METAVAR,
            help='json: the content inside {"key", "content"}; otherwise the bytes, '
            "also when piped.",
        ),
    ] = None,
) -> None:
    """The object's bytes on stdout (redirect binary content to a file); --output json wraps
    them in {"key", "content"}."""
    content = request("GET", f"/storage/objects/{key}").content
    # the bytes themselves are what a pipe or a file wants here, so JSON only when asked
    if output_format(output, piped=OutputFormat.text) is OutputFormat.json:
        emit({"key": key, "content": content.decode("utf-8", errors="replace")}, output)
    else:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()


@storage_app.command("metadata")
def metadata(key: KeyArg, output: OutputOption = None) -> None:
    """The object's sidecar metadata (execution, route, stage, message, source URL)."""
    data = call("GET", f"/storage/objects/{key}/metadata")
    emit(data if wants_json(output) else data["metadata"], output)


@storage_app.command("download")
def download(
    execution_id: ExecutionArg,
    output_dir: Annotated[
        Path, typer.Option("--output-dir", metavar="DIR", help="Where to unpack.")
    ] = Path(),
    output: OutputOption = None,
) -> None:
    """Every artefact of the execution, through an archive job, unpacked into a folder."""
    job = call("POST", "/content/archive/prepare", json={"execution_id": execution_id})
    deadline = time.monotonic() + (STATE.timeout or 600)
    while job["status"] not in ("completed", "failed"):
        if time.monotonic() > deadline:
            fail("timed out waiting for the archive (--timeout)", 2)
        time.sleep(0.5)
        job = call("GET", f"/content/archive/{job['job_id']}/status")
    if job["status"] == "failed":
        fail(f"archive job failed: {job['error']}")
    content = request("GET", f"/content/archive/{job['job_id']}/download").content
    output_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        archive.extractall(output_dir)
    if wants_json(output):
        emit(
            {
                "execution_id": execution_id,
                "object_count": job["object_count"],
                "output_dir": str(output_dir),
            },
            output,
        )
    else:
        typer.echo(f"{job['object_count']} object(s) from execution {execution_id} in {output_dir}")


@storage_app.command("watch")
def watch(
    execution: Annotated[
        str, typer.Option("--execution", "-e", metavar="EXECUTION_ID", help="The execution.")
    ],
    route: Annotated[
        str | None, typer.Option("--route", metavar="ROUTE_ID", help="Only this route's objects.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Print each stored object as it appears; exit 0 when the execution completed."""
    deadline = None if STATE.timeout is None else time.monotonic() + STATE.timeout
    path = f"/executions/{execution}/storage-stream" + (f"?route_id={route}" if route else "")
    for event in stream_events(path, deadline=deadline):
        if event.event != "storage.object_created":
            continue
        if wants_json(output):
            typer.echo(event.data)
        else:
            data = event.json()
            typer.echo(f"{data['key']} ({data['size']} bytes)")
    status = call("GET", f"/executions/{execution}").get("status")
    typer.secho(f"execution {execution} {status}", err=True)
    raise typer.Exit(0 if status == "completed" else 1)


@storage_app.command("prune")
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", metavar="AGE", help="Executions that finished AGE ago (30d, 12h)."
        ),
    ] = None,
    execution: Annotated[
        list[str] | None,
        typer.Option("--execution", "-e", metavar="EXECUTION_ID", help="This one (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted, delete nothing.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Delete the stored stages of finished executions (admin); what a live execution, a
    replay or a restart still needs is kept, and a named one that is needed refuses all."""
    if older_than is None and not execution:
        fail("say what to prune: --older-than AGE, --execution ID, or both", 2)
    body: dict[str, Any] = {"execution_ids": execution or [], "dry_run": dry_run}
    if older_than is not None:
        body["older_than_seconds"] = parse_duration(older_than)
    data = call("POST", "/storage/prune", json=body)
    if wants_json(output):
        emit(data, output)
        return
    verb = "would delete" if data["dry_run"] else "deleted"
    typer.echo(
        f"{verb} {data['objects']} object(s), {data['bytes']} bytes, "
        f"of {data['executions']} execution(s)"
    )
    if data["pruned"]:
        emit(data["pruned"], output, ("execution_id", "status", "completed_at", "objects", "bytes"))
    for kept in data["kept"]:
        typer.echo(f"kept {kept['execution_id']}: {kept['reason']}")

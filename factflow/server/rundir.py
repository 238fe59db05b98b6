"""An execution's run folder: the plan as run, its inline inputs, queues and logs.

<data_dir>/runs/<execution-id>/
    plan.json            the compiled plan the workers run (file queues moved here)
    inputs/<queue>.jsonl inline inputs from `POST /executions`
    inputs.json          {queue: file} the workers read (a resume reads the same)
    restart/             a restart from lineage and storage: emptied inputs, and
                         entries/<route>.jsonl (entries.json: {route: file})
    queues/              the `file` provider's queues, one folder per execution
    logs/process-N.log   worker output
    progress/*.json      worker counters
    drain/*.json         drain-detection counters (completion when every route drains)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from factflow.providers.file import queue_file_name


def write_inputs(
    run_dir: Path, inputs: Mapping[str, Sequence[Any]], folder: str = "inputs"
) -> dict[str, str]:
    """Each queue's (or route's) items as a JSONL file in `run_dir/folder`; returns
    `{name: absolute file}` for Launch.

    An item is written as given: an envelope `{"payload": ..., "metadata": ...}` or a bare
    payload.
    """
    directory = run_dir / folder
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for queue, items in inputs.items():
        path = directory / queue_file_name(queue)
        path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
        files[queue] = str(path.resolve())
    return files


def input_files(run_dir: Path, index: str = "inputs.json") -> dict[str, str]:
    """The inputs (or, `entries.json`, the entries) a run was started with, read back
    for a resume."""
    meta = run_dir / index
    if not meta.is_file():
        return {}
    data: dict[str, str] = json.loads(meta.read_text())
    return data


def save_input_index(run_dir: Path, files: Mapping[str, str], index: str = "inputs.json") -> None:
    (run_dir / index).write_text(json.dumps(dict(files)))


def worker_logs(run_dir: Path, limit: int) -> dict[str, str]:
    """`process-N.log` -> its last `limit` characters, for each worker log in `run_dir`."""
    logs = {}
    for log in sorted((run_dir / "logs").glob("process-*.log")):
        logs[log.name] = log.read_text(errors="replace").strip()[-limit:]
    return logs


def log_tail(run_dir: Path, limit: int = 2000) -> str:
    """The last `limit` characters of each worker log, for an execution's error."""
    return "\n".join(
        f"--- {name}\n{text}" for name, text in worker_logs(run_dir, limit).items() if text
    )

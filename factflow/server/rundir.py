"""An execution's run folder: the plan as run, its inline inputs, queues and logs.

<data_dir>/runs/<execution-id>/
    plan.json            the compiled plan the workers run (file queues moved here)
    inputs/<queue>.jsonl inline inputs from `POST /executions`
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


def write_inputs(run_dir: Path, inputs: Mapping[str, Sequence[Any]]) -> dict[str, str]:
    """Each queue's payloads as a JSONL file; returns `{queue: absolute file}` for Launch.

    An item is written as given: an envelope `{"payload": ..., "metadata": ...}` or a bare
    payload.
    """
    folder = run_dir / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for queue, items in inputs.items():
        path = folder / queue_file_name(queue)
        path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
        files[queue] = str(path.resolve())
    return files


def input_files(run_dir: Path) -> dict[str, str]:
    """The inputs a run was started with, read back for a resume (queue from the file)."""
    meta = run_dir / "inputs.json"
    if not meta.is_file():
        return {}
    data: dict[str, str] = json.loads(meta.read_text())
    return data


def save_input_index(run_dir: Path, files: Mapping[str, str]) -> None:
    (run_dir / "inputs.json").write_text(json.dumps(dict(files)))


def log_tail(run_dir: Path, limit: int = 2000) -> str:
    """The last `limit` characters of each worker log, for an execution's error."""
    parts = []
    for log in sorted((run_dir / "logs").glob("process-*.log")):
        text = log.read_text(errors="replace").strip()
        if text:
            parts.append(f"--- {log.name}\n{text[-limit:]}")
    return "\n".join(parts)

"""An execution's run folder: the pipeline as run, its inline inputs, queues and logs.

<data_dir>/runs/<execution-id>/
    pipeline.yaml        the snapshot the workers compile (file queues moved here)
    inputs/<queue>.jsonl inline inputs from `POST /executions`
    queues/              the `file` provider's queues, one folder per execution
    logs/process-N.log   worker output
    progress/*.json      worker counters
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from factflow.compiler.naming import queue_file_name


def effective_yaml(
    config_yaml: str,
    run_dir: Path,
    *,
    default_provider: str | None = None,
    storage_uri: str | None = None,
) -> str:
    """The YAML the workers run, with the server's placement of relative paths.

    - a relative `file` queue path becomes the run's own folder: two executions of one
      pipeline must not share file queues;
    - a relative `file://` storage URI becomes the server's `storage_uri`, so the storage
      API sees the artefacts (absolute paths and S3 stay as written);
    - a pipeline without a `queue:` section gets `default_provider` when one is set.
    """
    data = yaml.safe_load(config_yaml)
    if not isinstance(data, dict):
        return config_yaml
    changed = False
    queue = data.get("queue")
    if queue is None and default_provider:
        data["queue"] = {"provider": default_provider}
        changed = True
    elif isinstance(queue, dict) and queue.get("provider") == "file":
        path = queue.get("path")
        if path is None or not Path(str(path)).is_absolute():
            queue["path"] = str((run_dir / "queues").resolve())
            changed = True
    storage = data.get("storage")
    if storage_uri and isinstance(storage, dict) and relative_file_uri(storage.get("uri")):
        storage["uri"] = storage_uri
        changed = True
    if not changed:
        return config_yaml
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def relative_file_uri(uri: object) -> bool:
    if not isinstance(uri, str) or not uri.startswith("file://"):
        return False
    return not Path(uri.removeprefix("file://")).is_absolute()


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

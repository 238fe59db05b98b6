"""What a launcher changes in a pipeline before it is compiled for one execution.

The server runs a config with its own placement: a default queue provider for pipelines
that name none, a per-execution folder for relative `file` queues (two executions of one
pipeline must not share file queues), and its storage for relative `file://` storage
(so the storage API sees the artefacts). They are applied to the YAML's data before
validation, so the plan that is validated is the plan that runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Overrides:
    default_provider: str | None = None
    """The queue provider of a pipeline without a `queue:` section."""
    file_queue_dir: Path | None = None
    """Where a `file` provider with a relative (or no) `path` keeps its queues."""
    storage_uri: str | None = None
    """Replaces a relative `file://` storage URI (absolute paths and S3 stay)."""

    def apply(self, data: Any) -> Any:
        """A copy of the pipeline's data with the overrides in; `data` is not changed."""
        if not isinstance(data, dict):
            return data
        data = copy.deepcopy(data)
        queue = data.get("queue")
        if queue is None and self.default_provider:
            data["queue"] = {"provider": self.default_provider}
        elif isinstance(queue, dict) and queue.get("provider") == "file" and self.file_queue_dir:
            path = queue.get("path")
            if path is None or not Path(str(path)).is_absolute():
                queue["path"] = str(self.file_queue_dir.resolve())
        storage = data.get("storage")
        if self.storage_uri and isinstance(storage, dict) and relative_file_uri(storage.get("uri")):
            storage["uri"] = self.storage_uri
        return data


def relative_file_uri(uri: object) -> bool:
    if not isinstance(uri, str) or not uri.startswith("file://"):
        return False
    return not Path(uri.removeprefix("file://")).is_absolute()

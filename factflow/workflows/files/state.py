"""What `file_source` saw on its last scan of a folder, so a rerun skips unchanged files.

Stage storage is first-write-wins (a key is never replaced), so the state is a series of
manifests, one per scan, under
`sources/file_source/<state id>/<time ns>-<execution id>.json`; each holds every file of
the scan as `{relative path: {"hash", "mtime_ns", "size"}}`. A scan compares the folder
with the newest manifest that an *earlier* execution wrote: when the same execution scans
again (a replay after a crash, a resume), it compares against the same baseline as its
first attempt, so it emits the same files and the same message ids.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from factflow.storage import StageStorage
from factflow.storage.exceptions import StorageError

STATE_ROOT = "sources/file_source"


@dataclass(frozen=True, slots=True)
class FileFacts:
    """One file as a manifest keeps it: its content hash, mtime (ns) and size."""

    hash: str
    mtime_ns: int
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"hash": self.hash, "mtime_ns": self.mtime_ns, "size": self.size}


Manifest = dict[str, FileFacts]


def state_id(route_id: str, root: str, pattern: str, name: str | None) -> str:
    """The id of a scan's state: `name` when given, else its route, folder and pattern."""
    seed = name if name else f"{route_id}\n{root}\n{pattern}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


class ScanState:
    """The manifests of one state id in one storage."""

    def __init__(self, storage: StageStorage, state: str, execution_id: str) -> None:
        self.storage = storage
        self.prefix = f"{STATE_ROOT}/{state}/"
        self.execution_id = execution_id

    def baseline(self) -> Manifest:
        """The newest manifest written before this execution's first one ({} when none)."""
        keys = [info.key for info in self.storage.list(self.prefix)]
        mine = f"-{self.execution_id}.json"
        first_own = next((i for i, key in enumerate(keys) if key.endswith(mine)), len(keys))
        earlier = [key for key in keys[:first_own] if not key.endswith(mine)]
        if not earlier:
            return {}
        try:
            document = json.loads(self.storage.get(earlier[-1]))
            return {
                path: FileFacts(str(f["hash"]), int(f["mtime_ns"]), int(f["size"]))
                for path, f in document["files"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            msg = f"file_source state {earlier[-1]!r} is not a valid manifest: {exc}"
            raise StorageError(msg) from exc

    def save(self, root: str, files: Manifest) -> str:
        """Store this scan's manifest; its key."""
        key = f"{self.prefix}{time.time_ns():020d}-{self.execution_id}.json"
        document = {
            "root": root,
            "execution_id": self.execution_id,
            "files": {path: facts.to_dict() for path, facts in sorted(files.items())},
        }
        data = json.dumps(document, ensure_ascii=False).encode()
        self.storage.put(key, data, {"execution-id": self.execution_id}, "application/json")
        return key

"""What the supervisor and the execution service need to know: a plain dataclass the app
builds from its settings (`ApiSettings.supervisor()`), so the server layer reads no
environment and knows nothing of HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SupervisorSettings:
    runs_dir: Path
    recovery_dir: Path
    instance_id: str
    database_url: str | None = None
    storage_uri: str = "file://./output/storage"
    max_concurrent_executions: int = 8
    cancel_grace_seconds: float = 10.0
    heartbeat_seconds: float = 2.0
    stale_after_seconds: float = 30.0
    default_queue_provider: str | None = None
    worker_env: dict[str, str] = field(default_factory=dict)

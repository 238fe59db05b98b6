"""What the supervisor and the execution service need to know: a plain dataclass the app
builds from the one settings model (`SupervisorSettings.of(settings)`), so the server layer reads no
environment and knows nothing of HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from factflow.settings import Settings


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
    restart_window_seconds: float = 10.0
    default_queue_provider: str | None = None
    worker_restarts: int = 2
    resume_abandoned: bool = False
    worker_agents: Literal["auto", "off"] = "auto"
    worker_forkserver: bool = True
    worker_nice: int = 0
    worker_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> SupervisorSettings:
        return cls(
            runs_dir=settings.runs_dir,
            recovery_dir=settings.recovery_dir,
            instance_id=settings.instance_id,
            database_url=settings.database_url,
            storage_uri=settings.storage_uri,
            max_concurrent_executions=settings.max_concurrent_executions,
            cancel_grace_seconds=settings.cancel_grace_seconds,
            heartbeat_seconds=settings.heartbeat_seconds,
            stale_after_seconds=settings.stale_after_seconds,
            restart_window_seconds=settings.restart_window_seconds,
            default_queue_provider=settings.default_queue_provider,
            worker_restarts=settings.worker_restarts,
            resume_abandoned=settings.resume_abandoned,
            worker_agents=settings.worker_agents,
            worker_forkserver=settings.worker_forkserver,
            worker_nice=settings.worker_nice,
            # workers read the same settings: a production server's must pass its checks
            worker_env={
                "FACTFLOW_DATA_DIR": str(settings.data_dir.resolve()),
                **settings.worker_env,
            },
        )

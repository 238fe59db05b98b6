"""The server's settings: a pydantic-settings class read from `FACTFLOW_*`, passed in explicitly.

`create_app(ApiSettings(...))` is how tests and `factflow serve` build an app; nothing reads
the environment behind the app's back. Outside development the unsafe defaults (no
database, relative data paths) are refused at construction.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from factflow.db.settings import DatabaseSettings
from factflow.server.settings import SupervisorSettings

_REPO_PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def _instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ApiSettings(BaseSettings):
    """Everything `create_app` needs; every field has a `FACTFLOW_` environment variable."""

    model_config = SettingsConfigDict(env_prefix="FACTFLOW_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = None
    pool_max_size: int = Field(default=10, ge=2)
    storage_uri: str = Field(
        default="file://./output/storage", description="stage storage the storage API reads"
    )
    data_dir: Path = Field(
        default=Path("output/server"),
        description="per-execution run folders (pipeline snapshot, inputs, queues, logs)",
    )
    recovery_dir: Path = Field(default=Path("output/recovery"))
    pipelines_dir: Path | None = Field(
        default=None, description="shipped pipelines served as templates (default ./pipelines)"
    )
    max_concurrent_executions: int = Field(default=8, ge=1)
    cancel_grace_seconds: float = Field(default=10.0, ge=0)
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    stale_after_seconds: float = Field(
        default=30.0, gt=0, description="a running execution without heartbeat is interrupted"
    )
    default_queue_provider: str | None = Field(
        default=None, description="queue provider for pipelines without a `queue:` section"
    )
    worker_env: dict[str, str] = Field(
        default_factory=dict, description="extra environment for worker processes"
    )
    validate_pipelines_on_start: bool = True
    instance_id: str = Field(default_factory=_instance_id)

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Self:
        if self.environment == "production":
            if not self.database_url:
                msg = "FACTFLOW_DATABASE_URL must be set when FACTFLOW_ENVIRONMENT=production"
                raise ValueError(msg)
            if not self.data_dir.is_absolute():
                msg = "FACTFLOW_DATA_DIR must be an absolute path in production"
                raise ValueError(msg)
        return self

    def supervisor(self) -> SupervisorSettings:
        return SupervisorSettings(
            runs_dir=self.runs_dir,
            recovery_dir=self.recovery_dir,
            instance_id=self.instance_id,
            database_url=self.database_url,
            storage_uri=self.storage_uri,
            max_concurrent_executions=self.max_concurrent_executions,
            cancel_grace_seconds=self.cancel_grace_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            stale_after_seconds=self.stale_after_seconds,
            default_queue_provider=self.default_queue_provider,
            worker_env=dict(self.worker_env),
        )

    def database(self) -> DatabaseSettings:
        return DatabaseSettings(database_url=self.database_url, pool_max_size=self.pool_max_size)

    def templates_dir(self) -> Path:
        if self.pipelines_dir is not None:
            return self.pipelines_dir
        local = Path("pipelines")
        return local if local.is_dir() else _REPO_PIPELINES

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def archives_dir(self) -> Path:
        return self.data_dir / "archives"

"""Database settings from the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from factflow.db.exceptions import DatabaseNotConfiguredError

DATABASE_URL_ENV = "FACTFLOW_DATABASE_URL"


class DatabaseSettings(BaseSettings):
    """Where Postgres is and how many connections to keep.

    Read from `FACTFLOW_*` variables; tests and embedders build their own instance.
    """

    model_config = SettingsConfigDict(env_prefix="FACTFLOW_", extra="ignore")

    database_url: str | None = None
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)

    def require_url(self) -> str:
        if not self.database_url:
            msg = (
                f"no database configured: set {DATABASE_URL_ENV}, or run "
                "`factflow db embedded` and export the URL it prints"
            )
            raise DatabaseNotConfiguredError(msg)
        return self.database_url

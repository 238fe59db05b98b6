"""Database settings: a plain view of the one settings model (factflow/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from factflow.db.exceptions import DatabaseNotConfiguredError

if TYPE_CHECKING:
    from factflow.settings import Settings

DATABASE_URL_ENV = "FACTFLOW_DATABASE_URL"


@dataclass(frozen=True)
class DatabaseSettings:
    """Where Postgres is and how many connections to keep: `DatabaseSettings.of(Settings())` (the
    one settings model reads `FACTFLOW_*`), or built directly by tests and embedders."""

    database_url: str | None = None
    pool_min_size: int = 1
    pool_max_size: int = 10
    connect_timeout_seconds: float = 5.0

    @classmethod
    def of(cls, settings: Settings) -> DatabaseSettings:
        return cls(
            database_url=settings.database_url,
            pool_min_size=settings.pool_min_size,
            pool_max_size=settings.pool_max_size,
            connect_timeout_seconds=settings.connect_timeout_seconds,
        )

    def require_url(self) -> str:
        if not self.database_url:
            msg = (
                f"no database configured: set {DATABASE_URL_ENV}, or run "
                "`factflow db embedded` and export the URL it prints"
            )
            raise DatabaseNotConfiguredError(msg)
        return self.database_url

"""Database settings from the environment, and URL masking for messages."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from factflow.db.exceptions import DatabaseNotConfiguredError

DATABASE_URL_ENV = "FACTFLOW_DATABASE_URL"
MASK = "***"


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


_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL or key=value DSN with its password replaced by `***`, safe to print."""
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(rf"\g<1>{MASK}", url)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            user, _, password = userinfo.partition(":")
            userinfo = f"{user}:{MASK}" if password else user
        netloc = f"{userinfo}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            pairs = [(k, MASK if k.lower() == "password" else v) for k, v in pairs]
            # `/` is kept readable because socket directories are paths
            query = urlencode(pairs, safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

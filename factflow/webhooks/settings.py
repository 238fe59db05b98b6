"""The dispatcher's settings: a plain view of the `FACTFLOW_WEBHOOK_*` settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import BaseModel, Field

from factflow.settings import DEFAULT_RETRY_SCHEDULE, Settings


class WebhookSettings(BaseModel):
    """How deliveries are sent and retried."""

    retry_schedule_seconds: tuple[float, ...] = Field(
        default=DEFAULT_RETRY_SCHEDULE,
        description="delays before attempts 2, 3, ...; dead-lettered after len+1 failures",
    )
    timeout_seconds: float = Field(default=10.0, gt=0)
    response_excerpt_bytes: int = Field(default=1024, ge=0)
    max_retry_after_seconds: float = Field(
        default=86400.0, ge=0, description="a longer Retry-After is capped to this"
    )
    allow_private_urls: bool = Field(
        default=False, description="allow loopback and private addresses (embedded: true)"
    )
    concurrency: int = Field(default=32, ge=1, description="attempts in flight per instance")
    per_endpoint_concurrency: int = Field(default=4, ge=1)
    poll_seconds: float = Field(
        default=1.0, gt=0, description="longest wait between claims without a notification"
    )
    secret_grace_seconds: float = Field(
        default=86400.0, ge=0, description="how long a rotated-out secret still signs"
    )

    @classmethod
    def of(cls, settings: Settings) -> Self:
        return cls(
            retry_schedule_seconds=settings.webhook_retry_schedule_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            allow_private_urls=settings.webhook_allow_private_urls,
            concurrency=settings.webhook_concurrency,
            per_endpoint_concurrency=settings.webhook_per_endpoint_concurrency,
        )

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery stays invisible to other dispatchers: longer than
        the attempts queued behind it for the same endpoint can take."""
        return timedelta(seconds=self.timeout_seconds * (self.per_endpoint_concurrency + 1) + 5)

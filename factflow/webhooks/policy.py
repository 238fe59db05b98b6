"""What an attempt's outcome means: retry when, dead-letter when."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

from factflow.webhooks.settings import WebhookSettings

# the seed system's: 5xx, 408, 429 and network errors are retried; other 4xx are final
_RETRIED_4XX = frozenset({408, 429})


def is_retryable(status_code: int | None) -> bool:
    """None stands for a network error or a timeout."""
    return status_code is None or status_code >= 500 or status_code in _RETRIED_4XX


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - (now or datetime.now(UTC)))


def retry_delay(
    settings: WebhookSettings, retry_index: int, retry_after: timedelta | None = None
) -> timedelta | None:
    """The wait before the next attempt after failed attempt `retry_index` (from 1), or
    None when that was the last one (dead-lettered). A `Retry-After` longer than the
    schedule's delay is honoured, up to `max_retry_after_seconds`."""
    schedule = settings.retry_schedule_seconds
    if retry_index > len(schedule):
        return None
    delay = timedelta(seconds=schedule[retry_index - 1])
    if retry_after is not None:
        cap = timedelta(seconds=settings.max_retry_after_seconds)
        delay = max(delay, min(retry_after, cap))
    return delay

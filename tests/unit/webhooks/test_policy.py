"""Which outcomes are retried, after how long, and which URLs are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from factflow.webhooks.exceptions import UrlNotAllowedError
from factflow.webhooks.policy import is_retryable, parse_retry_after, retry_delay
from factflow.webhooks.settings import WebhookSettings
from factflow.webhooks.urls import check_url


@pytest.mark.parametrize(
    ("code", "retried"),
    [(None, True), (500, True), (503, True), (408, True), (429, True), (400, False),
     (404, False), (410, False), (301, False)],
)  # fmt: skip
def test_retryable(code: int | None, retried: bool) -> None:
    assert is_retryable(code) is retried


def test_default_schedule_then_dead() -> None:
    settings = WebhookSettings()
    delays = [retry_delay(settings, i) for i in range(1, 7)]
    assert delays == [
        timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
        timedelta(hours=2), timedelta(hours=12), None,
    ]  # fmt: skip


def test_retry_after_is_honoured_when_longer_and_capped() -> None:
    settings = WebhookSettings(max_retry_after_seconds=600)
    assert retry_delay(settings, 1, timedelta(seconds=10)) == timedelta(minutes=1)
    assert retry_delay(settings, 1, timedelta(seconds=120)) == timedelta(seconds=120)
    assert retry_delay(settings, 1, timedelta(days=3)) == timedelta(seconds=600)


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == timedelta(seconds=120)
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:30 GMT", now=now) == timedelta(seconds=30)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/",
     "http://localhost/x"],
)  # fmt: skip
def test_internal_addresses_refused_by_default(url: str) -> None:
    with pytest.raises(UrlNotAllowedError, match="ALLOW_PRIVATE_URLS"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/x", "http:///x"])
def test_non_http_urls_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowedError, match="http"):
        check_url(url, allow_private=True)


def test_public_address_allowed() -> None:
    check_url("https://93.184.215.14/hook", allow_private=False)

"""The AIMD token bucket, on a clock the test moves by hand (no sleeping)."""

from __future__ import annotations

from email.utils import formatdate

from factflow.workflows.webscraper.http import retry_after_seconds
from factflow.workflows.webscraper.ratelimit import DomainRateLimiter, RateSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_spaces_requests() -> None:
    clock = Clock()
    limiter = DomainRateLimiter(RateSettings(initial_rate=2, burst=2), clock)
    assert [limiter.try_acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.try_acquire("a") == 0.5
    clock.now += 0.5
    assert limiter.try_acquire("a") == 0.0
    assert limiter.try_acquire("b") == 0.0  # domains are independent


def test_success_climbs_additively_and_throttling_halves_down_to_the_floor() -> None:
    limiter = DomainRateLimiter(RateSettings(initial_rate=4, increase=1, max_rate=6, min_rate=1))
    for _ in range(5):
        limiter.on_success("a")
    assert limiter.rate("a") == 6
    limiter.on_throttled("a", None)
    assert limiter.rate("a") == 3
    for _ in range(5):
        limiter.on_throttled("a", None)
    assert limiter.rate("a") == 1


def test_retry_after_blocks_the_domain_capped() -> None:
    clock = Clock()
    limiter = DomainRateLimiter(RateSettings(max_block_seconds=10), clock)
    limiter.on_throttled("a", 3)
    assert limiter.try_acquire("a") == 3
    clock.now += 3
    assert limiter.try_acquire("a") > 0  # the bucket was emptied: wait for a token
    limiter.on_throttled("b", 3600)
    assert limiter.try_acquire("b") == 10


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    date = formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds(date, now=1_000_000) == 30.0

"""The seed system's adaptive per-domain rate limit: a token bucket per domain whose rate
probes the site's capacity by AIMD (scrapy's AutoThrottle in spirit).

Each success adds `increase` requests/s (up to `max_rate`); a 429 or 503 multiplies the
rate by `decrease` (down to `min_rate`) and, with a Retry-After, blocks the domain until
then. One limiter is shared by every adapter instance of a process with the same settings,
so a site sees one polite client however many worker threads there are.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateSettings:
    initial_rate: float = 4.0
    min_rate: float = 0.5
    max_rate: float = 50.0
    increase: float = 0.5
    decrease: float = 0.5
    burst: float = 4.0
    max_block_seconds: float = 120.0


@dataclass
class _Bucket:
    rate: float
    tokens: float
    updated: float
    blocked_until: float = 0.0


class DomainRateLimiter:
    """Token buckets per domain; thread-safe (the bookkeeping holds a lock, never a wait)."""

    def __init__(self, settings: RateSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, domain: str, now: float) -> _Bucket:
        bucket = self._buckets.get(domain)
        if bucket is None:
            s = self.settings
            bucket = _Bucket(rate=s.initial_rate, tokens=min(s.burst, s.initial_rate), updated=now)
            self._buckets[domain] = bucket
        return bucket

    def rate(self, domain: str) -> float:
        with self._lock:
            return self._bucket(domain, self._clock()).rate

    def try_acquire(self, domain: str) -> float:
        """Take a token and return 0, or return the seconds to wait before trying again."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(domain, now)
            if now < bucket.blocked_until:
                return bucket.blocked_until - now
            burst = max(1.0, self.settings.burst)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * bucket.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / bucket.rate

    async def acquire(self, domain: str) -> None:
        while (wait := self.try_acquire(domain)) > 0:
            await asyncio.sleep(wait)

    def on_success(self, domain: str) -> None:
        with self._lock:
            bucket = self._bucket(domain, self._clock())
            bucket.rate = min(self.settings.max_rate, bucket.rate + self.settings.increase)

    def on_throttled(self, domain: str, retry_after: float | None) -> None:
        """A 429 / 503: halve the rate, empty the bucket, honour Retry-After (capped)."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(domain, now)
            bucket.rate = max(self.settings.min_rate, bucket.rate * self.settings.decrease)
            bucket.tokens = 0.0
            bucket.updated = now
            if retry_after is not None:
                wait = min(retry_after, self.settings.max_block_seconds)
                bucket.blocked_until = max(bucket.blocked_until, now + wait)
                # no tokens accrue while blocked: the first request after it waits a turn
                bucket.updated = bucket.blocked_until


_shared: dict[RateSettings, DomainRateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(settings: RateSettings) -> DomainRateLimiter:
    """The process's limiter for these settings."""
    with _shared_lock:
        limiter = _shared.get(settings)
        if limiter is None:
            limiter = _shared[settings] = DomainRateLimiter(settings)
        return limiter

"""The AIMD limiter: its bound holds, and its limit follows successes and 429s."""

from __future__ import annotations

import asyncio

import pytest

from factflow.llm import AdaptiveLimiter


def test_defaults_are_the_seed_systems() -> None:
    limiter = AdaptiveLimiter()
    assert (limiter.limit, limiter.max_concurrency, limiter.floor) == (50, 50, 5)


def test_additive_increase_multiplicative_decrease_with_floor_and_ceiling() -> None:
    limiter = AdaptiveLimiter()
    limiter.on_success()
    assert limiter.limit == 50  # capped at max_concurrency
    seen = []
    for _ in range(5):
        limiter.on_rate_limited()
        seen.append(limiter.limit)
    assert seen == [25, 12, 6, 5, 5]
    limiter.on_success()
    assert limiter.limit == 6


def test_no_more_than_limit_calls_in_flight() -> None:
    limiter = AdaptiveLimiter(max_concurrency=3, floor=1)
    peak = 0

    async def call() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.01)

    async def run() -> None:
        await asyncio.gather(*(call() for _ in range(12)))

    asyncio.run(run())
    assert peak == 3
    assert limiter.in_flight == 0


def test_a_lowered_limit_makes_new_calls_wait() -> None:
    limiter = AdaptiveLimiter(max_concurrency=4, floor=1)
    peaks: list[int] = []

    async def call(index: int) -> None:
        async with limiter.slot():
            if index == 0:
                limiter.on_rate_limited()  # 4 -> 2 while four are in flight
            await asyncio.sleep(0.01)
            peaks.append(limiter.in_flight)

    async def run() -> None:
        await asyncio.gather(*(call(i) for i in range(4)))
        await asyncio.gather(*(call(i + 1) for i in range(6)))

    asyncio.run(run())
    assert max(peaks[4:]) <= 2


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        AdaptiveLimiter(max_concurrency=4, floor=5)
    with pytest.raises(ValueError, match="floor"):
        AdaptiveLimiter(max_concurrency=4, floor=0)

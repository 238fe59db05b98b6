"""RetryPolicy.delay: fixed, exponential, capped."""

from __future__ import annotations

import pytest

from factflow.compiler.plan import RetryPolicy


def _policy(backoff: str, delay: float = 0.5, cap: float = 3.0) -> RetryPolicy:
    return RetryPolicy(
        max_retries=10,
        retry_delay_seconds=delay,
        backoff=backoff,
        max_retry_delay_seconds=cap,
        circuit_breaker_threshold=5,
        circuit_breaker_reset_seconds=30,
    )


@pytest.mark.parametrize("attempt", [1, 2, 5, 10])
def test_fixed_is_constant(attempt: int) -> None:
    assert _policy("fixed").delay(attempt) == 0.5


def test_exponential_doubles_from_the_base_delay() -> None:
    policy = _policy("exponential")
    assert [policy.delay(a) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_exponential_is_capped() -> None:
    policy = _policy("exponential")
    assert policy.delay(4) == 3.0
    assert policy.delay(60) == 3.0


def test_zero_delay_stays_zero() -> None:
    assert _policy("exponential", delay=0).delay(7) == 0

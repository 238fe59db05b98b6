"""RetryPolicy.delay: fixed, exponential, capped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


@given(
    base=st.floats(min_value=0, max_value=100, allow_nan=False),
    cap=st.floats(min_value=0, max_value=1000, allow_nan=False),
    attempt=st.integers(min_value=1, max_value=40),
)
def test_exponential_is_the_doubled_base_or_the_cap_whichever_is_smaller(
    base: float, cap: float, attempt: int
) -> None:
    policy = _policy("exponential", delay=base, cap=cap)
    delay = policy.delay(attempt)
    assert delay == min(base * 2 ** (attempt - 1), cap)
    assert delay <= cap
    assert policy.delay(attempt + 1) >= delay  # never shrinks
    assert policy.delay(1) == min(base, cap)  # the first retry waits the base delay


@given(
    base=st.floats(min_value=0, max_value=100, allow_nan=False),
    attempt=st.integers(min_value=1, max_value=40),
)
def test_fixed_waits_the_base_delay_before_every_retry(base: float, attempt: int) -> None:
    assert _policy("fixed", delay=base, cap=1000).delay(attempt) == base

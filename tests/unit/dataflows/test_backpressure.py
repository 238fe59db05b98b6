"""ConcurrencyController: AIMD between the route's min and max."""

from __future__ import annotations

from factflow.compiler.plan import ConcurrencyPolicy
from factflow.dataflows.backpressure import ConcurrencyController


def _controller(initial: int = 8, minimum: int = 2, maximum: int = 16) -> ConcurrencyController:
    return ConcurrencyController(
        ConcurrencyPolicy(initial=initial, minimum=minimum, maximum=maximum, target_latency_ms=100)
    )


def test_starts_at_the_initial_concurrency() -> None:
    assert _controller().limit == 8


def test_latency_over_target_decreases() -> None:
    controller = _controller()
    controller.observe(500, failed=False)
    assert controller.limit == 4


def test_failure_decreases_even_when_fast() -> None:
    controller = _controller()
    controller.observe(1, failed=True)
    assert controller.limit == 4


def test_fast_successes_increase() -> None:
    controller = _controller()
    for _ in range(40):
        controller.observe(10, failed=False)
    assert controller.limit > 8


def test_never_above_max() -> None:
    controller = _controller()
    for _ in range(10_000):
        controller.observe(1, failed=False)
    assert controller.limit == 16


def test_never_below_min() -> None:
    controller = _controller()
    for _ in range(50):
        controller.observe(10_000, failed=True)
    assert controller.limit == 2


def test_recovers_after_a_slow_spell() -> None:
    controller = _controller()
    for _ in range(10):
        controller.observe(1_000, failed=False)
    low = controller.limit
    assert low == 2
    for _ in range(200):
        controller.observe(1, failed=False)
    assert controller.limit > low


def test_latency_is_smoothed() -> None:
    controller = _controller()
    controller.observe(50, failed=False)
    controller.observe(1_000, failed=False)
    # one slow call moves the average only part of the way
    assert controller.latency_ms is not None
    assert 50 < controller.latency_ms < 1_000

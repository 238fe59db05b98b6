"""CircuitBreaker with a fake clock: closed -> open -> half-open -> closed / open again."""

from __future__ import annotations

import threading

import pytest

from factflow.dataflows.circuit import CircuitBreaker, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, reset_seconds=10, clock=clock)


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.threshold):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is CircuitState.open


def test_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.closed
    assert breaker.allow()


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    _open(breaker)
    assert not breaker.allow()


def test_a_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.closed


def test_refuses_while_open_until_the_reset_time(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _open(breaker)
    clock.now += 9.99
    assert not breaker.allow()
    assert breaker.state is CircuitState.open
    clock.now += 0.01
    assert breaker.state is CircuitState.half_open


def test_half_open_lets_exactly_one_trial_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _open(breaker)
    clock.now += 10
    assert breaker.allow()
    assert not breaker.allow()
    assert not breaker.allow()
    assert breaker.state is CircuitState.half_open


def test_trial_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _open(breaker)
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.closed
    assert all(breaker.allow() for _ in range(5))
    # the count starts over: one failure does not reopen it
    breaker.record_failure()
    assert breaker.state is CircuitState.closed


def test_trial_failure_reopens_for_a_full_reset_period(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _open(breaker)
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.open
    assert not breaker.allow()
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    assert breaker.state is CircuitState.half_open


def test_threshold_one_opens_on_the_first_failure(clock: FakeClock) -> None:
    breaker = CircuitBreaker(threshold=1, reset_seconds=1, clock=clock)
    breaker.record_failure()
    assert not breaker.allow()


class ClosingLock:
    """A lock under which, as it is taken, another thread has just closed the breaker:
    the interleaving of a trial's success with a concurrent `allow`."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker, self.inner = breaker, threading.Lock()

    def __enter__(self) -> None:
        self.inner.acquire()
        self.breaker._state = CircuitState.closed

    def __exit__(self, *_: object) -> None:
        self.inner.release()


def test_a_circuit_closed_while_waiting_for_the_lock_lets_the_call_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _open(breaker)
    breaker._lock = ClosingLock(breaker)  # type: ignore[assignment]
    assert breaker.allow()


def test_a_closed_breaker_lets_calls_through_without_waiting_for_its_lock(
    breaker: CircuitBreaker,
) -> None:
    """Every message of every worker thread asks the breaker: while it is closed and has
    seen no failure, neither `allow` nor `record_success` may queue behind the lock that
    another thread's failure holds."""
    outcomes: list[bool] = []

    def calls() -> None:
        outcomes.append(breaker.allow())
        breaker.record_success()
        outcomes.append(True)

    with breaker._lock:  # another thread in the middle of record_failure
        caller = threading.Thread(target=calls, daemon=True)
        caller.start()
        caller.join(timeout=5)
        blocked = caller.is_alive()
    caller.join()
    assert not blocked
    assert outcomes == [True, True]

"""A circuit breaker per adapter: fail fast while a dependency is down.

Closed: calls go through; `threshold` consecutive failures open it. Open: calls are
refused (messages dead-letter with reason `circuit_open`, redrivable) until
`reset_seconds` have passed. Half-open: one trial call; success closes, failure reopens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitOpenError(Exception):
    """Raised instead of calling an adapter whose circuit is open."""


class CircuitBreaker:
    def __init__(
        self,
        threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = CircuitState.closed
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> CircuitState:
        with self._lock:
            self._advance()
            return self._state

    def _advance(self) -> None:
        if (
            self._state is CircuitState.open
            and self._clock() - self._opened_at >= self.reset_seconds
        ):
            self._state = CircuitState.half_open
            self._trial_running = False

    def allow(self) -> bool:
        """Whether a call may go through now; in half-open only one trial at a time."""
        state = self._state
        if state is CircuitState.closed:
            return True  # the common case, without the lock: only the lock leaves closed
        with self._lock:
            self._advance()
            if self._state is CircuitState.closed:
                return True
            if self._state is CircuitState.half_open and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        if self._state is CircuitState.closed and not self._failures:
            return  # nothing to reset
        with self._lock:
            # the trial flag needs no reset here or below: only _advance enters half-open,
            # and it clears the flag
            self._failures = 0
            self._state = CircuitState.closed

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is CircuitState.half_open or self._failures >= self.threshold:
                self._state = CircuitState.open
                self._opened_at = self._clock()

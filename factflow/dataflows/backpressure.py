"""Adaptive concurrency: how many messages of a route run at once.

Additive increase while the observed latency stays under the target and nothing fails;
multiplicative decrease when it goes over or a call fails (AIMD, as TCP does), always
between the route's `min_concurrency` and `max_concurrency`.
"""

from __future__ import annotations

import threading

from factflow.compiler.plan import ConcurrencyPolicy

_SMOOTHING = 0.2


class ConcurrencyController:
    def __init__(self, policy: ConcurrencyPolicy) -> None:
        self.policy = policy
        self._limit = float(policy.initial)
        self._latency_ms: float | None = None
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        with self._lock:
            return max(self.policy.minimum, min(self.policy.maximum, int(self._limit)))

    @property
    def latency_ms(self) -> float | None:
        return self._latency_ms

    def observe(self, latency_ms: float, *, failed: bool) -> None:
        with self._lock:
            previous = self._latency_ms
            self._latency_ms = (
                latency_ms if previous is None else previous + _SMOOTHING * (latency_ms - previous)
            )
            if failed or self._latency_ms > self.policy.target_latency_ms:
                self._limit = max(float(self.policy.minimum), self._limit / 2)
            else:
                self._limit = min(float(self.policy.maximum), self._limit + 1 / max(self._limit, 1))

"""`AdaptiveLimiter`: an AIMD bound on concurrent calls to a provider (SEED-SYSTEM 6.13).

A 429 says the provider wants fewer calls at once: the limit halves (down to `floor`).
Every success earns one more slot (up to `max_concurrency`), so the limit finds the
provider's capacity and follows it when it changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

MAX_CONCURRENCY = 50
FLOOR = 5


class AdaptiveLimiter:
    """At most `limit` calls in flight; `limit` starts at `max_concurrency`.

    Used from one event loop (a worker's); calls beyond the limit wait in `slot()`.
    Lowering the limit never interrupts calls already in flight: new ones wait until
    enough have finished.
    """

    def __init__(self, max_concurrency: int = MAX_CONCURRENCY, floor: int = FLOOR) -> None:
        if not 1 <= floor <= max_concurrency:
            msg = f"need 1 <= floor <= max_concurrency, got floor={floor}, max={max_concurrency}"
            raise ValueError(msg)
        self.max_concurrency = max_concurrency
        self.floor = floor
        self.limit = max_concurrency
        self.in_flight = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `limit` slots for the duration of one call."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def on_success(self) -> None:
        self.limit = min(self.max_concurrency, self.limit + 1)

    def on_rate_limited(self) -> None:
        self.limit = max(self.floor, self.limit // 2)

"""How many messages a source hands Bytewax in one batch: few enough that epochs end on time.

Bytewax closes an epoch only between batches, and calls a partition's `next_batch` again
only once the worker has processed the batch before (see connectors/base.py). So the time
from one `next_batch` call to the next, over the messages it handed out, is what one
message costs the worker: adapters, sinks and the worker's other partitions included. A
fixed batch of 1,000 messages through a 5 ms adapter took 5 s, and so did every epoch,
whatever the snapshot interval: duplicates after a crash and lineage delay grew with it.

Every source asks a `BatchSizer` for its limit at the start of `next_batch` and reports
what it handed out; it keeps the rest where it is (unread in the file, unclaimed in the
table, unacked in the broker client's buffer), so only delivered messages are ever acked.
The sizer plans each batch to take TARGET_BATCH_SECONDS: it shrinks at once after a batch
that took longer than planned and at most doubles per batch, between its minimum and the
source's maximum, which a fast pipeline reaches within a dozen batches. The minimum is the
most messages the reading routes run at once (their `max_concurrency`): async adapters
run a batch's messages concurrently, so a smaller batch would take as long and do less.
"""

from __future__ import annotations

import math
import time

TARGET_BATCH_SECONDS = 0.25
"""A quarter of factflow's 1 s epoch interval: an epoch ends at most one batch after its
interval, so it lasts under 1.25 intervals plus the sinks' flush at its end, and within
twice any interval of 1 s or more. Longer batches would not be faster: a quarter second of
work already dwarfs a batch's fixed costs (a sink's fsync or broker confirm)."""
GROWTH = 2
"""The most a batch grows over the one before: a pipeline whose messages differ in cost
overruns its plan by at most this factor when cheap ones come first."""


class BatchSizer:
    """The batch limit of one source partition, from the observed cost per message.

    Not thread-safe: a partition belongs to one Bytewax worker thread.
    """

    def __init__(
        self, maximum: int, *, minimum: int = 1, target_seconds: float = TARGET_BATCH_SECONDS
    ) -> None:
        if minimum < 1 or maximum < 1 or target_seconds <= 0:
            msg = (
                "minimum and maximum must be >= 1 and target_seconds > 0, "
                f"got {minimum}, {maximum}, {target_seconds}"
            )
            raise ValueError(msg)
        # a route's concurrency may exceed what the source hands out at once
        self._minimum = min(minimum, maximum)
        self._maximum, self._target = maximum, target_seconds
        # the first batch knows nothing of the pipeline: as small as allowed, so even a
        # very slow adapter gives its first output (and closes its first epoch) early
        self._limit = self._minimum
        self._called_at: float | None = None
        self._handed_out = 0

    def limit(self) -> int:
        """Call at the start of every `next_batch`: the most messages it may hand out.

        The time since the previous call prices the messages handed out since then.
        """
        now = time.monotonic()
        if self._called_at is not None:
            self.observe(now - self._called_at, self._handed_out)
        self._called_at, self._handed_out = now, 0
        return self._limit

    def handed_out(self, count: int) -> None:
        """Report the messages this `next_batch` returned (none to report: no call needed)."""
        self._handed_out += count

    def observe(self, seconds: float, messages: int) -> int:
        """`messages` took `seconds` to process: the limit from now on. An empty batch says
        nothing about cost."""
        if messages > 0:
            per_message = max(seconds, 0.0) / messages
            fits = self._target / per_message if per_message > 0 else math.inf
            grown = int(min(fits, GROWTH * self._limit))
            self._limit = max(self._minimum, min(self._maximum, grown))
        return self._limit

"""One asyncio event loop per Bytewax worker thread, running in a thread of its own.

Bytewax calls operators synchronously on its worker threads. Async adapters run on this
loop so that one batch keeps many messages in flight; the worker waits for the batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from factflow.perthread import PerThread

T = TypeVar("T")


class WorkerLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="factflow-worker-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and block the calling worker until it finishes."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_loops = PerThread(WorkerLoop)


def worker_loop() -> WorkerLoop:
    """The calling worker thread's loop, started on first use."""
    return _loops.get()

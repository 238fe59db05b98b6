"""Coalescing one-text calls into batched model calls.

The runtime calls an async adapter once per message, with the messages of a Bytewax batch
in flight together (up to the route's concurrency). Each call puts its text here and
waits; once every call that is ready to run has added its text (the pending list stopped
growing over one turn of the event loop) or `max_batch` texts wait, they go to the model
in one call. A failed call fails every text in it; the runtime retries each message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

EmbedBatch = Callable[[Sequence[str]], Awaitable[list[list[float]]]]


class Coalescer:
    """Batches `embed(text)` calls made on one event loop (one per worker and slot)."""

    def __init__(self, embed_batch: EmbedBatch, max_batch: int) -> None:
        if max_batch < 1:
            msg = f"max_batch must be at least 1, got {max_batch}"
            raise ValueError(msg)
        self._embed_batch = embed_batch
        self.max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.calls = 0
        """Model calls made (what tests and benches read to see the batching)."""

    async def embed(self, text: str) -> list[float]:
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_when_ready())
        return await future

    async def _flush_when_ready(self) -> None:
        while self._pending:
            # one loop turn lets every call that is ready to run add its text
            seen = -1
            while len(self._pending) != seen and len(self._pending) < self.max_batch:
                seen = len(self._pending)
                await asyncio.sleep(0)
            batch, self._pending = (
                self._pending[: self.max_batch],
                self._pending[self.max_batch :],
            )
            await self._run(batch)

    async def _run(self, batch: list[tuple[str, asyncio.Future[list[float]]]]) -> None:
        self.calls += 1
        try:
            vectors = await self._embed_batch([text for text, _ in batch])
            if len(vectors) != len(batch):
                msg = f"the model returned {len(vectors)} vectors for {len(batch)} texts"
                raise ValueError(msg)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), vector in zip(batch, vectors, strict=True):
            if not future.done():  # the caller may have been cancelled meanwhile
                future.set_result(vector)

"""Calling workflow adapters in the tests: several calls share one event loop (an adapter's
HTTP client belongs to the loop it was made on, as in a worker), with a Context the test
can inspect."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import Any

from factflow import Adapter, Context, Message


def context(storage: Any = None) -> Context:
    return Context(execution_id="exec-1", route_id="crawl", storage=storage)


async def _call(adapter: Adapter, message: Message, ctx: Context) -> list[Message]:
    result = adapter.process(message, ctx)
    return list(await result if inspect.isawaitable(result) else result)


def call_all(
    adapter: Adapter, payloads: Sequence[Any], ctx: Context | None = None
) -> list[list[Message] | Exception]:
    """Each payload through `adapter` in one loop; an exception is returned, not raised."""
    ctx = ctx or context()

    async def main() -> list[list[Message] | Exception]:
        out: list[list[Message] | Exception] = []
        for payload in payloads:
            message = payload if isinstance(payload, Message) else Message(payload=payload)
            try:
                out.append(await _call(adapter, message, ctx))
            except Exception as exc:
                out.append(exc)
        return out

    return asyncio.run(main())


def call(adapter: Adapter, payload: Any, ctx: Context | None = None) -> list[Message]:
    [result] = call_all(adapter, [payload], ctx)
    if isinstance(result, Exception):
        raise result
    return result

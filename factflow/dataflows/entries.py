"""Messages entering a route part-way: a restart from lineage and storage.

An execution restarted without its recovery snapshot re-enters each message that was in
flight after the last step that stored it (`factflow.server.restart`). Those messages
come from one JSON-lines file per route (`FlowOptions.entries`); each envelope's metadata
names the adapter index it enters after, under `ENTER_AFTER`. In such a route every step
lets a message that enters after it pass unchanged (no call, no lineage row, nothing
stored), and the first step it enters at takes the mark off, so the message goes on as
any other. Routes without entries are built as before: the check costs nothing there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from factflow.messages import Message

ENTER_AFTER = "factflow_enter_after"
"""Metadata key: the adapter index of its route a message enters after."""


def mark_entry(envelope: dict[str, Any], after: int) -> dict[str, Any]:
    """`envelope` (as stored) marked to enter its route after adapter `after`."""
    metadata = dict(envelope.get("metadata") or {})
    metadata[ENTER_AFTER] = after
    return {**envelope, "metadata": metadata}


def passes(index: int) -> Callable[[Message], bool]:
    """True for a message that enters its route after adapter `index` (or later)."""

    def check(message: Message) -> bool:
        after = message.metadata.get(ENTER_AFTER)
        return isinstance(after, int) and after >= index

    return check


def unmarked(message: Message) -> Message:
    """`message` without the entry mark (unchanged when it has none)."""
    if ENTER_AFTER not in message.metadata:
        return message
    metadata = {k: v for k, v in message.metadata.items() if k != ENTER_AFTER}
    return replace(message, metadata=metadata)

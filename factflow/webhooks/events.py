"""The event types a subscription can name."""

from __future__ import annotations

# the seed system's six, then factflow's additions
EVENT_TYPES: tuple[str, ...] = (
    "execution.started",
    "execution.completed",
    "execution.failed",
    "execution.cancelled",
    "storage.object_created",
    "lineage.failed",
    "execution.interrupted",
    "execution.cancelling",
    "execution.resumed",
    "deadletter.created",
    "route.paused",
    "route.resumed",
)
ALL_EVENTS = "*"
TEST_EVENT = "webhook.test"

"""Deleting an execution's scoped queues once it completed, where the broker allows.

Called by the launchers (`factflow run`, the supervisor) after every worker exited 0: the
execution drained, so its scoped queues are empty. A connector module that defines
`delete_queues(url, names)` deletes them: RabbitMQ queues if empty and unused, Kafka
topics. Postgres table queues hold no rows once consumed (nothing to delete). STOMP
destinations cannot be deleted over STOMP (Artemis removes auto-created queues itself
when `auto-delete-queues` is on, its default) and Pulsar deletes inactive topics itself
(`brokerDeleteInactiveTopicsEnabled`, on by default).
A failure is logged, never fails the execution.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from factflow.compiler.plan import Plan, QueueSettings
from factflow.connectors.registry import connector_module

log = logging.getLogger(__name__)

DeleteQueues = Callable[[str | None, list[str]], list[str]]


def delete_scoped_queues(plan: Plan, execution_id: str, settings: QueueSettings) -> list[str]:
    """The scoped queues of `execution_id` deleted (names on the provider)."""
    names = sorted(plan.queue_name(q, execution_id, settings.provider) for q in plan.scoped_queues)
    if not names:
        return []
    try:
        return delete_queues(settings, names)
    except Exception as exc:
        log.warning("could not delete the scoped queues of %s: %s", execution_id, exc)
    return []


def delete_queues(settings: QueueSettings, names: list[str]) -> list[str]:
    """Delete `names` on the provider if its connector can (the names deleted), else []."""
    connector = connector_module(settings.provider)
    delete: DeleteQueues | None = getattr(connector, "delete_queues", None)
    return [] if delete is None else delete(settings.url, names)

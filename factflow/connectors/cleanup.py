"""Deleting an execution's scoped queues once it completed, where the broker allows.

Called by the launchers (`factflow run`, the supervisor) after every worker exited 0: the
execution drained, so its scoped queues are empty. RabbitMQ queues are deleted if empty
and unused, Kafka topics are deleted; Postgres table queues hold no rows once consumed
(nothing to delete). STOMP destinations cannot be deleted over STOMP (Artemis removes
auto-created queues itself when `auto-delete-queues` is on, its default) and Pulsar deletes
inactive topics itself (`brokerDeleteInactiveTopicsEnabled`, on by default).
A failure is logged, never fails the execution.
"""

from __future__ import annotations

import logging

from factflow.compiler.plan import Plan, QueueSettings

log = logging.getLogger(__name__)


def delete_scoped_queues(plan: Plan, execution_id: str, settings: QueueSettings) -> list[str]:
    """The scoped queues of `execution_id` deleted (names on the provider)."""
    names = sorted(plan.queue_name(q, execution_id, settings.provider) for q in plan.scoped_queues)
    if not names:
        return []
    try:
        if settings.provider == "rabbitmq":
            from factflow.connectors.rabbitmq import delete_queues

            return delete_queues(settings.url, names)
        if settings.provider == "kafka":
            from factflow.connectors.kafka import delete_topics

            return delete_topics(settings.url, names)
    except Exception as exc:
        log.warning("could not delete the scoped queues of %s: %s", execution_id, exc)
    return []

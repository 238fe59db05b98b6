"""`pulsar`: Apache Pulsar topics."""

import re

from factflow.extras import PULSAR
from factflow.providers.spec import ProviderSpec, QueueRule


def scoped_topic(queue: str, execution_id: str) -> str:
    # Pulsar forbids `:` in a topic's name: the id goes into its last segment
    base, _, topic = queue.rpartition("/")
    return f"{base}/exec.{execution_id}.{topic}"


PROVIDER = ProviderSpec(
    name="pulsar",
    connector="factflow.connectors.pulsar",
    summary="Apache Pulsar",
    extra=PULSAR,
    rule=QueueRule(
        re.compile(r"^(persistent|non-persistent)://[\w\-.]+/[\w\-.]+/[\w\-.]+$"),
        "Pulsar topics are `persistent://tenant/namespace/topic`",
    ),
    dead_letter="persistent://public/default/{route}.dlq",
    scoped=scoped_topic,
)

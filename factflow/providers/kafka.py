"""`kafka`: Apache Kafka topics."""

import re

from factflow.extras import KAFKA
from factflow.providers.spec import ProviderSpec, QueueRule


def scoped_topic(queue: str, execution_id: str) -> str:
    # Kafka forbids `:` in topic names
    return f"exec.{execution_id}.{queue}"


PROVIDER = ProviderSpec(
    name="kafka",
    connector="factflow.connectors.kafka",
    summary="Apache Kafka",
    extra=KAFKA,
    rule=QueueRule(
        re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._\-]{1,249}$"),
        "Kafka topic names match [a-zA-Z0-9._-]{1,249} and are not '.' or '..'",
    ),
    scoped=scoped_topic,
    log=True,
)

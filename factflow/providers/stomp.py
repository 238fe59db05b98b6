"""`stomp`: ActiveMQ Artemis (or any STOMP 1.2 broker) over STOMP."""

import re

from factflow.extras import STOMP
from factflow.providers.spec import ProviderSpec, QueueRule


def scoped_destination(queue: str, execution_id: str) -> str:
    # Artemis reserves `::` in addresses, so not the seed system's `exec:<id>:` form
    kind, _, name = queue.removeprefix("/").partition("/")
    return f"/{kind}/exec.{execution_id}.{name}"


PROVIDER = ProviderSpec(
    name="stomp",
    connector="factflow.connectors.stomp",
    summary="ActiveMQ Artemis (STOMP)",
    extra=STOMP,
    rule=QueueRule(
        re.compile(r"^/(queue|topic)/[A-Za-z0-9_\-.:/]+$"),
        "Artemis (STOMP) destinations are `/queue/NAME` or `/topic/NAME`",
    ),
    dead_letter="/queue/{route}.dlq",
    scoped=scoped_destination,
    topic_prefix="/topic/",
)

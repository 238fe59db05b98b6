"""`rabbitmq`: RabbitMQ over AMQP 0.9.1."""

import re

from factflow.extras import RABBITMQ
from factflow.providers.spec import ProviderSpec, QueueRule

PROVIDER = ProviderSpec(
    name="rabbitmq",
    connector="factflow.connectors.rabbitmq",
    summary="RabbitMQ (AMQP)",
    extra=RABBITMQ,
    rule=QueueRule(
        re.compile(r"^[A-Za-z0-9_\-.:]{1,255}$"),
        "RabbitMQ (AMQP) queue names match [a-zA-Z0-9_-.:]+ (at most 255 characters)",
    ),
)

"""Queue providers and storage schemes factflow knows, and each provider's name rules."""

from __future__ import annotations

import re

BROKER_PROVIDERS = frozenset({"stomp", "rabbitmq", "pulsar", "kafka"})
PROVIDERS = frozenset({"memory", "file", "postgres"}) | BROKER_PROVIDERS
STORAGE_SCHEMES = frozenset({"file", "s3", "minio"})

_QUEUE_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "stomp": (
        re.compile(r"^/(queue|topic)/[A-Za-z0-9_\-.:/]+$"),
        "Artemis (STOMP) destinations are `/queue/NAME` or `/topic/NAME`",
    ),
    "rabbitmq": (
        re.compile(r"^[A-Za-z0-9_\-.:]{1,255}$"),
        "RabbitMQ (AMQP) queue names match [a-zA-Z0-9_-.:]+ (at most 255 characters)",
    ),
    "pulsar": (
        re.compile(r"^(persistent|non-persistent)://[\w\-.]+/[\w\-.]+/[\w\-.]+$"),
        "Pulsar topics are `persistent://tenant/namespace/topic`",
    ),
    "kafka": (
        re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._\-]{1,249}$"),
        "Kafka topic names match [a-zA-Z0-9._-]{1,249} and are not '.' or '..'",
    ),
}


def queue_name_problem(provider: str, name: str) -> str | None:
    """Why `name` is not a valid queue on `provider`, or None when it is."""
    rule = _QUEUE_RULES.get(provider)
    if rule is None or rule[0].match(name):
        return None
    return rule[1]


def queue_file_name(queue: str) -> str:
    """The file provider's file for a queue: `/` becomes `_`, plus `.jsonl`."""
    return queue.replace("/", "_") + ".jsonl"


def default_dead_letter_queue(provider: str | None, route_id: str) -> str:
    """`<route id>.dlq`, shaped to the provider's naming rules."""
    if provider == "stomp":
        return f"/queue/{route_id}.dlq"
    if provider == "pulsar":
        return f"persistent://public/default/{route_id}.dlq"
    return f"{route_id}.dlq"


def is_topic(provider: str, queue: str) -> bool:
    """STOMP `/topic/...` destinations are broadcast: never scoped to an execution."""
    return provider == "stomp" and queue.startswith("/topic/")


def scoped_queue(provider: str, queue: str, execution_id: str) -> str:
    """The queue `queue` of one execution, in the provider's legal form.

    The seed system's form is `exec:<id>:<name>`; Kafka and Pulsar forbid `:` and Artemis
    reserves `::`, so they get `exec.<id>.<name>` (Pulsar: in the topic's last segment).
    """
    if provider == "stomp":
        kind, _, name = queue.removeprefix("/").partition("/")
        return f"/{kind}/exec.{execution_id}.{name}"
    if provider == "pulsar":
        base, _, topic = queue.rpartition("/")
        return f"{base}/exec.{execution_id}.{topic}"
    if provider == "kafka":
        return f"exec.{execution_id}.{queue}"
    return f"exec:{execution_id}:{queue}"

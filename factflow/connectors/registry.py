"""Provider name -> its Bytewax source and sink for a queue.

Broker connectors are imported only when a pipeline uses them, so a file pipeline never
loads a broker client, and the core installs without them: a provider whose client library
is missing raises `MissingExtraError`, naming the extra to install, before any import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bytewax.inputs import Source
from bytewax.outputs import DynamicSink

from factflow.compiler.plan import QueueSettings
from factflow.exceptions import ConfigurationError
from factflow.extras import PROVIDER_EXTRAS


@dataclass(frozen=True)
class SourceSpec:
    """How one queue is read: format, consumer slots, prefetch, when to stop."""

    queue: str
    raw: bool = False
    partitions: int = 1
    subscription: str = "factflow"
    prefetch: int | None = None
    idle_timeout: float | None = None
    min_batch: int = 1
    """The most messages the reading routes run at once: a source may always hand out
    that many in one batch (connectors/batching.py)."""


def make_source(spec: SourceSpec, settings: QueueSettings) -> Source[Any]:
    provider, options = settings.provider, settings.options
    _require_client(provider)
    consumers = int(options.get("consumers", spec.partitions))
    if provider == "memory":
        from factflow.connectors.memory import MemorySource

        return MemorySource(
            spec.queue, raw=spec.raw, partitions=spec.partitions, min_batch=spec.min_batch
        )
    if provider == "file":
        from factflow.connectors.file import FileSource, queue_path

        path = queue_path(_folder(settings), spec.queue)
        return FileSource(
            path, spec.queue, raw=spec.raw, partitions=spec.partitions, min_batch=spec.min_batch
        )
    if provider == "rabbitmq":
        from factflow.connectors.rabbitmq import DEFAULT_PREFETCH, RabbitMQSource

        return RabbitMQSource(
            spec.queue,
            url=settings.url,
            raw=spec.raw,
            consumers=consumers,
            prefetch=int(options.get("prefetch", max(spec.prefetch or 0, DEFAULT_PREFETCH))),
            durable=bool(options.get("durable", True)),
            idle_timeout=spec.idle_timeout,
            min_batch=spec.min_batch,
        )
    if provider == "stomp":
        from factflow.connectors.stomp import DEFAULT_PREFETCH as STOMP_PREFETCH
        from factflow.connectors.stomp import StompSource

        return StompSource(
            spec.queue,
            url=settings.url,
            raw=spec.raw,
            consumers=consumers,
            prefetch=int(options.get("prefetch", max(spec.prefetch or 0, STOMP_PREFETCH))),
            idle_timeout=spec.idle_timeout,
            min_batch=spec.min_batch,
        )
    if provider == "pulsar":
        from factflow.connectors.pulsar import DEFAULT_PREFETCH as PULSAR_PREFETCH
        from factflow.connectors.pulsar import PulsarSource

        return PulsarSource(
            spec.queue,
            subscription=spec.subscription,
            url=settings.url,
            raw=spec.raw,
            consumers=consumers,
            prefetch=int(options.get("prefetch", max(spec.prefetch or 0, PULSAR_PREFETCH))),
            subscription_type=str(options.get("subscription_type", "shared")),
            idle_timeout=spec.idle_timeout,
            min_batch=spec.min_batch,
        )
    if provider == "kafka":
        from factflow.connectors.kafka import MAX_BATCH as KAFKA_BATCH
        from factflow.connectors.kafka import KafkaSource

        return KafkaSource(
            spec.queue,
            url=settings.url,
            group=spec.subscription,
            raw=spec.raw,
            idle_timeout=spec.idle_timeout,
            min_batch=spec.min_batch,
            max_batch=int(options.get("prefetch", max(spec.prefetch or 0, KAFKA_BATCH))),
            partitions=_partitions(options),
        )
    if provider == "postgres":
        from factflow.connectors.postgres import (
            CLAIM_LIMIT,
            DEFAULT_VISIBILITY_SECONDS,
            PostgresSource,
        )

        return PostgresSource(
            spec.queue,
            url=settings.url,
            raw=spec.raw,
            consumers=consumers,
            visibility_timeout=float(options.get("visibility_timeout", DEFAULT_VISIBILITY_SECONDS)),
            idle_timeout=spec.idle_timeout,
            min_batch=spec.min_batch,
            prefetch=int(options.get("prefetch", spec.prefetch or CLAIM_LIMIT)),
        )
    msg = f"queue provider '{provider}' has no source connector in this version of factflow"
    raise ConfigurationError(msg)


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> DynamicSink[Any]:
    provider, options = settings.provider, settings.options
    _require_client(provider)
    if provider == "memory":
        from factflow.connectors.memory import MemorySink

        return MemorySink(queue)
    if provider == "file":
        from factflow.connectors.file import FileSink

        return FileSink(_folder(settings), queue, fsync=bool(options.get("fsync", True)))
    if provider == "rabbitmq":
        from factflow.connectors.rabbitmq import RabbitMQSink

        return RabbitMQSink(
            queue,
            url=settings.url,
            raw=raw,
            durable=bool(options.get("durable", True)),
            exchange=str(options.get("exchange", "")),
        )
    if provider == "stomp":
        from factflow.connectors.stomp import StompSink

        return StompSink(queue, url=settings.url, raw=raw)
    if provider == "pulsar":
        from factflow.connectors.pulsar import PulsarSink

        return PulsarSink(queue, url=settings.url, raw=raw)
    if provider == "kafka":
        from factflow.connectors.kafka import KafkaSink

        return KafkaSink(queue, url=settings.url, raw=raw, partitions=_partitions(options))
    if provider == "postgres":
        from factflow.connectors.postgres import PostgresSink

        return PostgresSink(queue, url=settings.url, raw=raw)
    msg = f"queue provider '{provider}' has no sink connector in this version of factflow"
    raise ConfigurationError(msg)


def _require_client(provider: str) -> None:
    # the compiler reports this as E407; a provider set by an override reaches it here
    if (extra := PROVIDER_EXTRAS.get(provider)) is not None:
        extra.require(f"queue provider {provider!r}")


def _partitions(options: dict[str, Any]) -> int | None:
    """Kafka's `options.partitions`: how many partitions new topics get."""
    value = options.get("partitions")
    return None if value is None else int(value)


def _folder(settings: QueueSettings) -> str:
    if not settings.path:
        msg = "the file provider needs `queue.path`"
        raise ConfigurationError(msg)
    return settings.path

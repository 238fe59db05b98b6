"""A publish -> consume -> ack round trip on any provider, through its own source and sink.

`POST /system/mq-diagnostic` runs it on each broker the stored pipelines name. It uses the
connector exactly as a run does (the same source partitions, sink and acks), so a broker
that passes carries pipelines; the probe queue is deleted afterwards where the connector
can delete queues.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

from bytewax.inputs import FixedPartitionedSource

from factflow.compiler.plan import QueueSettings
from factflow.connectors.cleanup import delete_queues
from factflow.connectors.protocol import SourceSpec
from factflow.connectors.registry import make_sink, make_source
from factflow.masking import mask_url
from factflow.messages import Message
from factflow.providers.registry import get_provider
from factflow.types import JsonDict

PROBE_TIMEOUT_SECONDS = 15.0
STEP_ID = "mq-diagnostic"


def round_trip(settings: QueueSettings, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> JsonDict:
    """Publish one probe message to a fresh queue, read it back, ack it; never raises."""
    started = time.perf_counter()
    spec = get_provider(settings.provider)
    # the dead-letter template gives a queue name legal on the provider
    queue = spec.dead_letter_queue(f"factflow.mq-diagnostic.{uuid.uuid4().hex[:12]}")
    result: JsonDict = {
        "provider": settings.provider,
        "url": mask_url(settings.url) if settings.url else None,
        "queue": queue,
    }
    outcome: list[str | None] = []
    # a connector retries an unreachable broker for a long while (it may be restarting):
    # the probe runs in a thread of its own, and the diagnosis does not wait beyond timeout
    probe = threading.Thread(
        target=_probe_and_clean, args=(queue, settings, timeout, outcome), daemon=True
    )
    probe.start()
    probe.join(timeout + 1)
    error = outcome[0] if outcome else f"no answer from the broker within {timeout:.0f} s"
    result["status"] = "ok" if error is None else "failed"
    result["error"] = error
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _probe_and_clean(
    queue: str, settings: QueueSettings, timeout: float, outcome: list[str | None]
) -> None:
    try:
        error = _probe(queue, settings, timeout)
    except Exception as exc:  # whatever the client raises is the diagnosis
        outcome.append(f"{type(exc).__name__}: {exc}")
        return
    outcome.append(error)
    if error is None:  # a broker that failed the probe may not be reachable to clean up
        _delete(queue, settings)


def _probe(queue: str, settings: QueueSettings, timeout: float) -> str | None:
    # subscribe before publishing: a queue or subscription made after the publish would
    # not hold the probe on every broker
    source = make_source(SourceSpec(queue=queue, subscription=STEP_ID), settings)
    if not isinstance(source, FixedPartitionedSource):
        return f"the {settings.provider} source has no fixed partitions to probe"
    parts = [source.build_part(STEP_ID, p, None) for p in source.list_parts()]
    sink = make_sink(queue, settings).build(STEP_ID, 0, 1)
    probe = Message(payload={"probe": queue})
    try:
        for part in parts:
            # the first batch connects and subscribes; a broker never reached fails here
            # at once, where a sink would retry its publish for a while
            part.next_batch()
        sink.write_batch([probe])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for part in parts:
                batch = part.next_batch()
                if any(isinstance(m, Message) and m.message_id == probe.message_id for m in batch):
                    part.snapshot()
                    part.next_batch()  # acks what the snapshot sealed
                    return None
            time.sleep(0.05)
        return f"the published message did not come back within {timeout:.0f} s"
    finally:
        sink.close()
        for part in parts:
            part.close()


def _delete(queue: str, settings: QueueSettings) -> None:
    with contextlib.suppress(Exception):  # the probe queue is empty; a refusal keeps it
        delete_queues(settings, [queue])

"""Dead-letter queues on the brokers (RabbitMQ, STOMP, Pulsar, Kafka): list, peek,
redrive and purge, through the connectors' own sources and sinks.

A broker dead letter is the record a route's dead-letter sink published: the failed
message (`message`), its route and stage, the error and attempts. Dead-letter queues are
global (one per route and pipeline, shared by its executions), so requests name an
execution for its plan and, by default, act only on that execution's letters.

The connectors' sources acknowledge what a batch delivered once `snapshot()` sealed it
(`connectors.base`), all of it: so a redrive or purge publishes first and acknowledges
after, and a letter read but not meant (another execution's, or past `limit`) is
published back onto the dead-letter queue before the acknowledgement. Nothing is lost;
a crash between publish and acknowledgement leaves a letter twice, never none. A peek
acknowledges nothing: closing the consumer hands every letter back (RabbitMQ and STOMP
mark them redelivered). Kafka topics are logs the connectors never commit offsets on:
they can be listed and peeked, not redriven or purged (retention empties them).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from factflow.compiler.plan import DeadLetters, Plan
from factflow.connectors.codec import Outgoing
from factflow.connectors.registry import SourceSpec, make_sink, make_source
from factflow.deadletter import DeadLetter, OriginalTruncatedError, Undecodable, original_of
from factflow.messages import Message
from factflow.providers.registry import get_provider
from factflow.server.exceptions import ReplayError
from factflow.types import JsonDict

READ_WAIT_SECONDS = 2.0
"""How long a read waits for letters once none arrive (brokers deliver in bursts)."""


Owners = Callable[[list[str]], dict[str, str]]
"""Lineage row ids -> their execution ids (a letter of a message read from a queue has
no execution id in its envelope; the row of its failed attempt has)."""


@dataclass(frozen=True)
class BrokerLetter:
    """One record of a broker dead-letter queue."""

    record: JsonDict
    """The dead letter as published (`route_id`, `stage`, `reason`, `error`, `message`...)."""
    execution_id: str | None = None

    def to_dict(self) -> JsonDict:
        return {"execution_id": self.execution_id, **self.record}


def _letters(records: list[JsonDict], owners: Owners | None) -> list[BrokerLetter]:
    """The records with the execution each belongs to (its envelope's, else its row's)."""
    rows = [str(r["lineage_id"]) for r in records if r.get("lineage_id")]
    owner = owners(rows) if owners is not None and rows else {}
    letters = []
    for record in records:
        message = record.get("message")
        execution = message.get("execution_id") if isinstance(message, dict) else None
        if not isinstance(execution, str):
            execution = owner.get(str(record.get("lineage_id")))
        letters.append(BrokerLetter(record, execution))
    return letters


@dataclass
class DlqOutcome:
    queue: str
    provider: str
    letters: list[BrokerLetter] = field(default_factory=list)
    """What was peeked, redriven or purged."""
    returned: int = 0
    """Letters read that were not meant, published back onto the dead-letter queue."""

    def to_dict(self, *, with_letters: bool) -> JsonDict:
        data: JsonDict = {
            "queue": self.queue,
            "provider": self.provider,
            "count": len(self.letters),
            "returned": self.returned,
        }
        if with_letters:
            data["letters"] = [letter.to_dict() for letter in self.letters]
        return data


def broker_queues(plan: Plan) -> list[DeadLetters]:
    """The plan's dead-letter queues that live on a broker (the others are the table's)."""
    return [d for d in plan.dead_letters if get_provider(d.provider).broker_dead_letters]


def queue_of(plan: Plan, route_id: str) -> DeadLetters:
    for dead in broker_queues(plan):
        if dead.route == route_id:
            return dead
    known = ", ".join(d.route for d in broker_queues(plan)) or "none"
    msg = (
        f"route '{route_id}' has no broker dead-letter queue in pipeline '{plan.pipeline}' "
        f"(routes with one: {known}; file and postgres letters are in GET /deadletters)"
    )
    raise ReplayError(msg)


def peek(
    plan: Plan, route_id: str, execution_id: str | None, limit: int, owners: Owners | None
) -> DlqOutcome:
    """Up to `limit` letters (of `execution_id`, when given), left on the queue."""
    dead = queue_of(plan, route_id)
    with _Reader(plan, dead, owners) as reader:
        letters = reader.read(limit, execution_id)
    return DlqOutcome(dead.queue, dead.provider, [letter for letter, _ in letters if _])


def redrive(
    plan: Plan, route_id: str, execution_id: str, limit: int, owners: Owners | None
) -> DlqOutcome:
    """Up to `limit` letters of `execution_id` back onto their route's inbound queue (the
    execution's scoped queue when it is scoped), confirmed, then acknowledged."""
    return _consume(plan, route_id, execution_id, limit, owners, publish=True)


def purge(
    plan: Plan, route_id: str, execution_id: str | None, limit: int, owners: Owners | None
) -> DlqOutcome:
    """Up to `limit` letters (of `execution_id`, when given) acknowledged and gone."""
    return _consume(plan, route_id, execution_id, limit, owners, publish=False)


def _consume(
    plan: Plan,
    route_id: str,
    execution_id: str | None,
    limit: int,
    owners: Owners | None,
    *,
    publish: bool,
) -> DlqOutcome:
    dead = queue_of(plan, route_id)
    if get_provider(dead.provider).log:
        msg = (
            f"{dead.provider} dead-letter topic '{dead.queue}' is a log: its letters can be "
            "listed and peeked, not redriven or purged (topic retention removes them)"
        )
        raise ReplayError(msg)
    outcome = DlqOutcome(dead.queue, dead.provider)
    with _Reader(plan, dead, owners) as reader:
        letters = reader.read(limit, execution_id)
        meant = [letter for letter, wanted in letters if wanted]
        others = [letter for letter, wanted in letters if not wanted]
        if publish and meant:
            assert execution_id is not None
            _publish_to_inbound(plan, meant, execution_id)
        if others:
            # back onto the queue before the acknowledgement takes them off it
            _publish(plan, dead.queue, [_as_dead_letter(o.record) for o in others])
        reader.acknowledge()
    outcome.letters, outcome.returned = meant, len(others)
    return outcome


def _publish_to_inbound(plan: Plan, letters: list[BrokerLetter], execution_id: str) -> None:
    """Each letter's message (or, for an undecodable record, its original bytes and
    headers) onto its route's inbound queue; a letter whose original was too large to
    keep whole refuses the redrive before anything is published or acknowledged."""
    by_queue: dict[str, list[Outgoing]] = {}
    for letter in letters:
        route = plan.route(str(letter.record.get("route_id")))
        queue = plan.queue_name(route.inbound_queue, execution_id, plan.queue.provider)
        message = letter.record.get("message")
        try:
            original = original_of(message)
        except OriginalTruncatedError as exc:
            msg = f"dead letter of route '{route.id}' cannot be redriven: {exc}"
            raise ReplayError(msg) from None
        if original is not None:
            by_queue.setdefault(queue, []).append(original)
            continue
        envelope = dict(message) if isinstance(message, dict) else {"payload": message}
        # the new attempt's lineage row descends from the one that dead-lettered it
        if letter.record.get("lineage_id"):
            envelope["correlation_id"] = str(letter.record["lineage_id"])
        metadata = dict(envelope.get("metadata") or {})
        metadata["redriven_from_queue"] = queue_of(plan, route.id).queue
        envelope["metadata"] = metadata
        by_queue.setdefault(queue, []).append(Message.from_envelope({"payload": None, **envelope}))
    for queue, messages in by_queue.items():
        _publish(plan, queue, messages)


def _publish(plan: Plan, queue: str, messages: Sequence[Outgoing]) -> None:
    """Publish and return once the broker confirmed (the sinks' `write_batch` contract)."""
    sink = make_sink(queue, plan.queue, raw=False)
    part = sink.build("dlq", 0, 1)
    try:
        # every sink encodes with codec.encode_body, which publishes an Original's bytes
        # as they are
        part.write_batch(cast(list[Message | DeadLetter], list(messages)))
    finally:
        part.close()


class _Reader:
    """A consumer on a dead-letter queue: every partition of its source, read outside a
    dataflow (connect on the first batch; acknowledge = seal, then one more batch)."""

    def __init__(self, plan: Plan, dead: DeadLetters, owners: Owners | None) -> None:
        self._owners = owners
        spec = SourceSpec(queue=dead.queue, partitions=1, subscription="factflow-dlq")
        source: Any = make_source(spec, plan.queue)
        self._parts = [source.build_part("dlq", p, None) for p in source.list_parts()]

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *_: object) -> None:
        for part in self._parts:
            part.close()

    def read(self, limit: int, execution_id: str | None) -> list[tuple[BrokerLetter, bool]]:
        """Letters read, each with whether it is meant (`execution_id`'s, within `limit`)."""
        found: list[tuple[BrokerLetter, bool]] = []
        meant = 0
        quiet_since = time.monotonic()
        while meant < limit and time.monotonic() - quiet_since < READ_WAIT_SECONDS:
            got = False
            for part in self._parts:
                try:
                    batch = part.next_batch()
                except StopIteration:
                    continue
                for letter in _letters([_record(item) for item in batch], self._owners):
                    got = True
                    wanted = meant < limit and (
                        execution_id is None or letter.execution_id == execution_id
                    )
                    meant += wanted
                    found.append((letter, wanted))
            if got:
                quiet_since = time.monotonic()
            else:
                time.sleep(0.05)
        return found

    def acknowledge(self) -> None:
        for part in self._parts:
            part.snapshot()
            # the next batch acknowledges the sealed letters; what it delivers is handed
            # back when the consumer closes
            with contextlib.suppress(StopIteration):
                part.next_batch()


def _record(item: Message | Undecodable) -> JsonDict:
    if isinstance(item, Undecodable):
        return {"reason": "undecodable", "error": item.error, "message": item.envelope()}
    payload = item.payload
    return payload if isinstance(payload, dict) else {"message": {"payload": payload}}


def _as_dead_letter(record: JsonDict) -> DeadLetter:
    """A record read off a dead-letter queue as the sink publishes it, unchanged."""
    message = record.get("message")
    return DeadLetter(
        route_id=str(record.get("route_id", "")),
        stage=str(record.get("stage", "")),
        step_id=str(record.get("step_id", "")),
        reason=str(record.get("reason", "")),
        error_type=str(record.get("error_type", "")),
        error=str(record.get("error", "")),
        attempts=int(record.get("attempts") or 0),
        message=message if isinstance(message, dict) else {"payload": message},
        failed_at=str(record.get("failed_at", "")),
        lineage_id=None if record.get("lineage_id") is None else str(record["lineage_id"]),
    )

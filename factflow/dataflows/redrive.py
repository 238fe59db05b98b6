"""Redrive: dead letters from the table back onto their route's inbound queue.

The letters are locked (concurrent redrives skip them), published with the pipeline's
own sink for their queue, and marked redriven only once that sink confirmed the publish
(`write_batch` returns when the messages are durable), all in one transaction. A publish
that fails leaves its letters as they were, so a later redrive takes them again: at least
once, never lost. Their `correlation_id` is the lineage row of the failed attempt, so the
new attempt's lineage descends from it. A letter of an undecodable record is published
as the record arrived (its `Original`: the same bytes and headers); one whose original
was too large to keep whole is refused and left as it was (factflow/deadletter.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

from factflow.compiler.plan import Plan, QueueSettings
from factflow.connectors.codec import Outgoing
from factflow.connectors.registry import make_sink
from factflow.dataflows.exceptions import RedriveError
from factflow.db.connection import connect
from factflow.db.repositories.dead_letters import (
    DeadLetter,
    claim_dead_letters,
    mark_redriven,
    redrive_envelope,
)
from factflow.deadletter import OriginalTruncatedError, original_of
from factflow.messages import Message


def redrive(url: str, execution_id: uuid.UUID, pipeline: Path, route_id: str | None) -> int:
    """Publish the execution's un-redriven dead letters; returns how many were redriven.

    Raises RedriveError after marking the letters whose queues did take them.
    """
    from factflow.flow import load_plan

    return redrive_letters(url, load_plan(pipeline), execution_id=execution_id, route_id=route_id)


def redrive_letters(
    url: str,
    plan: Plan,
    *,
    execution_id: uuid.UUID | None = None,
    route_id: str | None = None,
    ids: Sequence[int] | None = None,
) -> int:
    """`redrive` of the selected letters (by ids, execution, route) through `plan`'s
    queue provider: the server's redrive, with the plan its execution ran."""
    failure: tuple[str, int, Exception] | None = None
    queue_settings = plan.queue
    if queue_settings.provider == "postgres" and not queue_settings.url:
        # the workers' postgres queues default to the server's database (their
        # FACTFLOW_DATABASE_URL), which is this one; the server itself may have no such
        # variable (`serve --embedded`)
        queue_settings = replace(queue_settings, url=url)
    with connect(url) as conn, conn.transaction():
        letters = claim_dead_letters(conn, ids=ids, execution_id=execution_id, route_id=route_id)
        by_queue: dict[str, list[tuple[DeadLetter, Outgoing]]] = defaultdict(list)
        refused: list[str] = []
        for letter in letters:
            try:
                by_queue[letter.queue].append((letter, _outgoing(letter)))
            except OriginalTruncatedError as exc:
                refused.append(f"{letter.id} ({exc})")
        published: list[int] = []
        for queue, group in by_queue.items():
            try:
                _publish(queue, queue_settings, group)
            except Exception as exc:  # whatever the provider raises: keep the letters
                failure = (queue, len(group), exc)
                break
            published.extend(letter.id for letter, _ in group)
        mark_redriven(conn, published)
    if refused and failure is None:
        msg = (
            f"{len(refused)} dead letter(s) cannot be redriven, left as they are "
            f"({len(published)} others were redriven): {'; '.join(refused)}"
        )
        raise RedriveError(msg)
    if failure is not None:
        queue, count, cause = failure
        msg = (
            f"publishing {count} dead letter(s) to queue '{queue}' on provider "
            f"'{plan.queue.provider}' failed ({type(cause).__name__}: {cause}); they are not "
            f"marked redriven ({len(published)} others were), run the redrive again"
        )
        raise RedriveError(msg) from cause
    return len(published)


def _outgoing(letter: DeadLetter) -> Outgoing:
    """What to publish again: the original record, else the message (see module doc)."""
    original = original_of(letter.message)
    if original is not None:
        return original
    return Message.from_envelope(redrive_envelope(letter))


def _publish(
    queue: str, settings: QueueSettings, letters: list[tuple[DeadLetter, Outgoing]]
) -> None:
    """Publish through the queue's sink; returns once the provider confirmed the writes."""
    sink = make_sink(queue, settings).build("redrive", 0, 1)
    try:
        # every sink encodes with codec.encode_body / encode_json_line, which publish an
        # Original's bytes as they are
        sink.write_batch(cast(list[Message | DeadLetter], [item for _, item in letters]))
    finally:
        sink.close()

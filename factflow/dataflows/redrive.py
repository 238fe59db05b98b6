"""Redrive: dead letters from the table back onto their route's inbound queue.

The letters are claimed first (each redriven once, even with concurrent redrives), then
published with the pipeline's own sink for that queue; their `correlation_id` is the
lineage row of the failed attempt, so the new attempt's lineage descends from it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path

from factflow.connectors.registry import make_sink
from factflow.db.connection import connect
from factflow.db.repositories.dead_letters import mark_redriven, redrive_envelope
from factflow.messages import Message


def redrive(url: str, execution_id: uuid.UUID, pipeline: Path, route_id: str | None) -> int:
    from factflow.flow import load_plan

    plan = load_plan(pipeline)
    with connect(url) as conn:
        letters = mark_redriven(conn, execution_id=execution_id, route_id=route_id)
    by_queue: dict[str, list[Message]] = defaultdict(list)
    for letter in letters:
        by_queue[letter.queue].append(Message.from_envelope(redrive_envelope(letter)))
    for queue, messages in by_queue.items():
        sink = make_sink(queue, plan.queue).build("redrive", 0, 1)
        try:
            sink.write_batch(messages)
        finally:
            sink.close()
    return len(letters)
